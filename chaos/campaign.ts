/**
 * A seeded chaos campaign against the real stack (chaos/stack.ts). Jobs of mixed
 * shapes run while faults are injected at times drawn from the seed, and at named
 * boundaries of a step's life, where the worker's test probe pauses the job and says so;
 * then every job is checked against the invariants (invariants.ts), with the engine's
 * event stream as the witness of step starts.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Boundary } from '../activities/deps';
import type { JobSpec } from '../common/spec';
import { LABEL_DEPLOYMENT, LABEL_JOB } from '../common/names';
import { startGitFixture } from '../test/e2e/git-fixture';
import { checkJob, INVARIANTS, type ObservedJob, type Violation } from './invariants';
import { Prng } from './prng';
import { startChaosStack } from './stack';
import { StartWitness } from './witness';

export interface CampaignOptions {
  seed: number;
  jobs: number;
  /** Boundary fixes switched off in the worker (DRAFTSMAN_TEST_FAULTS), to show the campaign sees them. */
  faultSwitches?: string[];
  /** Prints each violating job's steps and events, and the fault timeline. */
  verbose?: boolean;
  log?: (line: string) => void;
}

export interface CampaignResult {
  seed: number;
  jobs: number;
  faults: Record<string, number>;
  /** How often a fault landed at each named boundary. */
  boundaries: Record<string, number>;
  violations: Violation[];
  seconds: number;
}

const DEPLOYMENT = 'chaos';
/** After the last fault, every job must have ended within this: the longest job (~15 s), a heartbeat timeout (5 s), retry back-off (10 s), the grace period (2 s), a PostgreSQL or Temporal restart (~5 s), with slack. */
export const END_BOUND_MS = 90_000;

type Shape = Omit<JobSpec, 'repo' | 'commit'>;
const SHAPES: Record<string, () => Shape> = {
  single: () => ({ setup: ['seq 1 50'], validate: ['true'] }),
  batch: () => ({ setup: ['seq 1 20', 'sleep 1; echo s1', 'seq 1 3000'], validate: ['true', 'seq 1 10'] }),
  loop: () => ({ loop: { command: 'echo iterate', until: 'false', maxIterations: 4 }, validate: ['true'] }),
  failing: () => ({ setup: ['echo failing; exit 3'], validate: ['true'] }),
  stepTimeout: () => ({ setup: ['trap "exit 42" TERM; echo ready; sleep 30 & wait'], timeouts: { stepSeconds: 2 } }),
  jobTimeout: () => ({ setup: ['seq 1 10', 'sleep 1; echo a', 'trap "exit 42" TERM; sleep 2 & wait', 'sleep 5'], timeouts: { jobSeconds: 4 } }),
  trapped: () => ({ setup: ['trap "exit 42" TERM; echo ready; sleep 6 & wait'], validate: ['true'] }),
  bigOutput: () => ({ setup: ['seq 1 200000'] }),
};

/** Where a probe cancel lands, and a shape that reaches it; `until-2` ends the first run of a loop (continue-as-new). */
const PROBED: { boundary: Boundary; step?: string; shape: string; name: string }[] = [
  { boundary: 'before-create', step: 'setup-0', shape: 'trapped', name: 'before container create' },
  { boundary: 'after-create', step: 'setup-0', shape: 'trapped', name: 'after container create (step start)' },
  { boundary: 'at-step-end', shape: 'batch', name: 'at a step end' },
  { boundary: 'between-steps', shape: 'batch', name: 'between batch steps' },
  { boundary: 'at-step-end', step: 'until-2', shape: 'loop', name: 'at continue-as-new' },
  { boundary: 'during-cleanup', shape: 'failing', name: 'during cleanup' },
];

function commandsOf(spec: Shape): Record<string, string> {
  const out: Record<string, string> = {};
  (spec.setup ?? []).forEach((c, i) => (out[`setup-${i}`] = c));
  (spec.validate ?? []).forEach((c, i) => (out[`validate-${i}`] = c));
  return out;
}

interface Submitted {
  id: string;
  shape: string;
  commands: Record<string, string>;
  /** A boundary cancel: where it landed (a probed boundary, or `queued`) and when it was sent. */
  probed?: { boundary: Boundary | 'queued'; step: string; at: number };
}

export async function runCampaign(opts: CampaignOptions): Promise<CampaignResult> {
  const log = opts.log ?? (() => undefined);
  const rng = new Prng(opts.seed);
  const started = Date.now();
  const [stack, repo] = await Promise.all([
    startChaosStack({
      name: String(opts.seed),
      deployment: DEPLOYMENT,
      log,
      workerEnv: opts.faultSwitches?.length ? { DRAFTSMAN_TEST_FAULTS: opts.faultSwitches.join(',') } : {},
    }),
    startGitFixture(1),
  ]);
  const witness = new StartWitness(stack.docker, DEPLOYMENT);
  await witness.start();
  const faults: Record<string, number> = {};
  const boundaries: Record<string, number> = {};
  const timeline: string[] = [];
  const count = (m: Record<string, number>, k: string) => {
    m[k] = (m[k] ?? 0) + 1;
    if (m === faults) timeline.push(`${new Date().toISOString()} ${k}`);
  };
  /** When the stack itself was disturbed (not cancels): [start, end] in ms. */
  const disturbed: [number, number][] = [];
  const disturb = async (name: string, fault: () => Promise<void>) => {
    count(faults, name);
    const start = Date.now();
    await fault();
    disturbed.push([start, Date.now()]);
  };
  const faultBetween = (from: number, to: number) => disturbed.some(([a, b]) => a <= to && b >= from);
  const jobs: Submitted[] = [];

  // The probe's announcements: each is answered with a cancel while the job waits there.
  let read = 0;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const lines = stack.workerLines();
      for (; read < lines.length; read++) {
        const m = /^\[chaos-probe\] (\S+) (\S+) (\S+)$/.exec(lines[read]!);
        const job = m && jobs.find((j) => j.id === m[2]);
        // A worker started after a fault announces the job again: the first cancel stands.
        if (!m || !job || job.probed) continue;
        job.probed = { boundary: m[1] as Boundary, step: m[3]!, at: Date.now() };
        count(boundaries, PROBED.find((p) => job.id.endsWith(probeSuffix(p)))?.name ?? m[1]!);
        count(faults, 'cancel at a named boundary');
        timeline.push(`${new Date().toISOString()} probe cancel ${job.id} ${m[1]} ${m[3]}`);
        await stack.jobs.cancel(job.id, 'chaos at a boundary').catch(() => undefined);
      }
      await sleep(20);
    }
  })();

  try {
    let probes = 0;
    for (let i = 0; i < opts.jobs; i++) {
      // Every third job is cancelled at a named boundary, the boundaries in turn.
      const probe = i % 3 === 1 ? PROBED[probes++ % PROBED.length] : undefined;
      const shape = probe?.shape ?? rng.pick(Object.keys(SHAPES));
      const spec = SHAPES[shape]!();
      const id = `chaos-${opts.seed}-${i}-${shape}${probe ? probeSuffix(probe) : ''}`;
      await stack.jobs.start({ repo: repo.url, commit: repo.head, ...spec } as JobSpec, id);
      const job: Submitted = { id, shape, commands: commandsOf(spec) };
      jobs.push(job);
      if (i % 9 === 5) {
        // Cancelled as soon as it is submitted, while it is still queued.
        job.probed = { boundary: 'queued', step: '-', at: Date.now() };
        count(boundaries, 'queued (cancelled on submit)');
        count(faults, 'cancel at a named boundary');
        await stack.jobs.cancel(id, 'chaos while queued');
      }
      if (shape === 'stepTimeout' || shape === 'jobTimeout') count(faults, `${shape === 'stepTimeout' ? 'step' : 'job'} time limit`);
      await sleep(rng.int(100, 900));
      await injectFault();
    }
    log(`seed ${opts.seed}: ${jobs.length} jobs submitted, waiting for their ends`);

    const deadline = Date.now() + END_BOUND_MS;
    for (const j of jobs) {
      while (Date.now() < deadline && !(await stack.store.getJob(j.id).catch(() => null))?.finishedAt) await sleep(250);
    }
    watching = false;
    await watcher;
    await witness.stop();
    const violations: Violation[] = [];
    for (const j of jobs) {
      const observed = await observe(j);
      const found = checkJob(observed, j.commands, j.probed ? { ...j.probed, faultBetween } : null);
      violations.push(...found);
      if (found.length && opts.verbose) {
        log(`${j.id}: ${JSON.stringify({ status: observed.status, temporal: observed.temporal, steps: observed.steps, events: observed.events })}`);
        const history = await stack.client.workflow.getHandle(j.id).fetchHistory().catch(() => null);
        const at = (t: unknown) => (t && typeof t === 'object' && 'seconds' in t ? new Date(Number((t as { seconds: unknown }).seconds) * 1000 + Math.round(Number((t as { nanos?: number }).nanos ?? 0) / 1e6)).toISOString() : '?');
        log(`${j.id} history (last run):\n${(history?.events ?? []).map((e) => `  ${at(e.eventTime)} ${e.eventId} ${e.eventType}`).join('\n')}`);
      }
    }
    if (violations.length && opts.verbose) log(`faults:\n${timeline.join('\n')}`);
    return { seed: opts.seed, jobs: jobs.length, faults, boundaries, violations, seconds: Math.round((Date.now() - started) / 1000) };
  } finally {
    watching = false;
    await watcher.catch(() => undefined);
    await witness.stop().catch(() => undefined);
    // Whatever a job left (a violation, reported above) goes with the campaign.
    const filters = JSON.stringify({ label: [`${LABEL_DEPLOYMENT}=${DEPLOYMENT}`] });
    await stack.stop();
    for (const c of await stack.docker.listContainers({ all: true, filters })) await stack.docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    for (const v of (await stack.docker.listVolumes({ filters })).Volumes ?? []) await stack.docker.getVolume(v.Name).remove().catch(() => undefined);
    await repo.stop();
  }

  /** One fault drawn from the seed, or none. */
  async function injectFault(): Promise<void> {
    const roll = rng.next();
    if (roll < 0.06) {
      await disturb('worker SIGKILL', () => stack.restartWorker('SIGKILL'));
    } else if (roll < 0.11) {
      await disturb('worker SIGSTOP 7 s, then SIGCONT', () => stack.pauseWorker(7_000));
    } else if (roll < 0.16) {
      await disturb('worker SIGTERM (graceful), restarted', () => stack.restartWorker('SIGTERM'));
    } else if (roll < 0.2) {
      const how = rng.next() < 0.5 ? 'SIGTERM' : 'SIGKILL';
      await disturb('Temporal server restart', () => stack.restartTemporal(how));
    } else if (roll < 0.24) {
      const outage = rng.next() < 0.5;
      const how = rng.next() < 0.5 ? 'SIGINT' : 'SIGKILL';
      await disturb(outage ? 'PostgreSQL outage of 3 s' : 'PostgreSQL restart', () => stack.restartPostgres(how, outage ? 3_000 : 0));
    } else if (roll < 0.27) {
      await disturb('control plane SIGKILL (worker, Temporal, PostgreSQL), restarted', () => stack.killControlPlane());
    } else if (roll < 0.45) {
      const target = rng.pick(jobs);
      const view = await stack.store.getJob(target.id).catch(() => null);
      const phase = !view || view.status === 'queued' ? 'queued' : view.finishedAt ? 'after its end' : view.steps.some((s) => s.status === 'running') ? 'during a step' : 'between steps';
      count(boundaries, `random cancel: ${phase}`);
      const repeated = rng.next() < 0.3;
      count(faults, repeated ? 'repeated cancel' : 'cancel');
      await stack.jobs.cancel(target.id, 'chaos').catch(() => undefined);
      if (repeated) await stack.jobs.cancel(target.id, 'chaos again').catch(() => undefined);
    }
  }

  async function observe(j: Submitted): Promise<ObservedJob> {
    const view = await stack.store.getJob(j.id);
    let temporal: string | null = null;
    try {
      temporal = (await stack.client.workflow.getHandle(j.id).describe()).status.name;
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
    const logs: Record<string, string[]> = {};
    for (const c of await stack.store.readLogs(j.id, { afterId: 0, limit: 100_000 })) (logs[c.step] ??= []).push(...c.lines.map((l) => l.x));
    const events = (await stack.store.events(j.id)).map((e) => {
      const d = e.data as { kind?: string; index?: number };
      return d.kind !== undefined ? `${e.type}:${d.kind}-${d.index}` : e.type;
    });
    const filters = JSON.stringify({ label: [`${LABEL_DEPLOYMENT}=${DEPLOYMENT}`, `${LABEL_JOB}=${j.id}`] });
    const [containers, volumes] = await Promise.all([stack.docker.listContainers({ all: true, filters }), stack.docker.listVolumes({ filters })]);
    const prefix = `draftsman-${DEPLOYMENT}-${j.id}-`;
    const starts: Record<string, number> = {};
    for (const [name, n] of witness.starts) if (name.startsWith(prefix)) starts[name.slice(prefix.length)] = n;
    return {
      id: j.id,
      shape: j.shape,
      temporal,
      status: view?.status ?? null,
      steps: view?.steps ?? [],
      logs,
      events,
      leftovers: [...containers.map((c) => c.Names[0] ?? c.Id), ...(volumes.Volumes ?? []).map((v) => v.Name)],
      starts,
    };
  }
}

const probeSuffix = (p: { boundary: Boundary; step?: string }) => `-at-${p.boundary}${p.step ? `-${p.step}` : ''}`;

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
    ...Object.entries(faults).sort().map(([k, n]) => `| fault: ${k} | ${n} |`),
    ...Object.entries(boundaries).sort().map(([k, n]) => `| boundary hit: ${k} | ${n} |`),
    ...INVARIANTS.map((inv) => `| violations: ${inv} | ${results.reduce((a, r) => a + r.violations.filter((v) => v.invariant === inv).length, 0)} |`),
    `| seconds | ${results.reduce((a, r) => a + r.seconds, 0)} |`,
  ];
  return ['| measure | value |', '|---|---|', ...rows].join('\n');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
