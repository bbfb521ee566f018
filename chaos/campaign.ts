/**
 * A seeded chaos campaign against the real stack: PostgreSQL, a Temporal dev server,
 * the Docker engine and worker processes. Jobs of mixed shapes run while faults are
 * injected at times drawn from the seed (worker SIGKILL, SIGSTOP/SIGCONT past the
 * heartbeat timeout, graceful SIGTERM, cancels and repeated cancels); then every job
 * is checked against the invariants (invariants.ts) with the engine's event stream as
 * the witness of step starts.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import { startBenchStack } from '../bench/harness';
import type { JobSpec } from '../common/spec';
import { LABEL_DEPLOYMENT, LABEL_JOB } from '../common/names';
import { startGitFixture } from '../test/e2e/git-fixture';
import { startWorkerProcess, type WorkerProcess } from '../test/e2e/worker-process';
import { checkJob, INVARIANTS, type ObservedJob, type Violation } from './invariants';
import { Prng } from './prng';
import { StartWitness } from './witness';

export interface CampaignResult {
  seed: number;
  jobs: number;
  faults: Record<string, number>;
  /** How often a cancel landed in each phase of its job. */
  boundaries: Record<string, number>;
  violations: Violation[];
  seconds: number;
}

const DEPLOYMENT = 'chaos';
const GRACE_SECONDS = 2;

/** Job shapes, each a spec (commands keep to what the invariants know how to check). */
const SHAPES: Record<string, () => Omit<JobSpec, 'repo' | 'commit'>> = {
  single: () => ({ setup: ['seq 1 50'], validate: ['true'] }),
  batch: () => ({ setup: ['seq 1 20', 'sleep 1; echo s1', 'seq 1 3000'], validate: ['true', 'seq 1 10'] }),
  loop: () => ({ loop: { command: 'echo iterate', until: 'false', maxIterations: 4 }, validate: ['true'] }),
  failing: () => ({ setup: ['echo failing; exit 3'], validate: ['true'] }),
  timeout: () => ({ setup: ['trap "exit 42" TERM; echo ready; sleep 30 & wait'], timeouts: { stepSeconds: 3 } }),
  trapped: () => ({ setup: ['trap "exit 42" TERM; echo ready; sleep 8 & wait'], validate: ['true'] }),
  bigOutput: () => ({ setup: ['seq 1 200000'] }),
};

function commandsOf(spec: Omit<JobSpec, 'repo' | 'commit'>): Record<string, string> {
  const out: Record<string, string> = {};
  (spec.setup ?? []).forEach((c, i) => (out[`setup-${i}`] = c));
  (spec.validate ?? []).forEach((c, i) => (out[`validate-${i}`] = c));
  return out;
}

export async function runCampaign(opts: { seed: number; jobs: number; log?: (line: string) => void }): Promise<CampaignResult> {
  const log = opts.log ?? (() => undefined);
  const rng = new Prng(opts.seed);
  const started = Date.now();
  const [stack, repo] = await Promise.all([
    startBenchStack({ DRAFTSMAN_DEPLOYMENT_ID: DEPLOYMENT, DRAFTSMAN_TASK_QUEUE: `chaos-${opts.seed}` }),
    startGitFixture(1),
  ]);
  const witness = new StartWitness(stack.docker, DEPLOYMENT);
  await witness.start();
  const workerEnv = {
    TEMPORAL_ADDRESS: stack.config.TEMPORAL_ADDRESS,
    DATABASE_URL: stack.config.DATABASE_URL!,
    DRAFTSMAN_TASK_QUEUE: stack.config.DRAFTSMAN_TASK_QUEUE,
    DRAFTSMAN_WORKFLOW_BUNDLE: stack.bundlePath,
    DRAFTSMAN_DEPLOYMENT_ID: DEPLOYMENT,
    DRAFTSMAN_STEP_NETWORK: 'host',
    DRAFTSMAN_STOP_GRACE_SECONDS: String(GRACE_SECONDS),
    DRAFTSMAN_LOOP_ITERATIONS_PER_RUN: '2',
    DRAFTSMAN_DATA_DIR: stack.dir,
  };
  let expectedExit = false;
  const launch = async () => {
    const w = await startWorkerProcess(workerEnv);
    void w.exited.then((code) => {
      if (!expectedExit) log(`worker ${w.child.pid} exited by itself (${code}):\n${w.output().split('\n').slice(-30).join('\n')}`);
    });
    return w;
  };
  let worker: WorkerProcess = await launch();
  const faults: Record<string, number> = {};
  const boundaries: Record<string, number> = {};
  const count = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);
  const jobs: { id: string; shape: string; commands: Record<string, string>; cancelledAt: number | null }[] = [];

  try {
    // Submit jobs a few at a time, with faults between submissions.
    for (let i = 0; i < opts.jobs; i++) {
      const shape = rng.pick(Object.keys(SHAPES));
      const spec = SHAPES[shape]!();
      const { id } = await stack.jobs.start({ repo: repo.url, commit: repo.head, ...spec } as JobSpec, `chaos-${opts.seed}-${i}-${shape}`);
      jobs.push({ id, shape, commands: commandsOf(spec), cancelledAt: null });
      await sleep(rng.int(100, 900));
      const roll = rng.next();
      if (roll < 0.12) {
        count(faults, 'worker SIGKILL');
        expectedExit = true;
        worker.child.kill('SIGKILL');
        await worker.exited;
        expectedExit = false;
        await sleep(rng.int(0, 1500));
        worker = await launch();
      } else if (roll < 0.2) {
        count(faults, 'worker SIGSTOP 7 s, SIGCONT');
        worker.child.kill('SIGSTOP');
        await sleep(7_000);
        worker.child.kill('SIGCONT');
      } else if (roll < 0.3) {
        count(faults, 'worker SIGTERM (graceful)');
        expectedExit = true;
        worker.child.kill('SIGTERM');
        await worker.exited;
        expectedExit = false;
        worker = await launch();
      } else if (roll < 0.55) {
        const target = rng.pick(jobs);
        const view = await stack.store.getJob(target.id);
        const phase = !view || view.status === 'queued' ? 'queued'
          : view.finishedAt ? 'after its end'
          : view.steps.some((s) => s.status === 'running') ? 'during a step' : 'between steps';
        count(boundaries, phase);
        count(faults, rng.next() < 0.3 ? 'repeated cancel' : 'cancel');
        target.cancelledAt ??= Date.now();
        await stack.jobs.cancel(target.id, 'chaos').catch(() => undefined);
        if (faults['repeated cancel']) await stack.jobs.cancel(target.id, 'chaos again').catch(() => undefined);
      }
    }
    log(`seed ${opts.seed}: ${jobs.length} jobs submitted, waiting for their ends`);

    // Bound: the longest job shape, a heartbeat timeout, retry back-off and grace, with slack.
    const deadline = Date.now() + 180_000;
    for (const j of jobs) {
      for (;;) {
        const view = await stack.store.getJob(j.id).catch(() => null);
        if (view?.finishedAt) break;
        if (Date.now() > deadline) break;
        await sleep(250);
      }
    }
    await witness.stop();

    const violations: Violation[] = [];
    for (const j of jobs) {
      const view = await stack.store.getJob(j.id);
      let temporal: string | null = null;
      try {
        temporal = (await stack.client.workflow.getHandle(j.id).describe()).status.name;
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
      const chunks = await stack.store.readLogs(j.id, { afterId: 0, limit: 100_000 });
      const logs: Record<string, string[]> = {};
      for (const c of chunks) (logs[c.step] ??= []).push(...c.lines.map((l) => l.x));
      const events = (await stack.store.events(j.id)).map((e) => {
        const d = e.data as { kind?: string; index?: number };
        return d.kind !== undefined ? `${e.type}:${d.kind}-${d.index}` : e.type;
      });
      const filters = JSON.stringify({ label: [`${LABEL_DEPLOYMENT}=${DEPLOYMENT}`, `${LABEL_JOB}=${j.id}`] });
      const [containers, volumes] = await Promise.all([stack.docker.listContainers({ all: true, filters }), stack.docker.listVolumes({ filters })]);
      const prefix = `draftsman-${DEPLOYMENT}-${j.id}-`;
      const starts: Record<string, number> = {};
      for (const [name, n] of witness.starts) if (name.startsWith(prefix)) starts[name.slice(prefix.length)] = n;
      const observed: ObservedJob = {
        id: j.id,
        shape: j.shape,
        temporal,
        status: view?.status ?? null,
        steps: view?.steps ?? [],
        logs,
        events,
        leftovers: [...containers.map((c) => c.Names[0] ?? c.Id), ...(volumes.Volumes ?? []).map((v) => v.Name)],
        starts,
        cancelledAt: j.cancelledAt,
      };
      violations.push(...checkJob(observed, j.commands));
    }
    return { seed: opts.seed, jobs: jobs.length, faults, boundaries, violations, seconds: Math.round((Date.now() - started) / 1000) };
  } finally {
    await witness.stop().catch(() => undefined);
    expectedExit = true;
    worker.child.kill('SIGCONT');
    worker.child.kill('SIGTERM');
    await Promise.race([worker.exited, sleep(15_000)]);
    worker.child.kill('SIGKILL');
    // Whatever a job left (a violation, reported above) goes with the campaign.
    const filters = JSON.stringify({ label: [`${LABEL_DEPLOYMENT}=${DEPLOYMENT}`] });
    for (const c of await stack.docker.listContainers({ all: true, filters })) await stack.docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    for (const v of (await stack.docker.listVolumes({ filters })).Volumes ?? []) await stack.docker.getVolume(v.Name).remove().catch(() => undefined);
    await Promise.allSettled([stack.stop(), repo.stop()]);
  }
}

/** The campaign's table: faults, jobs, boundary hits, violations per invariant. */
export function report(results: CampaignResult[]): string {
  const sum = (pick: (r: CampaignResult) => Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const r of results) for (const [k, n] of Object.entries(pick(r))) out[k] = (out[k] ?? 0) + n;
    return out;
  };
  const faults = sum((r) => r.faults);
  const boundaries = sum((r) => r.boundaries);
  const rows = [
    `| seeds | ${results.map((r) => r.seed).join(', ')} |`,
    `| jobs | ${results.reduce((a, r) => a + r.jobs, 0)} |`,
    `| faults injected | ${Object.values(faults).reduce((a, n) => a + n, 0)} |`,
    ...Object.entries(faults).map(([k, n]) => `| fault: ${k} | ${n} |`),
    ...Object.entries(boundaries).map(([k, n]) => `| cancel landed ${k} | ${n} |`),
    ...INVARIANTS.map((inv) => `| violations: ${inv} | ${results.reduce((a, r) => a + r.violations.filter((v) => v.invariant === inv).length, 0)} |`),
    `| seconds | ${results.reduce((a, r) => a + r.seconds, 0)} |`,
  ];
  return ['| measure | value |', '|---|---|', ...rows].join('\n');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
