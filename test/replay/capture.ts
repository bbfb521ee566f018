/**
 * Captures the histories the replay test replays: representative jobs (every phase,
 * a failure, a cancel, a step and a job timeout, a loop across continue-as-new) run
 * by the worker of a given checkout, against a PostgreSQL and a Temporal dev server of
 * its own; payloads are encrypted with the tests' key, as a deployment's would be.
 *
 *   npm run replay:capture -- --worker-root DIR --label NAME [--only SHAPE,SHAPE]
 *
 * DIR is a checkout whose sources are compiled (dist/) and whose workflows are bundled
 * (dist/workflow-bundle.js, `npm run build:bundle`). Histories are written to
 * test/replay/histories/NAME-<shape>[-run<k>].json.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startBenchStack } from '../../bench/harness';
import { type ApprovalDecision, FINAL_STATUSES, type JobView } from '../../common/job';
import { STATUS_QUERY } from '../../common/names';
import type { JobSpec } from '../../common/spec';
import { projectRoot } from '../../common/paths';
import { temporalCliPath } from '../../stack/temporal';
import { startGitFixture } from '../../testing/git-fixture';
import { startWorkerProcess, type WorkerProcess } from '../../testing/worker-process';
import { firstTaskSplit } from './windows';

const OUT = path.join(projectRoot(), 'test', 'replay', 'histories');

function arg(name: string, optional = false): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : undefined;
  if (!v && optional) return '';
  if (!v) {
    console.error('usage: capture --worker-root DIR --label NAME');
    process.exit(2);
  }
  return v;
}

async function main(): Promise<void> {
  const root = path.resolve(arg('worker-root'));
  const label = arg('label');
  // The stack first: its git server, which the egress proxy lets steps reach, is the one the fixture uses.
  const stack = await startBenchStack({ DRAFTSMAN_TASK_QUEUE: 'replay-capture' });
  const repo = await startGitFixture(1);
  const startWorker = () =>
    startWorkerProcess(
      {
        TEMPORAL_ADDRESS: stack.config.TEMPORAL_ADDRESS,
        DATABASE_URL: stack.config.DATABASE_URL!,
        DRAFTSMAN_TASK_QUEUE: 'replay-capture',
        DRAFTSMAN_WORKFLOW_BUNDLE: path.join(root, 'dist', 'workflow-bundle.js'),
        DRAFTSMAN_EGRESS_SOCKET_DIR: stack.config.DRAFTSMAN_EGRESS_SOCKET_DIR!,
        DRAFTSMAN_DEPLOYMENT_ID: stack.config.DRAFTSMAN_DEPLOYMENT_ID!,
        DRAFTSMAN_STOP_GRACE_SECONDS: '2',
        DRAFTSMAN_LOOP_ITERATIONS_PER_RUN: '2',
        DRAFTSMAN_DATA_DIR: stack.dir,
      },
      path.join(root, 'dist', 'worker', 'main.js'),
    );
  const stopWorker = async (w: WorkerProcess) => {
    w.child.kill('SIGTERM');
    await w.exited;
  };
  const base = { repo: repo.url, commit: repo.head };
  const shapes: Record<string, { spec: JobSpec; cancelAfterMs?: number; decide?: ApprovalDecision; queryFirst?: boolean }> = {
    succeeded: { spec: { ...base, setup: ['echo one', 'echo two'], validate: ['true', 'test -f marker'] } },
    failed: { spec: { ...base, setup: ['exit 3'], validate: ['true'] } },
    cancelled: { spec: { ...base, setup: ['trap "exit 42" TERM; sleep 30 & wait'], validate: ['true'] }, cancelAfterMs: 3_000 },
    'step-timeout': { spec: { ...base, setup: ['sleep 30'], timeouts: { stepSeconds: 2 } } },
    'job-timeout': { spec: { ...base, setup: ['sleep 30'], timeouts: { jobSeconds: 4 } } },
    'loop-continue-as-new': {
      spec: { ...base, loop: { command: 'echo it >> iterations', until: 'test $(wc -l < iterations) -ge 3', maxIterations: 5 }, validate: ['true'] },
    },
    'loop-cancelled': { spec: { ...base, loop: { command: 'sleep 30', maxIterations: 3 } }, cancelAfterMs: 4_000 },
    'approval-approved': { spec: { ...base, validate: ['true'], publish: ['echo published'], approval: { before: 'publish' } }, decide: 'approve' },
    // Warm starts: a cache in the workspace saved, then a workspace kept and a job restored from it (no clone, no setup).
    'warm-cache': {
      spec: {
        ...base,
        setup: ['mkdir -p mods && echo x > mods/f'],
        caches: [{ name: 'mods', key: "mods-{{ hashFiles('marker') }}", restoreKeys: [], path: 'mods' }],
        validate: ['test -f mods/f'],
      },
    },
    'warm-snapshot-saved': { spec: { ...base, setup: ['echo kept > kept'], snapshot: { after: 'setup' }, validate: ['test -f kept'] } },
    'warm-snapshot-restored': { spec: { ...base, setup: ['echo kept > kept'], snapshot: { after: 'setup' }, validate: ['test -f kept'] } },
    // Publish on a clean checkout of the commit with the stored patch (the publish-on-approved patch).
    'publish-on-approved': {
      spec: { ...base, loop: { command: 'echo change > changed', maxIterations: 1 }, validate: ['true'], publish: ['git diff --cached --stat'] },
    },
    'approval-timeout': { spec: { ...base, validate: ['true'], approval: { before: 'validate', timeoutSeconds: 2, onTimeout: 'reject' } } },
    // Queried before any worker polls: the query ends the first workflow task early (windows.ts, firstTaskSplit).
    'query-split': { spec: { ...base, validate: ['true'] }, queryFirst: true },
    // A workspace kept after loop step 1, and a job resumed there: its loop goes on at iteration 2.
    'kept-after-loop': { spec: { ...base, loop: { command: 'echo it >> progress', until: 'false', maxIterations: 2 }, snapshot: { after: 'loop-1' } } },
    'resumed-after-loop': {
      spec: {
        ...base,
        from: { job: `replay-${label}-kept-after-loop`, after: 'loop-1' },
        loop: { command: 'echo it >> progress', maxIterations: 2, startAt: 2 },
        validate: ['test $(wc -l < progress) -eq 2'],
      },
    },
  };
  const only = arg('only', true).split(',').filter(Boolean);
  fs.mkdirSync(OUT, { recursive: true });
  // Writes each run of a job's history, oldest first; returns the first run's.
  const writeHistories = async (id: string, shape: string): Promise<{ events: Record<string, unknown>[] }> => {
    const runs: string[] = [];
    for await (const execution of stack.client.workflow.list({ query: `WorkflowId = '${id}'` })) runs.push(execution.runId);
    const written: { events: Record<string, unknown>[] }[] = [];
    // Oldest run first: the list gives the newest first.
    for (const [k, runId] of runs.reverse().entries()) {
      // The CLI writes the canonical JSON form that historyFromJSON (and the replayer) reads.
      const json = execFileSync(
        temporalCliPath(path.resolve('data')),
        ['workflow', 'show', '--address', stack.config.TEMPORAL_ADDRESS, '-w', id, '-r', runId, '-o', 'json'],
        { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 },
      );
      const file = path.join(OUT, `${label}-${shape}${runs.length > 1 ? `-run${k + 1}` : ''}.json`);
      fs.writeFileSync(file, json);
      const history = JSON.parse(json) as { events: Record<string, unknown>[] };
      written.push(history);
      console.log(`wrote ${path.relative(projectRoot(), file)} (${history.events.length} events)`);
    }
    return written[0]!;
  };
  const selected = Object.entries(shapes).filter(([shape]) => !only.length || only.includes(shape));
  let worker: WorkerProcess | undefined;
  try {
    // Shapes queried before any worker: each attempt brings a worker up a second after the query.
    for (const [shape, { spec }] of selected.filter(([, s]) => s.queryFirst)) {
      for (let attempt = 1; ; attempt++) {
        const { id } = await stack.jobs.start(spec, `replay-${label}-${shape}-${attempt}`);
        const handle = stack.client.workflow.getHandle(id);
        const answered = handle.query<JobView>(STATUS_QUERY).catch((e: unknown) => e);
        await new Promise((r) => setTimeout(r, 1_000));
        worker = await startWorker();
        await handle.result().catch(() => undefined);
        console.log(`${shape} attempt ${attempt}: the query answered ${JSON.stringify(((await answered) as JobView).status)}`);
        await stopWorker(worker);
        worker = undefined;
        if (firstTaskSplit(await writeHistories(id, shape))) break;
        // A timing window: the written history lacks it, so the next attempt overwrites it.
        if (attempt === 5) throw new Error(`${shape}: no attempt of 5 split the first workflow task`);
      }
    }
    worker = await startWorker();
    for (const [shape, { spec, cancelAfterMs, decide }] of selected.filter(([, s]) => !s.queryFirst)) {
      const { id } = await stack.jobs.start(spec, `replay-${label}-${shape}`);
      console.log(`started ${shape} as ${id}`);
      if (decide) {
        for (let waited = 0; ; waited += 200) {
          const { status, error } = await stack.client.workflow.getHandle(id).query<JobView>(STATUS_QUERY);
          if (status === 'awaiting_approval') break;
          if (waited > 60_000 || FINAL_STATUSES.includes(status)) throw new Error(`${shape}: the job is ${status}, not at its approval gate: ${error}`);
          await new Promise((r) => setTimeout(r, 200));
        }
        await stack.jobs.approve(id, { decision: decide, comment: 'replay capture' }, 'capture');
      }
      if (cancelAfterMs) {
        await new Promise((r) => setTimeout(r, cancelAfterMs));
        await stack.jobs.cancel(id, 'replay capture');
      }
      await stack.client.workflow
        .getHandle(id)
        .result()
        .catch(() => undefined);
      await writeHistories(id, shape);
    }
    // A group of two attempts from the workspace a parent of the same principal kept; the first to succeed wins.
    if (!only.length || only.includes('group')) {
      const parent = `replay-${label}-group-parent`;
      await stack.jobs.start({ ...base, setup: ['echo kept > kept'], snapshot: { after: 'setup' } }, parent, { principal: 'capture' });
      await stack.client.workflow.getHandle(parent).result();
      const groupId = `grp-replay-${label}`;
      const attempt = (n: number, command: string) => ({
        id: `${groupId}.${n}`,
        variant: n - 1,
        spec: { ...base, from: { job: parent, after: 'setup' as const }, loop: { command, maxIterations: 1 }, validate: ['test -f kept'] },
      });
      await stack.jobs.startGroup({
        groupId,
        parent,
        after: 'setup',
        best: 'first-validated',
        principal: 'capture',
        taskQueue: 'replay-capture',
        members: [attempt(1, 'echo quick > out'), attempt(2, 'sleep 30')],
      });
      await stack.client.workflow.getHandle(groupId).result();
      await writeHistories(groupId, 'group');
    }
  } finally {
    if (worker) await stopWorker(worker);
    // What the warm-start shapes kept goes with the capture (the jobs' own volumes went with them).
    for (const k of await stack.runner.listKept().catch(() => [])) await stack.runner.removeKept(k.id).catch(() => undefined);
    await Promise.allSettled([stack.stop(), repo.stop()]);
  }
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
