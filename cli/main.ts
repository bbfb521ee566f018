#!/usr/bin/env node
/**
 * `draftsman`: the command line for the API. Plain line output when stdout is
 * not a terminal; a live status line when it is.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { FINAL_STATUSES, type JobView } from '../common/job';
import { projectRoot } from '../stack/paths';
import { ApiClient, ApiError, type LogLine } from './api-client';
import { EXIT, exitForApiError, exitForJob } from './exit-codes';

const USAGE = `usage: draftsman <command> [options]

commands:
  run <spec.json> [--follow]        submit a job (spec file, or - for stdin); prints its id, or with
                                    --follow shows progress and logs until it ends
  wait <id> [--timeout S]           wait for a job's end
  status <id>                       show a job
  logs <id> [--follow] [--step S]   print a job's output (S: <kind>-<index>, e.g. setup-0)
  events <id>                       print a job's audit trail
  patch <id>                        print the job's patch (git diff after the loop)
  cancel <id> [--reason R]          cancel a job
  rerun <id> [--follow]             start the job's spec again as a new job; prints its id
  ls [--status S] [--repo R] [--principal P] [--limit N] [--cursor C]
                                    list jobs, newest first (a next page's cursor is printed last)

options:
  --json               machine-readable output (run, rerun, wait, status, events, ls, cancel)
  --idempotency-key K  run, rerun and cancel: a retry with the same key does nothing new
  --url URL            API address (env DRAFTSMAN_URL, default http://127.0.0.1:3000)
  --token T            API token (env DRAFTSMAN_TOKEN, or the file DRAFTSMAN_TOKEN_FILE, or
                       the token \`npm start\` wrote: DRAFTSMAN_DATA_DIR/api-token, data/api-token)

exit codes: 0 succeeded, 1 failed, 2 usage, 3 cancelled, 4 timed out, 5 rejected,
            6 API unreachable, 7 token refused, 8 other API error (run and wait: the job's end)`;

/** The API token: given, in the environment, in a named file, or the one `npm start` keeps in its data folder. */
function findToken(given: string | undefined): string | undefined {
  if (given) return given;
  if (process.env.DRAFTSMAN_TOKEN) return process.env.DRAFTSMAN_TOKEN;
  const files = [
    process.env.DRAFTSMAN_TOKEN_FILE,
    process.env.DRAFTSMAN_DATA_DIR && path.join(process.env.DRAFTSMAN_DATA_DIR, 'api-token'),
    path.resolve('data', 'api-token'),
    path.join(projectRoot(), 'data', 'api-token'),
  ].filter((f): f is string => Boolean(f));
  for (const f of files) {
    try {
      return fs.readFileSync(f, 'utf8').trim();
    } catch {
      // the next place
    }
  }
  return undefined;
}

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

/** Waits (long polls) until a job ends or `timeoutMs` passes; returns its last view. */
async function waitForEnd(api: ApiClient, id: string, timeoutMs: number): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await api.wait(id, Math.min(60, (deadline - Date.now()) / 1000));
    if (FINAL_STATUSES.includes(job.status) || Date.now() >= deadline) return job;
  }
}

/** After a submission: the id, or with --follow the job's progress and its end as the exit code. */
async function started(api: ApiClient, id: string, values: { follow?: boolean; json?: boolean }, extra: Record<string, unknown> = {}): Promise<number> {
  if (!values.follow) {
    if (values.json) out(JSON.stringify({ id, ...extra }, null, 2));
    else out(id);
    return 0;
  }
  if (!values.json) out(`job ${id} submitted`);
  const job = values.json ? await waitForEnd(api, id, Infinity) : await follow(api, id);
  out(values.json ? JSON.stringify(job, null, 2) : summary(job));
  return exitForJob(job.status);
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
      repo: { type: 'string' },
      principal: { type: 'string' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
      timeout: { type: 'string' },
      'idempotency-key': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, arg] = positionals;
  if (values.help || !command) {
    out(USAGE);
    return values.help ? 0 : EXIT.usage;
  }
  const api = new ApiClient((values.url ?? process.env.DRAFTSMAN_URL ?? 'http://127.0.0.1:3000').replace(/\/$/, ''), findToken(values.token));
  const json = (v: unknown) => out(JSON.stringify(v, null, 2));
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
      const { id } = await api.submit(spec, values['idempotency-key']);
      return started(api, id, values);
    }
    case 'rerun': {
      const { id, rerunOf } = await api.rerun(need('<id>'), values['idempotency-key']);
      return started(api, id, values, { rerunOf });
    }
    case 'wait': {
      const seconds = values.timeout === undefined ? Infinity : Number(values.timeout);
      if (!(seconds > 0)) throw new UsageError(`wait: --timeout must be a number of seconds above 0`);
      const job = await waitForEnd(api, need('<id>'), seconds * 1000);
      if (!FINAL_STATUSES.includes(job.status)) {
        process.stderr.write(`draftsman: ${job.id} is still ${job.status} after ${seconds} s\n`);
        return EXIT.apiError;
      }
      out(values.json ? JSON.stringify(job, null, 2) : summary(job));
      return exitForJob(job.status);
    }
    case 'status': {
      const job = await api.job(need('<id>'));
      out(values.json ? JSON.stringify(job, null, 2) : summary(job));
      return 0;
    }
    case 'events': {
      const { events } = await api.events(need('<id>'));
      if (values.json) json(events);
      else for (const e of events) out(`${e.at}  ${e.type.padEnd(20)} ${Object.keys(e.data).length ? JSON.stringify(e.data) : ''}`.trimEnd());
      return 0;
    }
    case 'patch': {
      process.stdout.write(await api.patch(need('<id>')));
      return 0;
    }
    case 'logs': {
      const end = await api.logs(need('<id>'), { follow: Boolean(values.follow), step: values.step }, printLine);
      if (end.status) out(`job ended: ${end.status}`);
      return 0;
    }
    case 'cancel': {
      const answer = await api.cancel(need('<id>'), values.reason, values['idempotency-key']);
      if (values.json) json(answer);
      else out(`cancel requested for ${arg}`);
      return 0;
    }
    case 'ls': {
      const page = await api.list({ status: values.status, repo: values.repo, principal: values.principal, limit: values.limit, cursor: values.cursor });
      if (values.json) {
        json(page);
        return 0;
      }
      for (const j of page.jobs) out(`${j.id}  ${j.status.padEnd(9)}  ${j.createdAt}  ${j.principal ?? '-'}  ${j.repo ?? '-'}`);
      if (page.nextCursor) out(`more: --cursor ${page.nextCursor}`);
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
      process.exit(EXIT.usage);
    }
    process.stderr.write(`draftsman: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(err instanceof ApiError ? exitForApiError(err.status) : EXIT.apiError);
  },
);

