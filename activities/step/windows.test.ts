/**
 * The windows between a step's phases, one at a time, on the in-memory step store and
 * FakeRunner (which can stop between phases), each activity run in
 * MockActivityEnvironment: no Docker, PostgreSQL or Temporal server. Each test names the
 * defect its fix closes; where a fix can be put back by wrapping (testing/faults.ts), a
 * test runs with it put back, to show the test sees the defect.
 */
import { ActivityCancellationDetails } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { loadConfig } from '../../common/config';
import type { StepOutcome } from '../../common/job';
import type { LogChunkWrite, StepLogStore } from '../../db/log-store';
import { MemoryStepStore } from '../../db/memory-step-store';
import type { StepStore } from '../../db/step-store';
import type { JobStore } from '../../db/store';
import { FakeRunner, type FakeRunnerOptions } from '../../runner/fake/fake-runner';
import { type Boundary, lateCancelListener, overriding, type Probe, probedRunner } from '../../testing/faults';
import { waitFor } from '../../testing/helpers';
import { type ActivityDeps, shared } from '../deps';
import { truncationMarker } from '../step-log';
import { createStepActivities, type StepsInput } from '../steps';
import { activityStepContext } from './context';

const config = loadConfig({ DRAFTSMAN_STOP_GRACE_SECONDS: '1', DRAFTSMAN_DEPLOYMENT_ID: 'test' });
/** One store for the file, as one database served the file before: every test's job has its own id. */
const steps = new MemoryStepStore();
let n = 0;

/** What a test of steps must not reach: the job store (the steps' phases use the step store only). */
function absent(name: string): never {
  const fail = () => {
    throw new Error(`${name} is not part of a step's phases`);
  };
  return new Proxy(fail, { get: (_t, prop) => (prop === 'then' ? undefined : absent(`${name}.${String(prop)}`)) }) as never;
}

/** The step activities over the memory store and a fake engine (a second lasts 50 ms there). */
async function setUp(
  opts: {
    beforeCreate?: FakeRunnerOptions['beforeCreate'];
    steps?: (s: MemoryStepStore) => StepStore;
    logs?: (s: MemoryStepStore) => StepLogStore;
    stallMs?: number;
    /** The cancel listener attached after the create: a fixed defect put back. */
    lateCancel?: boolean;
    probe?: Probe;
    describeActivity?: ActivityDeps['describeActivity'];
    config?: Partial<typeof config>;
  } = {},
) {
  const jobId = `window-${process.pid}-${n++}`;
  const runner = new FakeRunner({ secondMs: 50, beforeCreate: opts.beforeCreate });
  const late = opts.lateCancel ? lateCancelListener(activityStepContext) : null;
  const probed = opts.probe ? probedRunner(runner, opts.probe) : runner;
  const sh = shared({
    runner: late ? late.runner(probed) : probed,
    store: absent('JobStore') as JobStore,
    steps: opts.steps ? opts.steps(steps) : steps,
    logs: opts.logs ? opts.logs(steps) : steps,
    config: { ...config, ...opts.config },
    describeJob: async () => ({ running: true }),
    heartbeatMs: 50,
    engineWatch: { everyMs: 100, missedExitMs: 400 },
    workspaceWatchMs: 100,
    stallMs: opts.stallMs,
    describeActivity: opts.describeActivity,
    ...(late ? { stepContext: late.context } : {}),
  });
  return { jobId, runner, activities: createStepActivities(sh) };
}

const batch = (jobId: string, commands: string[], keepGoing = false): StepsInput => ({
  jobId,
  keepGoing,
  steps: commands.map((command, index) => ({ seq: index, kind: 'setup', index, image: 'fake:1', command, env: {}, timeoutSeconds: 60 })),
});

/** MockActivityEnvironment.run with the activity's own types. */
const runIn = <A extends unknown[], R>(env: MockActivityEnvironment, fn: (...args: A) => Promise<R>, ...args: A): Promise<R> =>
  env.run(fn as never, ...(args as unknown as never[])) as Promise<R>;

const cancelRequested = () => new ActivityCancellationDetails({ cancelRequested: true });
const workerShutdown = () => new ActivityCancellationDetails({ workerShutdown: true });
const statuses = (r: StepOutcome[]) => r.map((o) => `${o.kind}-${o.index}:${o.status}`);

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  let reached!: () => void;
  const arrived = new Promise<void>((r) => (reached = r));
  return { open, opened, reached, arrived };
}

async function cancelDuringCreate(lateCancel: boolean) {
  const g = gate();
  const { jobId, runner, activities } = await setUp({
    lateCancel,
    beforeCreate: async () => {
      g.reached();
      await g.opened;
    },
  });
  const env = new MockActivityEnvironment({ attempt: 1 });
  const started = Date.now();
  const running = runIn(env, activities.runSteps, batch(jobId, ['sleep 40', 'true']));
  await g.arrived;
  env.cancel('CANCELLED', cancelRequested());
  g.open();
  const results = await running;
  return { results, ms: Date.now() - started, runner, jobId };
}

test('a cancel that arrives while the step container is created stops the step (the listener is attached before the create)', async () => {
  const { results, ms, runner, jobId } = await cancelDuringCreate(false);
  expect(statuses(results)).toEqual(['setup-0:cancelled']);
  // The fake's `sleep 40` lasts 2 s: stopped well before it would have ended.
  expect(ms).toBeLessThan(1_500);
  expect((await runner.status({ jobId, kind: 'setup', index: 0 })).state).not.toBe('running');
  expect([(await steps.finished(jobId, 'setup', 0))?.status]).toEqual(['cancelled']);
});

test('the same window with the listener attached after the create (the fix taken out by wrapping): the step runs to its end, which the test above would catch', async () => {
  const { results } = await cancelDuringCreate(true);
  expect(statuses(results)).toEqual(['setup-0:succeeded']);
});

test('a worker shutting down between two batch steps fails the attempt, and the next attempt carries on from the recorded step', async () => {
  const g = gate();
  const { jobId, runner, activities } = await setUp({
    steps: (s) =>
      overriding<StepStore>(s, {
        record: async (...args: Parameters<StepStore['record']>) => {
          const recorded = await s.record(...args);
          if (args[1].index === 0) {
            g.reached();
            await g.opened;
          }
          return recorded;
        },
      }),
  });
  const input = batch(jobId, ['echo first', 'echo second']);
  const first = new MockActivityEnvironment({ attempt: 1 });
  const running = runIn(first, activities.runSteps, input);
  await g.arrived;
  first.cancel('WORKER_SHUTDOWN', workerShutdown());
  g.open();
  await expect(running).rejects.toBeDefined();
  expect(runner.starts.get(`fake-${jobId}-setup-1`)).toBeUndefined();
  expect(await steps.finished(jobId, 'setup', 1)).toBeNull();

  const second = new MockActivityEnvironment({ attempt: 2 });
  expect(statuses(await runIn(second, activities.runSteps, input))).toEqual(['setup-0:succeeded', 'setup-1:succeeded']);
  expect(runner.starts.get(`fake-${jobId}-setup-0`)).toBe(1);
  expect(runner.starts.get(`fake-${jobId}-setup-1`)).toBe(1);
});

test('a cancel requested while no attempt ran reaches the retry before its first step starts', async () => {
  const { jobId, runner, activities } = await setUp();
  // The server answers the attempt's first heartbeat with the pending cancel.
  const env = new MockActivityEnvironment({ attempt: 2 });
  env.once('heartbeat', () => setImmediate(() => env.cancel('CANCELLED', cancelRequested())));
  const results = await runIn(env, activities.runSteps, batch(jobId, ['echo quick', 'sleep 40']));
  expect(statuses(results)).toEqual([]);
  expect([...runner.starts.keys()]).toEqual([]);
});

test('a retried attempt asks the server: a newer attempt holds the activity, so it starts nothing', async () => {
  const { jobId, runner, activities } = await setUp({ describeActivity: async () => ({ attempt: 3, cancelRequested: false }) });
  const err = await runIn(new MockActivityEnvironment({ attempt: 2 }), activities.runSteps, batch(jobId, ['echo a'])).catch((e: unknown) => e);
  expect(String(err)).toMatch(/newer attempt/);
  expect([...runner.starts.keys()]).toEqual([]);
});

test('a retried attempt asks the server: a cancel is pending, so it waits for it and starts nothing', async () => {
  const asked: string[] = [];
  const { jobId, runner, activities } = await setUp({
    describeActivity: async (id, activityId) => {
      asked.push(`${id}/${activityId}`);
      return { attempt: 2, cancelRequested: true };
    },
  });
  const env = new MockActivityEnvironment({ attempt: 2, workflowExecution: { workflowId: jobId, runId: 'r' }, activityId: '7' });
  env.once('heartbeat', () => setTimeout(() => env.cancel('CANCELLED', cancelRequested()), 100));
  const results = await runIn(env, activities.runSteps, batch(jobId, ['echo quick', 'sleep 40']));
  expect(statuses(results)).toEqual([]);
  expect(asked).toEqual([`${jobId}/7`]);
  expect([...runner.starts.keys()]).toEqual([]);
});

test('a retry cancelled before it starts still stops, with the grace period, the container an earlier attempt started', async () => {
  const { jobId, runner, activities } = await setUp();
  const ref = { jobId, kind: 'loop' as const, index: 1 };
  await steps.claim(jobId, { kind: 'loop', index: 1, seq: 0 }, 1);
  await runner.start({ ...ref, image: 'fake:1', command: 'trap "exit 42" TERM; sleep 100', env: {}, timeoutSeconds: 60 });
  await steps.launched(jobId, 'loop', 1);
  const env = new MockActivityEnvironment({ attempt: 2 });
  env.cancel('CANCELLED', cancelRequested());
  const input = { jobId, seq: 0, kind: 'loop' as const, index: 1, image: 'fake:1', command: 'trap "exit 42" TERM; sleep 100', env: {}, timeoutSeconds: 60 };
  const err = await runIn(env, activities.runStep, input).catch((e: unknown) => e);
  expect(String(err)).toMatch(/cancelled/);
  expect(await steps.finished(jobId, 'loop', 1)).toMatchObject({ status: 'cancelled', exitCode: 42 });
  expect(runner.starts.get(`fake-${jobId}-loop-1`)).toBe(1);
});

test('a retry that finds its step stopped past its deadline while no worker watched records it timed_out', async () => {
  const { jobId, runner, activities } = await setUp();
  const ref = { jobId, kind: 'setup' as const, index: 0 };
  await steps.claim(jobId, { kind: 'setup', index: 0, seq: 0 }, 1);
  // 30 fake seconds last 1.5 s: past the 1 s budget, then stopped (as by the janitor).
  await runner.start({ ...ref, image: 'fake:1', command: 'sleep 30; exit 143', env: {}, timeoutSeconds: 1 });
  await steps.launched(jobId, 'setup', 0);
  await runner.wait(ref);
  const input = batch(jobId, ['sleep 30; exit 143']);
  input.steps[0]!.timeoutSeconds = 1;
  const results = await runIn(new MockActivityEnvironment({ attempt: 2 }), activities.runSteps, input);
  expect(results.map((r) => [r.status, r.exitCode])).toEqual([['timed_out', 143]]);
});

test('a cancel that comes during a run of short steps (none heartbeats) stops the next one: a heartbeat between steps once the run lasts an interval', async () => {
  const { jobId, runner, activities } = await setUp();
  const env = new MockActivityEnvironment({ attempt: 1 });
  // The server answers the first heartbeat with the cancel requested meanwhile.
  const beats: number[] = [];
  env.on('heartbeat', () => beats.push(Date.now()));
  env.once('heartbeat', () => setImmediate(() => env.cancel('CANCELLED', cancelRequested())));
  // Each step lasts 30 ms, under the 50 ms interval: the second one's end is past it.
  const started = Date.now();
  const results = await runIn(env, activities.runSteps, batch(jobId, ['sleep 0.6', 'sleep 0.6', 'sleep 0.6', 'sleep 40']));
  // The batch waits a moment for the heartbeat's answer: the cancel is there before the next step is even claimed.
  expect(statuses(results)).toEqual(['setup-0:succeeded', 'setup-1:succeeded']);
  expect([...runner.starts.keys()]).toEqual([`fake-${jobId}-setup-0`, `fake-${jobId}-setup-1`]);
  // Not after the first short step: the first heartbeat waited for the interval.
  expect(beats[0]! - started).toBeGreaterThanOrEqual(50);
});

test.each(['after-create', 'after-exit'] as const)('a worker lost %s: the retry completes the step, whose command ran once', async (at) => {
  let died = false;
  const lost = () => {
    died = true;
    throw new Error('the worker is gone (test)');
  };
  const { jobId, runner, activities } = await setUp({
    // After the create: the container exists, never started, and the attempt is gone.
    beforeCreate: async (step) => {
      if (at !== 'after-create' || died || step.kind !== 'setup') return;
      await runner.createOnly(step);
      lost();
    },
    // After the exit: the step ended, its end not recorded, and the attempt is gone.
    probe: async (boundary) => {
      if (at === 'after-exit' && boundary === 'at-step-end' && !died) lost();
    },
  });
  const input = batch(jobId, ['echo ran']);
  await expect(runIn(new MockActivityEnvironment({ attempt: 1 }), activities.runSteps, input)).rejects.toThrow(/the worker is gone/);
  expect((await runner.status({ jobId, kind: 'setup', index: 0 })).state).toBe(at === 'after-create' ? 'created' : 'exited');
  const retried = await runIn(new MockActivityEnvironment({ attempt: 2 }), activities.runSteps, input);
  expect(retried.map((r) => [r.status, r.exitCode])).toEqual([['succeeded', 0]]);
  expect(runner.starts.get(`fake-${jobId}-setup-0`)).toBe(1);
  expect(steps.lines(jobId, 'setup', 0)).toEqual(['ran']);
});

test('a stale attempt that wakes after a newer one finished the steps does not run them again', async () => {
  const { jobId, runner, activities } = await setUp();
  const input = batch(jobId, ['echo a', 'echo b']);
  expect(statuses(await runIn(new MockActivityEnvironment({ attempt: 2 }), activities.runSteps, input))).toEqual(['setup-0:succeeded', 'setup-1:succeeded']);
  // Attempt 1 was paused (SIGSTOP) before its first step, and now runs.
  expect(statuses(await runIn(new MockActivityEnvironment({ attempt: 1 }), activities.runSteps, input))).toEqual(['setup-0:succeeded', 'setup-1:succeeded']);
  expect(runner.starts.get(`fake-${jobId}-setup-0`)).toBe(1);
  expect(runner.starts.get(`fake-${jobId}-setup-1`)).toBe(1);
});

test('two attempts on one running step: the older one is fenced off, the log has every line once', async () => {
  const { jobId, runner, activities } = await setUp();
  const input = batch(jobId, ['echo one; sleep 10; echo two; sleep 10; echo three']);
  const older = runIn(new MockActivityEnvironment({ attempt: 1 }), activities.runSteps, input).then(
    () => null,
    (err: unknown) => err,
  );
  await waitFor(async () => (await runner.status({ jobId, kind: 'setup', index: 0 })).state === 'running', 'the step to run');
  await new Promise((r) => setTimeout(r, 200));
  const newer = await runIn(new MockActivityEnvironment({ attempt: 2 }), activities.runSteps, input);
  expect(statuses(newer)).toEqual(['setup-0:succeeded']);
  expect(String(await older)).toMatch(/newer attempt/);
  expect(runner.starts.get(`fake-${jobId}-setup-0`)).toBe(1);
  const lines = steps.lines(jobId, 'setup', 0);
  expect(lines).toEqual(['one', 'two', 'three']);
});

test('an older attempt that wakes after a newer one took its step over neither records it nor removes its container (the step never starts twice)', async () => {
  // As in chaos seed 26: the older attempt was paused after launching the step (its
  // "launched" mark not yet written); the newer one claimed the step; the older one woke,
  // recorded the step and removed its container; the newer one found no container and
  // started the step again.
  const launchedHeld = gate();
  let older: Promise<unknown> = Promise.resolve();
  const { jobId, runner, activities } = await setUp({
    steps: (s) =>
      overriding<StepStore>(s, {
        launched: async (...args: Parameters<StepStore['launched']>) => {
          await launchedHeld.opened;
          return s.launched(...args);
        },
        claim: async (...args: Parameters<StepStore['claim']>) => {
          const claim = await s.claim(...args);
          if (args[2] === 2) {
            // The older attempt wakes now, between the newer one's claim and its launch.
            launchedHeld.open();
            await older;
          }
          return claim;
        },
      }),
  });
  const input = batch(jobId, ['echo one']);
  older = runIn(new MockActivityEnvironment({ attempt: 1 }), activities.runSteps, input).then(
    () => null,
    (err: unknown) => err,
  );
  // The older attempt's step has ended; the attempt waits for its "launched" mark.
  await waitFor(async () => (await runner.status({ jobId, kind: 'setup', index: 0 })).state === 'exited', 'the step to end');
  const newer = await runIn(new MockActivityEnvironment({ attempt: 2 }), activities.runSteps, input);
  expect(String(await older)).toMatch(/newer attempt/);
  expect(statuses(newer)).toEqual(['setup-0:succeeded']);
  expect(runner.starts.get(`fake-${jobId}-setup-0`)).toBe(1);
  expect(steps.events.filter((e) => e.jobId === jobId && e.type === 'step_finished')).toHaveLength(1);
});

test('a retried step keeps its recorded timed_out status', async () => {
  const { jobId, activities } = await setUp();
  await steps.claim(jobId, { kind: 'setup', index: 0, seq: 0 }, 1);
  await steps.record(jobId, { kind: 'setup', index: 0, seq: 0, status: 'timed_out', exitCode: 143, oomKilled: false, startedAt: null, finishedAt: null });
  const results = await runIn(new MockActivityEnvironment({ attempt: 2 }), activities.runSteps, batch(jobId, ['true', 'true']));
  expect(statuses(results)).toEqual(['setup-0:timed_out']);
});

test('a container lost while its step runs ends the step failed with reason container_lost, and a retry does not start it again', async () => {
  const { jobId, runner, activities } = await setUp();
  const input = batch(jobId, ['echo up; sleep 100', 'true']);
  const ref = { jobId, kind: 'setup' as const, index: 0 };
  const running = runIn(new MockActivityEnvironment({ attempt: 1 }), activities.runSteps, input);
  await waitFor(async () => (await runner.status(ref)).state === 'running', 'the step to run');
  runner.lose(ref);
  const results = await running;
  expect(results.map((r) => [r.status, r.reason])).toEqual([['failed', 'container_lost']]);
  expect(await steps.finished(jobId, 'setup', 0)).toMatchObject({ status: 'failed', reason: 'container_lost' });

  // The same loss seen only by a retry (the worker died with the container).
  const other = await setUp();
  const otherRef = { ...ref, jobId: other.jobId };
  await steps.claim(other.jobId, { kind: 'setup', index: 0, seq: 0 }, 1);
  await other.runner.start({ ...otherRef, image: 'fake:1', command: 'sleep 100', env: {}, timeoutSeconds: 60 });
  await steps.launched(other.jobId, 'setup', 0);
  other.runner.lose(otherRef);
  const retried = await runIn(new MockActivityEnvironment({ attempt: 2 }), other.activities.runSteps, batch(other.jobId, ['sleep 100', 'true']));
  expect(retried.map((r) => [r.status, r.reason])).toEqual([['failed', 'container_lost']]);
  expect(other.runner.starts.get(`fake-${other.jobId}-setup-0`)).toBe(1);
});

/** A step runs on the fake engine, which stops as a real one does (its API first, then its containers); a retry comes after it is back. */
async function engineRestartUnder(command: string, opts: { keepContainers?: boolean; steps?: (s: MemoryStepStore) => StepStore } = {}) {
  const { jobId, runner, activities } = await setUp({ steps: opts.steps });
  const input = batch(jobId, [command]);
  const first = runIn(new MockActivityEnvironment({ attempt: 1 }), activities.runSteps, input);
  await waitFor(async () => (await runner.status({ jobId, kind: 'setup', index: 0 })).state === 'running', 'the step to run', { timeoutMs: 5_000 });
  await waitFor(async () => steps.lines(jobId, 'setup', 0).length > 0, 'its first line', { timeoutMs: 5_000 });
  runner.stopEngine(opts);
  const err = await first.catch((e: unknown) => e);
  await new Promise((r) => setTimeout(r, 200));
  runner.startEngine();
  const retried = await runIn(new MockActivityEnvironment({ attempt: 2 }), activities.runSteps, input);
  return { jobId, runner, err, retried };
}

test('an engine restart under a running step ends it failed with reason container_lost (exit code kept), without starting it again', async () => {
  const { jobId, runner, err, retried } = await engineRestartUnder('echo one; trap "exit 42" TERM; sleep 100');
  expect((err as Error).name).toBe('EngineUnreachableError');
  expect(retried.map((r) => [r.status, r.reason, r.exitCode])).toEqual([['failed', 'container_lost', 42]]);
  expect(runner.starts.get(`fake-${jobId}-setup-0`)).toBe(1);
  const lines = steps.lines(jobId, 'setup', 0);
  // What it printed after the engine stopped reading its output cannot be known: the log says so.
  expect(lines).toEqual(['one', expect.stringMatching(/^\[draftsman\] output missing from here: the engine went away/)]);
  expect(await steps.finished(jobId, 'setup', 0)).toMatchObject({ status: 'failed', reason: 'container_lost', exitCode: 42 });
});

test("the same restart with the engine's loss not noted (the fix taken out by wrapping the store): the retry takes the engine's stop for the step's own exit, which the test above would catch", async () => {
  const forgetful = (s: MemoryStepStore) =>
    overriding<StepStore>(s, {
      engineInterrupted: async (jobId, kind, index, attempt, interrupted, placement) => {
        if (!interrupted) await s.engineInterrupted(jobId, kind, index, attempt, interrupted, placement);
      },
    });
  const { retried } = await engineRestartUnder('echo one; trap "exit 42" TERM; sleep 100', { steps: forgetful });
  expect(retried.map((r) => [r.status, r.reason, r.exitCode])).toEqual([['failed', undefined, 42]]);
});

test('an engine that hangs under a running step gives the attempt up (not heartbeating on forever); after it recovers the retry follows the step to its end', async () => {
  // Chaos seed 17: the engine stopped answering, and an attempt waited on it for good.
  const { jobId, runner, activities } = await setUp();
  const input = batch(jobId, ['echo one; sleep 40; echo two']);
  const first = runIn(new MockActivityEnvironment({ attempt: 1 }), activities.runSteps, input);
  await waitFor(async () => steps.lines(jobId, 'setup', 0).length > 0, 'its first line', { timeoutMs: 5_000 });
  runner.hangEngine();
  const err = await first.catch((e: unknown) => e);
  expect((err as Error).name).toBe('EngineUnreachableError');
  runner.recoverEngine();
  const retried = await runIn(new MockActivityEnvironment({ attempt: 2 }), activities.runSteps, input);
  expect(retried.map((r) => [r.status, r.reason, r.exitCode])).toEqual([['succeeded', undefined, 0]]);
  expect(runner.starts.get(`fake-${jobId}-setup-0`)).toBe(1);
  const lines = steps.lines(jobId, 'setup', 0);
  expect(lines).toEqual(['one', 'two']);
});

test('a wait that never hears of the exit the engine reports gives the attempt up; the retry reads that exit, and the step is not started again', async () => {
  // Chaos seed 23: after an engine kill an attempt stopped making progress while it heartbeated on.
  const { jobId, runner, activities } = await setUp();
  const input = batch(jobId, ['echo one; sleep 4']);
  runner.quietWaits();
  const first = runIn(new MockActivityEnvironment({ attempt: 1 }), activities.runSteps, input);
  const err = await first.catch((e: unknown) => e);
  expect((err as Error).name).toBe('RunnerError');
  expect((err as Error).message).toMatch(/wait for it has not ended/);
  const retried = await runIn(new MockActivityEnvironment({ attempt: 2 }), activities.runSteps, input);
  // The engine answered all along: the exit it reports is the step's own.
  expect(retried.map((r) => [r.status, r.reason, r.exitCode])).toEqual([['succeeded', undefined, 0]]);
  expect(runner.starts.get(`fake-${jobId}-setup-0`)).toBe(1);
});

test('a step that survives an engine restart (live restore) is followed to its own end', async () => {
  const { jobId, runner, retried } = await engineRestartUnder('echo one; sleep 40; echo two', { keepContainers: true });
  expect(retried.map((r) => [r.status, r.reason, r.exitCode])).toEqual([['succeeded', undefined, 0]]);
  expect(runner.starts.get(`fake-${jobId}-setup-0`)).toBe(1);
  const lines = steps.lines(jobId, 'setup', 0);
  expect(lines).toEqual(['one', 'two']);
});

test('a cancel whose stop finds the step already stopped by an engine restart records it cancelled, not as an exit of its own', async () => {
  // Chaos seed 33: cancelled at its start, then the engine restarted (its SIGTERM ran the
  // step's handler, exit 42) before the stop was sent; the stop found it exited.
  const { jobId, activities, runner } = await setUp({
    probe: async (boundary: Boundary) => {
      if (boundary !== 'after-create') return;
      env.cancel('CANCELLED', cancelRequested());
      runner.stopEngine();
      await new Promise((r) => setTimeout(r, 200));
      runner.startEngine();
    },
  });
  const env = new MockActivityEnvironment({ attempt: 1 });
  const results = await runIn(env, activities.runSteps, batch(jobId, ['trap "exit 42" TERM; sleep 100']));
  expect(results.map((r) => [r.status, r.exitCode])).toEqual([['cancelled', 42]]);
  expect(await steps.finished(jobId, 'setup', 0)).toMatchObject({ status: 'cancelled', exitCode: 42 });
});

test('a step that ended by itself before the cancel keeps its own end', async () => {
  const { jobId, activities, runner } = await setUp({
    probe: async (boundary: Boundary, at: { jobId: string }) => {
      if (boundary !== 'after-create') return;
      await waitFor(async () => (await runner.status({ jobId: at.jobId, kind: 'setup', index: 0 })).state === 'exited', 'its exit', { timeoutMs: 5_000 });
      await new Promise((r) => setTimeout(r, 20));
      env.cancel('CANCELLED', cancelRequested());
    },
  });
  const env = new MockActivityEnvironment({ attempt: 1 });
  const results = await runIn(env, activities.runSteps, batch(jobId, ['exit 3']));
  expect(results.map((r) => [r.status, r.exitCode])).toEqual([['failed', 3]]);
});

test("the job's log cap is shared by its steps: a step stores what is left of it, then a marker naming the job's cap; the steps run on", async () => {
  const { jobId, activities } = await setUp({ config: { DRAFTSMAN_JOB_LOG_MAX_BYTES: 1024 } });
  // 601 bytes a line (with its newline): the first fits; the second finds 423 bytes left
  // and is cut; the third stores a short line in what is still left, then is cut too.
  const line = 'x'.repeat(600);
  const results = await runIn(
    new MockActivityEnvironment({ attempt: 1 }),
    activities.runSteps,
    batch(jobId, [`echo ${line}`, `echo ${line}`, `echo short; echo ${line}`]),
  );
  expect(statuses(results)).toEqual(['setup-0:succeeded', 'setup-1:succeeded', 'setup-2:succeeded']);
  expect(results.map((r) => r.logTruncated)).toEqual([false, true, true]);
  const byStep = async (step: string) => steps.lines(jobId, 'setup', Number(step.split('-')[1]));
  expect(await byStep('setup-0')).toEqual([line]);
  expect(await byStep('setup-1')).toEqual([truncationMarker({ bytes: 1024 - 601, of: 'job' })]);
  expect(await byStep('setup-2')).toEqual(['short', truncationMarker({ bytes: 1024 - 601, of: 'job' })]);
});

test.each([
  ['exactly at the cap runs to its end', 'fake-fill 20; sleep 4', 'succeeded', undefined, 0],
  ['past the cap is stopped (SIGTERM first) and fails workspace_full', 'trap "exit 42" TERM; fake-fill 21; sleep 100', 'failed', 'workspace_full', 42],
])('a step whose workspace %s', async (_name, command, status, reason, exitCode) => {
  const { jobId, runner, activities } = await setUp({ config: { DRAFTSMAN_MAX_WORKSPACE_MB: 20 } });
  const began = Date.now();
  const [result] = await runIn(new MockActivityEnvironment({ attempt: 1 }), activities.runSteps, batch(jobId, [command]));
  expect([result!.status, result!.reason, result!.exitCode]).toEqual([status, reason, exitCode]);
  // Stopped within a few measurements, not at its 5 s sleep's end.
  expect(Date.now() - began).toBeLessThan(4_000);
  expect(runner.starts.get(`fake-${jobId}-setup-0`)).toBe(1);
});

test('an attempt stuck where nothing else bounds it (a database write that never returns) stops heartbeating and fails; the retry records the step', async () => {
  // Long campaign, seed 30: an attempt made no progress after an engine kill while it heartbeated on.
  const { jobId, runner, activities } = await setUp({
    stallMs: 500,
    logs: (s) =>
      overriding<StepLogStore>(s, {
        // The first attempt's output never reaches the database.
        append: (job: string, chunk: LogChunkWrite, attempt?: number) => (attempt === 1 ? new Promise<void>(() => undefined) : s.append(job, chunk, attempt)),
      }),
  });
  const input = batch(jobId, ['echo one; sleep 2']);
  const env = new MockActivityEnvironment({ attempt: 1 });
  const beats: number[] = [];
  env.on('heartbeat', () => beats.push(Date.now()));
  const began = Date.now();
  const err = await runIn(env, activities.runSteps, input).catch((e: unknown) => e);
  expect((err as Error).name).toBe('AttemptStalledError');
  // Given up half a second after its last progress (the step's end), not held forever...
  expect(Date.now() - began).toBeLessThan(3_000);
  // ...and it heartbeats no more, while its stuck write still waits.
  const count = beats.length;
  await new Promise((r) => setTimeout(r, 300));
  expect(beats.length).toBe(count);
  const retried = await runIn(new MockActivityEnvironment({ attempt: 2 }), activities.runSteps, input);
  expect(statuses(retried)).toEqual(['setup-0:succeeded']);
  expect(runner.starts.get(`fake-${jobId}-setup-0`)).toBe(1);
  expect(steps.lines(jobId, 'setup', 0)).toEqual(['one']);
});
