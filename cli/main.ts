#!/usr/bin/env node
/**
 * `draftsman`: the command line for the API, on commander (help per command, `draftsman
 * completion bash`). Plain line output when stdout is not a terminal; a live status line
 * when it is. Exit codes: cli/exit-codes.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { ApiError, DraftsmanApi, type ForkRequest, type GroupView, type ListFilter, type ResumeChanges } from '../client/http';
import { type BudgetLimits, parseBudgetLimits } from '../common/budget';
import { BEST_RULES, type BestRule } from '../common/group';
import { JOB_STATUSES } from '../common/job';
import { projectRoot } from '../common/paths';
import { bashCompletion } from './completion';
import { EXIT, exitForApiError, exitForJob } from './exit-codes';
import { follow, groupSummary, isFinal, json, out, printLine, summary, waitForEnd } from './output';
import { parseSpec, SpecFileError } from './spec-file';

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

interface Common {
  url?: string;
  token?: string;
  json?: boolean;
}

/** The options every command has: where the API is, the token, and JSON output. */
function withCommon(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'API address (env DRAFTSMAN_URL, default http://127.0.0.1:3000)')
    .option(
      '--token <token>',
      "API token (env DRAFTSMAN_TOKEN, or the file DRAFTSMAN_TOKEN_FILE, or the token `npm start` wrote: DRAFTSMAN_DATA_DIR/api-token, ./data/api-token, the checkout's data/api-token)",
    )
    .option('--json', "machine-readable output: the API's answer as JSON");
}

const apiOf = (o: Common) => new DraftsmanApi((o.url ?? process.env.DRAFTSMAN_URL ?? 'http://127.0.0.1:3000').replace(/\/$/, ''), findToken(o.token));

/** After a submission: the id, or with --follow (or --wait) the job's end as the exit code. */
async function started(api: DraftsmanApi, id: string, o: Common & { follow?: boolean; wait?: boolean }, extra: Record<string, unknown> = {}): Promise<number> {
  if (!o.follow && !o.wait) {
    if (o.json) json({ id, ...extra });
    else out(id);
    return 0;
  }
  if (!o.json) out(`job ${id} submitted`);
  const job = o.follow && !o.json ? await follow(api, id) : await waitForEnd(api, id, Infinity);
  if (o.json) json(job);
  else out(summary(job));
  return exitForJob(job.status);
}

function readSpec(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new SpecFileError(`cannot read a JSON spec from ${file}: ${(err as Error).message}`);
  }
  return parseSpec(text, file);
}

const seconds = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!(n > 0)) throw new CommanderError(EXIT.usage, 'draftsman.invalidArgument', `${flag} must be a number of seconds above 0`);
  return n;
};

const integer = (flag: string, v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new CommanderError(EXIT.usage, 'draftsman.invalidArgument', `${flag} must be a whole number`);
  return n;
};

/** `--budget 'cpuSeconds:60 egressBytes:1e9'`, or a usage error naming what is wrong. */
function budgetOption(v: string): BudgetLimits {
  let limits: BudgetLimits;
  try {
    limits = parseBudgetLimits(v);
  } catch (err) {
    throw new CommanderError(EXIT.usage, 'draftsman.invalidArgument', `--budget: ${(err as Error).message}`);
  }
  if (Object.keys(limits).length === 0)
    throw new CommanderError(EXIT.usage, 'draftsman.invalidArgument', '--budget: give at least one limit, e.g. cpuSeconds:60');
  return limits;
}

/** Polls a group until every attempt has ended. */
async function waitForGroup(api: DraftsmanApi, id: string): Promise<GroupView> {
  for (;;) {
    const group = await api.group(id);
    if (group.endedAt) return group;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The program; each action sets `code`, the process's exit code. */
function program(setCode: (code: number) => void): Command {
  const p = new Command('draftsman')
    .description("Draftsman's command line: start, watch, cancel, rerun, resume and fork jobs through the API.")
    .addHelpText(
      'after',
      `
Exit codes: 0 succeeded, 1 failed, 2 usage, 3 cancelled, 4 timed out, 5 rejected,
            6 API unreachable, 7 token refused, 8 other API error
            (run --follow/--wait, rerun --follow/--wait and wait: the job's end)`,
    )
    .showHelpAfterError('(draftsman <command> --help for its options)')
    .exitOverride();
  const command = (name: string) => withCommon(p.command(name)).exitOverride();
  /** What a command that starts a job offers: follow or wait for its end, and a key for retries. */
  const starting = (cmd: Command) =>
    cmd
      .option('-f, --follow', 'show progress and logs until the job ends; exit with its end')
      .option('--wait', "wait quietly for the job's end; exit with it")
      .option('--idempotency-key <key>', 'a retry with the same key starts nothing new');

  starting(command('run'))
    .description('submit a job; prints its id, or with --follow its progress and logs until it ends')
    .argument('<spec>', 'spec file, JSON or YAML (- for stdin)')
    .action(async (file: string, o: Common & { follow?: boolean; wait?: boolean; idempotencyKey?: string }) => {
      const spec = readSpec(file);
      const api = apiOf(o);
      const { id } = await api.submit(spec, o.idempotencyKey);
      setCode(await started(api, id, o));
    });

  starting(command('rerun'))
    .description("start a job's spec again as a new job of yours; prints its id")
    .argument('<id>', 'the job to run again')
    .action(async (id: string, o: Common & { follow?: boolean; wait?: boolean; idempotencyKey?: string }) => {
      const api = apiOf(o);
      const answer = await api.rerun(id, o.idempotencyKey);
      setCode(await started(api, answer.id, o, { rerunOf: answer.rerunOf }));
    });

  starting(command('resume'))
    .description('start a failed or timed-out job again from the last workspace it kept, running only what follows; prints the new id')
    .argument('<id>', 'the job to resume')
    .option('--spec <file>', 'changes to its loop, validate and publish, JSON or YAML: { "validate": ["npm test"] }')
    .action(async (id: string, o: Common & { spec?: string; follow?: boolean; wait?: boolean; idempotencyKey?: string }) => {
      const api = apiOf(o);
      const changes = (o.spec ? readSpec(o.spec) : {}) as ResumeChanges;
      const answer = await api.resume(id, changes, o.idempotencyKey);
      if (!o.json && !o.follow && !o.wait) process.stderr.write(`resuming ${id} from its workspace kept after ${answer.from}\n`);
      setCode(await started(api, answer.id, o, { resumeOf: answer.resumeOf, from: answer.from }));
    });

  command('fork')
    .description("start a group of attempts (best-of-N) from the workspace a job kept; prints the group's id and its attempts'")
    .argument('<id>', 'the job whose kept workspace the attempts start from')
    .requiredOption('--after <point>', 'where the job kept it: setup or loop-<k>')
    .option('--count <n>', 'how many attempts, 1 to 32 (default: one per variant)', (v) => integer('--count', v))
    .option('--variants <file>', 'what each attempt changes, JSON or YAML: [{ "loop": { "command": "..." } }, { "env": { "MODEL": "b" } }]')
    .addOption(new Option('--best <rule>', 'first-validated cancels the rest once one succeeds; smallest-patch picks once all ended').choices(BEST_RULES))
    .option('--wait', 'wait until every attempt has ended; exit 0 when one won (or, without a rule, one succeeded), else 1')
    .option('--idempotency-key <key>', 'a retry with the same key starts nothing new')
    .action(async (id: string, o: Common & { after: string; count?: number; variants?: string; best?: BestRule; wait?: boolean; idempotencyKey?: string }) => {
      const api = apiOf(o);
      const variants = o.variants ? readSpec(o.variants) : undefined;
      if (variants !== undefined && !Array.isArray(variants)) throw new SpecFileError(`${o.variants}: must hold a list of variants`);
      const body = {
        after: o.after,
        ...(o.count !== undefined ? { count: o.count } : {}),
        ...(variants ? { variants } : {}),
        ...(o.best ? { best: o.best } : {}),
      };
      const answer = await api.fork(id, body as ForkRequest, o.idempotencyKey);
      if (!o.wait) {
        if (o.json) json(answer);
        else out([answer.id, ...answer.jobs.map((j) => `  ${j}`)].join('\n'));
        return;
      }
      if (!o.json) out(`group ${answer.id}: ${answer.jobs.length} attempt(s) started`);
      const group = await waitForGroup(api, answer.id);
      out(o.json ? JSON.stringify(group, null, 2) : groupSummary(group));
      setCode(group.winner || (group.best === 'none' && group.jobs.some((j) => j.status === 'succeeded')) ? EXIT.succeeded : EXIT.failed);
    });

  command('usage')
    .description("the jobs' ledgers summed: wall and CPU time, memory peak, steps, egress; yours, or (admin scope) anyone's")
    .option('--principal <name>', "one principal's jobs (another's needs the admin scope)")
    .option('--label <key=value>', 'jobs with this label')
    .option('--from <time>', 'jobs created at or after it (ISO 8601; default 30 days before --to)')
    .option('--to <time>', 'jobs created before it (default now)')
    .action(async (o: Common & { principal?: string; label?: string; from?: string; to?: string }) => {
      const query = Object.fromEntries(Object.entries({ principal: o.principal, label: o.label, from: o.from, to: o.to }).filter(([, v]) => v !== undefined));
      const u = await apiOf(o).usage(query);
      if (o.json) return void json(u);
      out(`${u.from} to ${u.to}${u.principal ? `, ${u.principal}` : ''}${u.label ? `, ${u.label}` : ''}`);
      const line = (name: string, t: typeof u.total) =>
        `  ${name.padEnd(24)} ${String(t.jobs).padStart(5)} jobs  ${t.cpuSeconds.toFixed(1).padStart(9)} CPU-s  ${t.wallSeconds.toFixed(0).padStart(8)} s wall  ${String(t.steps).padStart(6)} steps  ${(t.egressBytesIn / 2 ** 20).toFixed(1)} MiB in`;
      out(line('all', u.total));
      for (const p of u.byPrincipal) out(line(p.principal, p));
    });

  command('group')
    .description('show a group of attempts: each with its status, validation, patch size and duration, and the winner')
    .argument('<id>', "the group's id (grp-...)")
    .action(async (id: string, o: Common) => {
      const group = await apiOf(o).group(id);
      out(o.json ? JSON.stringify(group, null, 2) : groupSummary(group));
    });

  command('wait')
    .description("wait for a job's end; exit with it (8 if still running past --timeout)")
    .argument('<id>')
    .option('--timeout <seconds>', 'give up after this long', seconds('--timeout'))
    .action(async (id: string, o: Common & { timeout?: number }) => {
      const job = await waitForEnd(apiOf(o), id, (o.timeout ?? Infinity) * 1000);
      if (!isFinal(job.status)) {
        process.stderr.write(`draftsman: ${job.id} is still ${job.status} after ${o.timeout} s\n`);
        setCode(EXIT.apiError);
        return;
      }
      out(o.json ? JSON.stringify(job, null, 2) : summary(job));
      setCode(exitForJob(job.status));
    });

  command('status')
    .description('show a job')
    .argument('<id>')
    .action(async (id: string, o: Common) => {
      const job = await apiOf(o).job(id);
      out(o.json ? JSON.stringify(job, null, 2) : summary(job));
    });

  command('logs')
    .description("print a job's output; with --follow, live until it ends (resuming after a dropped connection)")
    .argument('<id>')
    .option('-f, --follow', 'follow the live stream')
    .option('--step <step>', 'one step only: <kind>-<index>, e.g. setup-0')
    .action(async (id: string, o: Common & { follow?: boolean; step?: string }) => {
      const lineOut = o.json ? (l: unknown) => out(JSON.stringify(l)) : printLine;
      const end = await apiOf(o).logs(id, { follow: Boolean(o.follow), step: o.step }, lineOut);
      if (end.status && !o.json) out(`job ended: ${end.status}`);
    });

  command('events')
    .description("print a job's audit trail")
    .argument('<id>')
    .action(async (id: string, o: Common) => {
      const { events } = await apiOf(o).events(id);
      if (o.json) json(events);
      else for (const e of events) out(`${e.at}  ${e.type.padEnd(20)} ${Object.keys(e.data).length ? JSON.stringify(e.data) : ''}`.trimEnd());
    });

  command('patch')
    .description("print the job's patch (git diff after the loop), ready for git apply")
    .argument('<id>')
    .action(async (id: string, o: Common) => {
      const patch = await apiOf(o).patch(id);
      if (o.json) json({ patch });
      else process.stdout.write(patch);
    });

  command('cancel')
    .description('cancel a job')
    .argument('<id>')
    .option('--reason <reason>', "why (kept in the job's error and audit trail)")
    .option('--idempotency-key <key>', 'a retry with the same key does nothing new')
    .action(async (id: string, o: Common & { reason?: string; idempotencyKey?: string }) => {
      const answer = await apiOf(o).cancel(id, o.reason, o.idempotencyKey);
      if (o.json) json(answer);
      else out(`cancel requested for ${id}`);
    });

  for (const [name, decision] of [
    ['approve', 'approve'],
    ['reject', 'reject'],
  ] as const) {
    const cmd = command(name)
      .description(`${name} a job waiting at its approval gate (needs the approve scope)`)
      .argument('<id>')
      .option('--comment <text>', 'why (kept in the audit trail)')
      .option('--idempotency-key <key>', 'a retry with the same key does nothing new');
    if (decision === 'approve') {
      cmd.option(
        '--budget <limits>',
        "at a budget's gate, the limits to go on with: 'cpuSeconds:60 egressBytes:1e9' (default: the crossed one doubled)",
        budgetOption,
      );
    }
    cmd.action(async (id: string, o: Common & { comment?: string; idempotencyKey?: string; budget?: BudgetLimits }) => {
      const answer = await apiOf(o).approval(
        id,
        { decision, ...(o.comment ? { comment: o.comment } : {}), ...(o.budget ? { budget: o.budget } : {}) },
        o.idempotencyKey,
      );
      if (o.json) json(answer);
      else out(`${id} ${decision === 'approve' ? 'approved' : 'rejected'} by ${answer.by} at ${answer.at}`);
    });
  }

  command('ls')
    .description("list jobs, newest first (a next page's cursor is printed last)")
    .addOption(new Option('--status <status>', 'only jobs in this status').choices([...JOB_STATUSES]))
    .option('--repo <url>', 'only jobs of this repository')
    .option('--commit <sha>', 'only jobs of this commit (40 hex digits)')
    .option('--principal <name>', 'only jobs started by this principal')
    .option('--label <key=value>', 'only jobs with this label')
    .option('--q <text>', 'free text: a job id or commit starting with it, or a repository or principal containing it')
    .option('--created-after <time>', 'ISO 8601 with offset')
    .option('--created-before <time>', 'ISO 8601 with offset')
    .option('--limit <n>', 'jobs per page (1 to 200, default 50)')
    .option('--cursor <cursor>', 'the page after this nextCursor')
    .action(async (o: Common & Record<string, string | undefined>) => {
      const filter = Object.fromEntries(
        (['status', 'repo', 'commit', 'principal', 'label', 'q', 'createdAfter', 'createdBefore', 'limit', 'cursor'] as const).flatMap((k) =>
          o[k] === undefined ? [] : [[k, o[k]]],
        ),
      ) as ListFilter;
      const page = await apiOf(o).list(filter);
      if (o.json) {
        json(page);
        return;
      }
      for (const j of page.jobs) out(`${j.id}  ${j.status.padEnd(9)}  ${j.createdAt}  ${j.principal ?? '-'}  ${j.repo ?? '-'}`);
      if (page.nextCursor) out(`more: --cursor ${page.nextCursor}`);
    });

  command('hosts')
    .description('list the hosts that run steps: state, jobs running of capacity, jobs held, free disk')
    .action(async (o: Common) => {
      const answer = await apiOf(o).hosts();
      if (o.json) {
        json(answer);
        return;
      }
      for (const h of answer.hosts) {
        out(
          `${h.id.padEnd(20)}  ${h.state.padEnd(8)}  ${h.running}/${h.capacity} running  ${h.holding} held  ${h.freeDiskMb === null ? '-' : `${h.freeDiskMb} MiB free`}  seen ${h.seenAt}`,
        );
      }
      out(`${answer.waiting} job(s) waiting for a host`);
    });

  for (const [name, draining, what] of [
    ['drain', true, 'stop a host from taking new jobs: its jobs finish there, then its workers stop (admin scope)'],
    ['undrain', false, 'let a drained host take jobs again (admin scope; a worker started there does it too)'],
  ] as const) {
    command(name)
      .description(what)
      .argument('<host>', 'the host id (draftsman hosts)')
      .action(async (id: string, o: Common) => {
        const host = await apiOf(o).drain(id, draining);
        if (o.json) json(host);
        else out(`${host.id} ${host.state}: ${host.running} running, ${host.holding} held`);
      });
  }

  command('caches')
    .description('list the saved dependency caches and kept workspaces: id, kind, size, last use, key, scope (admin scope)')
    .option('--kind <kind>', 'cache or snapshot')
    .action(async (o: Common & { kind?: 'cache' | 'snapshot' }) => {
      const answer = await apiOf(o).caches(o.kind);
      if (o.json) {
        json(answer);
        return;
      }
      for (const k of answer.caches) {
        out(
          `${k.id}  ${k.kind.padEnd(8)}  ${String(Math.ceil(k.bytes / 1024)).padStart(9)} KiB  used ${k.lastUsedAt}  ${k.name ? `${k.name}:` : ''}${k.key}  ${k.scope}`,
        );
      }
      out(`${answer.caches.length} entr${answer.caches.length === 1 ? 'y' : 'ies'}, ${Math.ceil(answer.bytes / 2 ** 20)} MiB`);
    });

  command('cache-delete')
    .description("forget a saved cache or kept workspace: no job restores it from now on, and its host's janitor removes it (admin scope)")
    .argument('<id>', 'the entry id (draftsman caches)')
    .action(async (id: string, o: Common) => {
      const gone = await apiOf(o).deleteCache(id);
      if (o.json) json(gone);
      else out(`forgot ${gone.kind} ${gone.id} (${gone.name ? `${gone.name}:` : ''}${gone.key})`);
    });

  p.command('completion')
    .description('print a shell completion script (bash): eval "$(draftsman completion bash)"')
    .argument('[shell]', 'bash', 'bash')
    .exitOverride()
    .action((shell: string) => {
      if (shell !== 'bash') throw new CommanderError(EXIT.usage, 'draftsman.invalidArgument', `completion: only bash is supported, not ${shell}`);
      const commands = p.commands.map((c) => ({ name: c.name(), options: [...c.options.map((o) => o.long!).filter(Boolean), '--help'] }));
      process.stdout.write(bashCompletion('draftsman', commands));
    });
  return p;
}

async function main(argv: string[]): Promise<number> {
  let code = 0;
  const p = program((c) => (code = c));
  if (argv.length === 0) {
    p.outputHelp({ error: true });
    return EXIT.usage;
  }
  await p.parseAsync(argv, { from: 'user' });
  return code;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof CommanderError) {
      // Help and --version are answers, not errors; commander has printed them (and any usage error).
      const asked = err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version';
      if (!asked && err.code.startsWith('draftsman.')) process.stderr.write(`draftsman: ${err.message}\n`);
      process.exit(asked ? 0 : EXIT.usage);
    }
    if (err instanceof SpecFileError) {
      process.stderr.write(`draftsman: ${err.message}\n`);
      process.exit(EXIT.usage);
    }
    process.stderr.write(`draftsman: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(err instanceof ApiError ? exitForApiError(err.status) : EXIT.apiError);
  },
);
