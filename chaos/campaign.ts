/**
 * A seeded chaos campaign against the real stack (chaos/stack.ts). Jobs of mixed
 * shapes run while faults are injected at times drawn from the seed, and at named
 * boundaries of a step's life, where the worker's test probe pauses the job and says so;
 * then every job is checked against the invariants (invariants.ts), with the engine's
 * event stream as the witness of step starts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Boundary } from '../testing/faults';
import { loadConfig } from '../common/config';
import type { JobSpec } from '../common/spec';
import { startGitFixture } from '../testing/git-fixture';
import { leftovers } from '../testing/stack';
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
  /** Off: only the named boundaries and the engine restarts under running steps, no faults at random times. */
  randomFaults?: boolean;
  /** Ends the campaign early (Ctrl-C): it stops submitting and waiting, and cleans up. */
  signal?: AbortSignal;
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

/**
 * After a worker is killed, a workflow it ran last still sends its next task to it
 * first: until the server notices that no worker polls there (about 10 s), each such
 * task waits the sticky timeout (3 s, worker/worker.ts) before another worker takes
 * it, and a cancel sent then is that much later.
 */
const WORKER_LOSS_AFTERMATH_MS = 15_000;
/** A killed worker's step is taken over after the heartbeat timeout (5 s) and a retry, with slack. */
const HEARTBEAT_TAKEOVER_MS = 10_000;
/** How long the engine may answer no ping before the campaign's supervisor restarts it. */
const ENGINE_HANG_MS = 20_000;

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
  const repo = await startGitFixture(1);
  const stack = await startChaosStack({
    name: String(opts.seed),
    deployment: DEPLOYMENT,
    images: [loadConfig({}).DRAFTSMAN_DEFAULT_IMAGE],
    egressExceptions: [repo.egressException],
    log,
    workerEnv: opts.faultSwitches?.length ? { DRAFTSMAN_TEST_FAULTS: opts.faultSwitches.join(',') } : {},
  });
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
  /** When no worker watched the running steps: from a worker's loss until the next attempt could have taken over. */
  const workerAway: [number, number][] = [];
  const disturb = async (name: string, fault: () => Promise<void>, aftermathMs = 0, watchGapMs?: number) => {
    count(faults, name);
    const start = Date.now();
    await fault();
    disturbed.push([start, Date.now() + aftermathMs]);
    if (watchGapMs !== undefined) workerAway.push([start, Date.now() + watchGapMs]);
  };
  const faultBetween = (from: number, to: number) => disturbed.some(([a, b]) => a <= to && b >= from);
  /** When the engine was told to stop, and when it answered again (ms). */
  const engineOutages: [number, number][] = [];
  let engineBusy = false;
  const restartEngine = async (how: 'SIGTERM' | 'SIGKILL', name = `Docker engine restart (${how})`, downMs = 2_000) => {
    engineBusy = true;
    const down = Date.now();
    try {
      await disturb(name, () => stack.restartEngine(how, downMs));
    } finally {
      engineOutages.push([down, Date.now()]);
      engineBusy = false;
    }
  };
  /**
   * The engine's supervisor, as an operator's would be (a watchdog on its health): an
   * engine that answers no ping for 20 s, other than while the campaign restarts it, is
   * killed and started again. A private engine was seen to hang after a graceful
   * restart (no log line, no answer); Draftsman must come through that, not fix it.
   */
  let supervising = true;
  const supervisor = (async () => {
    let silentSince: number | null = null;
    while (supervising) {
      await sleep(2_000);
      if (engineBusy) {
        silentSince = null;
        continue;
      }
      const answers = await (stack.docker.ping as (o: { abortSignal: AbortSignal }) => Promise<unknown>)
        .call(stack.docker, { abortSignal: AbortSignal.timeout(5_000) })
        .then(
          () => true,
          () => false,
        );
      if (answers || engineBusy) {
        silentSince = null;
        continue;
      }
      silentSince ??= Date.now();
      if (Date.now() - silentSince >= ENGINE_HANG_MS && supervising) {
        log('the engine answers no ping: killed and started again, as a supervisor would');
        await restartEngine('SIGKILL', 'Docker engine hung (killed and restarted, as a supervisor would)', 500).catch((err: unknown) =>
          log(`engine restart failed: ${String(err)}`),
        );
        silentSince = null;
      }
    }
  })();
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
        await cancel(job.id, 'chaos at a boundary');
      }
      await sleep(20);
    }
  })();

  try {
    let probes = 0;
    let engineRestarts = 0;
    for (let i = 0; i < opts.jobs; i++) {
      opts.signal?.throwIfAborted();
      // Every third job is cancelled at a named boundary, the boundaries in turn.
      const probe = i % 3 === 1 ? PROBED[probes++ % PROBED.length] : undefined;
      const shape = probe?.shape ?? (i % 9 === 8 ? 'trapped' : rng.pick(Object.keys(SHAPES)));
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
        await cancel(id, 'chaos while queued');
      }
      if (i % 9 === 8) {
        // The engine restarted under this job's running step, gracefully and by SIGKILL in turn.
        const how = engineRestarts++ % 2 === 0 ? 'SIGTERM' : 'SIGKILL';
        // Once its setup step says it runs (it then waits 6 s for a TERM).
        const ready = async () =>
          (await stack.store.logs.read(id, { afterId: 0, limit: 100 })).some((c) => c.step === 'setup-0' && c.lines.some((l) => l.x === 'ready'));
        const running = await waitUntil(ready, 20_000);
        if (running) {
          count(boundaries, `engine restart (${how}) under a running step`);
          await restartEngine(how);
        }
      }
      if (shape === 'stepTimeout' || shape === 'jobTimeout') count(faults, `${shape === 'stepTimeout' ? 'step' : 'job'} time limit`);
      await sleep(rng.int(100, 900));
      await injectFault();
    }
    log(`seed ${opts.seed}: ${jobs.length} jobs submitted, waiting for their ends`);

    const waitForEnds = async (list: Submitted[]) => {
      const deadline = Date.now() + END_BOUND_MS;
      for (const j of list) {
        // Ended in PostgreSQL (endJob) and in Temporal (the workflow's last task comes just after).
        const ended = async () =>
          Boolean((await stack.store.getJob(j.id).catch(() => null))?.finishedAt) &&
          (await stack.client.workflow
            .getHandle(j.id)
            .describe()
            .then(
              (d) => d.status.name !== 'RUNNING',
              () => false,
            ));
        while (Date.now() < deadline && !(await ended())) {
          opts.signal?.throwIfAborted();
          await sleep(250);
        }
      }
    };
    await waitForEnds(jobs);
    // A probe job that a random fault ended before it reached its boundary (its step failed
    // when the engine restarted, say) never announced it: each such boundary gets one more
    // job, with no fault injected meanwhile, so that every boundary is hit on every seed.
    const again: Submitted[] = [];
    for (const probe of PROBED.filter((p) => !jobs.some((j) => j.probed && j.id.endsWith(probeSuffix(p))))) {
      const spec = SHAPES[probe.shape]!();
      const id = `chaos-${opts.seed}-again-${probe.shape}${probeSuffix(probe)}`;
      log(`seed ${opts.seed}: the probe ${probe.name} was not reached; once more`);
      await stack.jobs.start({ repo: repo.url, commit: repo.head, ...spec } as JobSpec, id);
      again.push({ id, shape: probe.shape, commands: commandsOf(spec) });
    }
    jobs.push(...again);
    await waitForEnds(again);
    watching = false;
    supervising = false;
    await watcher;
    await supervisor;
    await witness.stop();
    const violations: Violation[] = [];
    for (const j of jobs) {
      const observed = await observe(j);
      const found = checkJob(observed, j.commands, j.probed ? { ...j.probed, faultBetween } : null);
      violations.push(...found);
      if (found.length && opts.verbose) {
        log(`${j.id}: ${JSON.stringify({ status: observed.status, temporal: observed.temporal, steps: observed.steps, events: observed.events })}`);
        const history = await stack.client.workflow
          .getHandle(j.id)
          .fetchHistory()
          .catch(() => null);
        const at = (t: unknown) =>
          t && typeof t === 'object' && 'seconds' in t
            ? new Date(Number((t as { seconds: unknown }).seconds) * 1000 + Math.round(Number((t as { nanos?: number }).nanos ?? 0) / 1e6)).toISOString()
            : '?';
        log(`${j.id} history (last run):\n${(history?.events ?? []).map((e) => `  ${at(e.eventTime)} ${e.eventId} ${e.eventType}`).join('\n')}`);
      }
    }
    if (violations.length && opts.verbose) log(`faults:\n${timeline.join('\n')}`);
    return { seed: opts.seed, jobs: jobs.length, faults, boundaries, violations, seconds: Math.round((Date.now() - started) / 1000) };
  } finally {
    watching = false;
    supervising = false;
    await watcher.catch(() => undefined);
    await supervisor.catch(() => undefined);
    await witness.stop().catch(() => undefined);
    // A worker that died by itself is a finding too, whatever the invariants say.
    if (stack.workerCrashes() > 0) faults['worker exited by itself (restarted, as a supervisor would)'] = stack.workerCrashes();
    if (opts.verbose) {
      const file = path.resolve('data', `chaos-${opts.seed}-worker.log`);
      fs.writeFileSync(file, `${stack.workerLines().join('\n')}\n`);
      fs.copyFileSync(path.join(stack.dir, 'dockerd.log'), path.resolve('data', `chaos-${opts.seed}-dockerd.log`));
      log(`worker output: ${file}; the engine's log beside it`);
    }
    // Whatever a job left (a violation, reported above) goes with the private engine.
    await stack.stop();
    await repo.stop();
  }

  /**
   * Cancels as a user would: a request refused while Temporal restarts is sent again
   * (a cancel the client saw fail was not lost); one for a job that has ended is moot.
   */
  async function cancel(id: string, reason: string): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        return await stack.jobs.cancel(id, reason);
      } catch (err) {
        const ended = await stack.client.workflow
          .getHandle(id)
          .describe()
          .then(
            (d) => d.status.name !== 'RUNNING',
            () => false,
          );
        if (ended || Date.now() > deadline) return;
        await sleep(250);
      }
    }
  }

  /** One fault drawn from the seed, or none. */
  async function injectFault(): Promise<void> {
    const roll = rng.next();
    if (opts.randomFaults === false) return;
    if (roll < 0.06) {
      await disturb('worker SIGKILL', () => stack.restartWorker('SIGKILL'), WORKER_LOSS_AFTERMATH_MS, HEARTBEAT_TAKEOVER_MS);
    } else if (roll < 0.11) {
      // Woken, the paused attempt may still announce a boundary while a newer one, which
      // took over meanwhile, already runs the job: 2 s of aftermath.
      await disturb('worker SIGSTOP 7 s, then SIGCONT', () => stack.pauseWorker(7_000), 2_000, 2_000);
    } else if (roll < 0.16) {
      await disturb('worker SIGTERM (graceful), restarted', () => stack.restartWorker('SIGTERM'), 0, 2_000);
    } else if (roll < 0.2) {
      const how = rng.next() < 0.5 ? 'SIGTERM' : 'SIGKILL';
      await disturb('Temporal server restart', () => stack.restartTemporal(how));
    } else if (roll < 0.24) {
      const outage = rng.next() < 0.5;
      const how = rng.next() < 0.5 ? 'SIGINT' : 'SIGKILL';
      await disturb(outage ? 'PostgreSQL outage of 3 s' : 'PostgreSQL restart', () => stack.restartPostgres(how, outage ? 3_000 : 0));
    } else if (roll < 0.27) {
      await disturb(
        'control plane SIGKILL (worker, Temporal, PostgreSQL), restarted',
        () => stack.killControlPlane(),
        WORKER_LOSS_AFTERMATH_MS,
        HEARTBEAT_TAKEOVER_MS,
      );
    } else if (roll < 0.31) {
      // The engine stops its containers (graceful) or leaves them running until it is back (SIGKILL).
      const how = rng.next() < 0.5 ? 'SIGTERM' : 'SIGKILL';
      await restartEngine(how);
    } else if (roll < 0.45) {
      const target = rng.pick(jobs);
      const view = await stack.store.getJob(target.id).catch(() => null);
      const phase =
        !view || view.status === 'queued'
          ? 'queued'
          : view.finishedAt
            ? 'after its end'
            : view.steps.some((s) => s.status === 'running')
              ? 'during a step'
              : 'between steps';
      count(boundaries, `random cancel: ${phase}`);
      const repeated = rng.next() < 0.3;
      count(faults, repeated ? 'repeated cancel' : 'cancel');
      await cancel(target.id, 'chaos');
      if (repeated) await cancel(target.id, 'chaos again');
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
    for (const c of await stack.store.logs.read(j.id, { afterId: 0, limit: 100_000 })) (logs[c.step] ??= []).push(...c.lines.map((l) => l.x));
    const events = (await stack.store.events(j.id)).map((e) => {
      const d = e.data as { kind?: string; index?: number };
      return d.kind !== undefined ? `${e.type}:${d.kind}-${d.index}` : e.type;
    });
    // What the job left, its holder made ready before it (no job label; named for the job) included.
    const left = await leftovers(stack.docker, j.id);
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
      engineOutages,
      workerAway,
      leftovers: left,
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
    ...Object.entries(faults)
      .sort()
      .map(([k, n]) => `| fault: ${k} | ${n} |`),
    ...Object.entries(boundaries)
      .sort()
      .map(([k, n]) => `| boundary hit: ${k} | ${n} |`),
    ...INVARIANTS.map((inv) => `| violations: ${inv} | ${results.reduce((a, r) => a + r.violations.filter((v) => v.invariant === inv).length, 0)} |`),
    `| seconds | ${results.reduce((a, r) => a + r.seconds, 0)} |`,
  ];
  return ['| measure | value |', '|---|---|', ...rows].join('\n');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true;
    await sleep(100);
  }
  return false;
}
