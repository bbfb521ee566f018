/** What the CLI prints: job summaries, log lines, and live progress while it follows a job. */
import { FINAL_STATUSES, type JobStatus } from '../common/job';
import type { DraftsmanApi, GroupView, JobView, LogLine } from '../client/http';

const tty = process.stdout.isTTY === true;
export const out = (line: string) => process.stdout.write(`${line}\n`);
export const json = (value: unknown) => out(JSON.stringify(value, null, 2));

function stepLabel(job: JobView): string {
  const running = [...job.steps].reverse().find((s) => s.status === 'running');
  if (!running) return '';
  const loop = job.loop && (running.kind === 'loop' || running.kind === 'until') ? ` (iteration ${job.loop.iterations})` : '';
  return `${running.kind}-${running.index}${loop}`;
}

/** One line for an activity being retried: which, its attempt, the last error, the next try. */
export function retryingText(r: NonNullable<JobView['retrying']>): string {
  return `${r.activity}, attempt ${r.attempt}${r.nextAttemptAt ? `, next try at ${r.nextAttemptAt}` : ' (running)'}${r.lastError ? `; last error: ${r.lastError}` : ''}`;
}

export function summary(job: JobView): string {
  const lines = [
    `${job.id}  ${job.status}`,
    `  repo    ${job.repo ?? '-'} @ ${job.commit ?? '-'}`,
    `  created ${job.createdAt}${job.finishedAt ? `  finished ${job.finishedAt}` : ''}`,
  ];
  if (job.loop) lines.push(`  loop    ${job.loop.iterations} iteration(s), ${job.loop.converged ? 'converged' : 'not converged'}`);
  for (const s of job.steps) {
    const secs = s.durationMs != null ? ` ${(s.durationMs / 1000).toFixed(1)}s` : '';
    lines.push(
      `  ${`${s.kind}-${s.index}`.padEnd(12)} ${s.status.padEnd(10)} exit ${s.exitCode ?? '-'}${secs}${s.logTruncated ? ' (log truncated)' : ''}${s.oomKilled ? ' (OOM-killed)' : ''}`,
    );
  }
  if (job.ledger) lines.push(`  ledger  ${ledgerText(job.ledger)}`);
  if (job.waiting) lines.push(`  waiting ${job.waiting}`);
  if (job.retrying) lines.push(`  retrying ${retryingText(job.retrying)}`);
  if (job.error) lines.push(`  error   ${job.error}`);
  return lines.join('\n');
}

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** A job's ledger on one line: what the kernel and the proxy measured. */
export function ledgerText(l: NonNullable<JobView['ledger']>): string {
  return [
    l.wallSeconds === null ? 'not started' : `${l.wallSeconds.toFixed(1)} s wall`,
    l.cpuSeconds === null ? 'CPU not measured' : `${l.cpuSeconds.toFixed(2)} CPU-s`,
    l.peakMemoryBytes === null ? null : `peak ${mb(l.peakMemoryBytes)}`,
    `${l.steps} step${l.steps === 1 ? '' : 's'}`,
    `egress ${mb(l.egressBytesIn)} in, ${mb(l.egressBytesOut)} out (${l.egressConnections} connection${l.egressConnections === 1 ? '' : 's'})`,
    l.workspaceBytes === null ? null : `workspace ${mb(l.workspaceBytes)}`,
  ]
    .filter(Boolean)
    .join(', ');
}

/** A group as lines: its rule and winner, then one line per attempt. */
export function groupSummary(g: GroupView): string {
  const lines = [
    `${g.id}  ${g.endedAt ? 'ended' : 'running'}  best ${g.best}  winner ${g.winner ?? '-'}`,
    `  from    ${g.parent} after ${g.after}`,
    `  created ${g.createdAt}${g.endedAt ? `  ended ${g.endedAt}` : ''}`,
  ];
  for (const j of g.jobs) {
    const validated = j.validated === null ? '-' : j.validated ? 'passed' : 'failed';
    const secs = j.durationMs != null ? `${(j.durationMs / 1000).toFixed(1)}s` : '-';
    lines.push(
      `  ${j.id.padEnd(44)} ${j.status.padEnd(17)} validate ${validated.padEnd(6)} patch ${String(j.patch?.bytes ?? '-').padStart(7)} B  ${secs}  ${j.cpuSeconds === null ? '-' : j.cpuSeconds.toFixed(2)} CPU-s${j.id === g.winner ? '  (winner)' : ''}`,
    );
  }
  return lines.join('\n');
}

export const printLine = (l: LogLine) => out(`${l.step.padEnd(12)}| ${l.stream === 'stderr' ? '! ' : ''}${l.text}`);

export const isFinal = (status: JobStatus) => FINAL_STATUSES.includes(status);

/** Follows a job: logs as they come, and progress (a redrawn status line on a terminal, plain lines otherwise). */
export async function follow(api: DraftsmanApi, id: string): Promise<JobView> {
  const started = Date.now();
  let last = '';
  let statusLine = '';
  const clear = () => tty && statusLine && process.stdout.write('\r\x1b[2K');
  const draw = () => tty && statusLine && process.stdout.write(statusLine);
  const poll = setInterval(() => {
    void api.job(id).then(
      (job) => {
        const elapsed = `${((Date.now() - started) / 1000).toFixed(1)}s`;
        const label = `${job.status}${stepLabel(job) ? ` ${stepLabel(job)}` : ''}`;
        if (tty) {
          clear();
          statusLine = `[${elapsed}] ${label}`;
          draw();
        } else if (label !== last) {
          out(`[${elapsed}] ${label}`);
        }
        last = label;
      },
      () => undefined,
    );
  }, 500);
  try {
    await api.logs(id, { follow: true }, (l) => {
      clear();
      printLine(l);
      draw();
    });
  } finally {
    clearInterval(poll);
    clear();
  }
  return api.job(id);
}

/** Waits (long polls) until a job ends or `timeoutMs` passes; returns its last view. */
export async function waitForEnd(api: DraftsmanApi, id: string, timeoutMs: number): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await api.wait(id, Math.min(60, (deadline - Date.now()) / 1000));
    if (isFinal(job.status) || Date.now() >= deadline) return job;
  }
}
