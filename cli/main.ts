#!/usr/bin/env node
/**
 * `draftsman`: the command line for the API. Plain line output when stdout is
 * not a terminal; a live status line when it is.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import type { JobView } from '../common/job';
import { ApiClient, ApiError, type LogLine } from './api-client';

const USAGE = `usage: draftsman <command> [options]

commands:
  run <spec.json> [--follow]        submit a job (spec file, or - for stdin); with --follow, show
                                    progress and logs until it ends (exit 0 only if it succeeded)
  status <id> [--json]              show a job
  logs <id> [--follow] [--step S]   print a job's output (S: <kind>-<index>, e.g. setup-0)
  cancel <id> [--reason R]          cancel a job
  ls [--status S]                   list jobs, newest first

options:
  --url URL      API address (env DRAFTSMAN_URL, default http://127.0.0.1:3000)
  --token T      API token (env DRAFTSMAN_TOKEN)`;

class UsageError extends Error {}

const tty = process.stdout.isTTY === true;
const out = (line: string) => process.stdout.write(`${line}\n`);

function stepLabel(job: JobView): string {
  const running = [...job.steps].reverse().find((s) => s.status === 'running');
  if (!running) return '';
  const loop = job.loop && (running.kind === 'loop' || running.kind === 'until') ? ` (iteration ${job.loop.iterations})` : '';
  return `${running.kind}-${running.index}${loop}`;
}

function summary(job: JobView): string {
  const lines = [
    `${job.id}  ${job.status}`,
    `  repo    ${job.repo ?? '-'} @ ${job.commit ?? '-'}`,
    `  created ${job.createdAt}${job.finishedAt ? `  finished ${job.finishedAt}` : ''}`,
  ];
  if (job.loop) lines.push(`  loop    ${job.loop.iterations} iteration(s), ${job.loop.converged ? 'converged' : 'not converged'}`);
  for (const s of job.steps) {
    const secs = s.durationMs != null ? ` ${(s.durationMs / 1000).toFixed(1)}s` : '';
    lines.push(`  ${`${s.kind}-${s.index}`.padEnd(12)} ${s.status.padEnd(10)} exit ${s.exitCode ?? '-'}${secs}${s.logTruncated ? ' (log truncated)' : ''}${s.oomKilled ? ' (OOM-killed)' : ''}`);
  }
  if (job.waiting) lines.push(`  waiting ${job.waiting}`);
  if (job.error) lines.push(`  error   ${job.error}`);
  return lines.join('\n');
}

const printLine = (l: LogLine) => out(`${l.step.padEnd(12)}| ${l.stream === 'stderr' ? '! ' : ''}${l.text}`);

/** Follows a job: logs as they come, and progress (a redrawn status line on a terminal, plain lines otherwise). */
async function follow(api: ApiClient, id: string): Promise<JobView> {
  const started = Date.now();
  let last = '';
  let statusLine = '';
  const clear = () => tty && statusLine && process.stdout.write('\r\x1b[2K');
  const draw = () => tty && statusLine && process.stdout.write(statusLine);
  const poll = setInterval(() => {
    void api.job(id).then((job) => {
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
    }, () => undefined);
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

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      follow: { type: 'boolean', short: 'f' },
      step: { type: 'string' },
      reason: { type: 'string' },
      status: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, arg] = positionals;
  if (values.help || !command) {
    out(USAGE);
    return values.help ? 0 : 2;
  }
  const api = new ApiClient(
    (values.url ?? process.env.DRAFTSMAN_URL ?? 'http://127.0.0.1:3000').replace(/\/$/, ''),
    values.token ?? process.env.DRAFTSMAN_TOKEN,
  );
  const need = (what: string) => {
    if (!arg) throw new UsageError(`${command}: missing ${what}`);
    return arg;
  };

  switch (command) {
    case 'run': {
      const file = need('<spec.json>');
      let spec: unknown;
      try {
        spec = JSON.parse(fs.readFileSync(file === '-' ? 0 : file, 'utf8'));
      } catch (err) {
        throw new UsageError(`run: cannot read a JSON spec from ${file}: ${(err as Error).message}`);
      }
      const { id } = await api.submit(spec);
      if (!values.follow) {
        out(id);
        return 0;
      }
      out(`job ${id} submitted`);
      const job = await follow(api, id);
      out(summary(job));
      return job.status === 'succeeded' ? 0 : 1;
    }
    case 'status': {
      const job = await api.job(need('<id>'));
      out(values.json ? JSON.stringify(job, null, 2) : summary(job));
      return 0;
    }
    case 'logs': {
      const end = await api.logs(need('<id>'), { follow: Boolean(values.follow), step: values.step }, printLine);
      if (end.status) out(`job ended: ${end.status}`);
      return 0;
    }
    case 'cancel': {
      await api.cancel(need('<id>'), values.reason);
      out(`cancel requested for ${arg}`);
      return 0;
    }
    case 'ls': {
      const { jobs } = await api.list(values.status);
      for (const j of jobs) out(`${j.id}  ${j.status.padEnd(9)}  ${j.createdAt}  ${j.repo ?? '-'}`);
      return 0;
    }
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`draftsman: ${(err as Error).message}\n${USAGE}\n`);
      process.exit(2);
    }
    process.stderr.write(`draftsman: ${err instanceof ApiError || err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);

