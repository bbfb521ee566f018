/**
 * A host lost under its jobs: host-a is the test stack's worker on the machine's engine
 * (room for one job), host-b a worker process on a private engine (room for four). Three
 * jobs go to host-b; its worker is killed with SIGKILL and its engine with it while they
 * run. Each job records `host_lost`, moves to host-a as placement 2 and succeeds there,
 * running its steps again from the clone. The engines' own event streams are the witness:
 * no step starts twice in one placement, and placement 2 runs on host-a only. When host-b
 * comes back, its worker's first sweep removes what the moved jobs left on its engine.
 * Then a rolling restart under load, one host at a time as docs/operations.md says (drain,
 * the worker exits, a new one starts): no job fails or moves, no step starts twice.
 */
import path from 'node:path';
import type Docker from 'dockerode';
import { LABEL_JOB, LABEL_PLACEMENT, LABEL_ROLE, LABEL_STEP_INDEX, LABEL_STEP_KIND } from '../../common/names';
import { janitorScheduleId } from '../../worker/janitor-schedule';
import { TEST_DATA_DIR } from '../../testing/env';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { waitFor } from '../../testing/helpers';
import { type PrivateEngine, removeEngineFolder, startPrivateEngine } from '../../testing/private-engine';
import { leftovers, startTestStack, type TestStack } from '../../testing/stack';
import { startWorkerProcess, type WorkerProcess } from '../../testing/worker-process';

const dir = path.join(TEST_DATA_DIR, `host-loss-${process.pid}`);
/** Both workers place jobs, so both say how long a host may be silent and how often a job moves. */
const LOSS = { DRAFTSMAN_HOST_LOST_SECONDS: '8', DRAFTSMAN_HOST_LOST_MOVES: '2' };
let engine: PrivateEngine;
let stack: TestStack;
let repo: GitFixture;
let hostB: WorkerProcess | null = null;

interface Start {
  engine: 'a' | 'b';
  job: string;
  step: string;
  placement: string;
}

/** Step containers started on an engine, as its event stream tells them, from `since` (Unix seconds) on. */
async function watchStarts(docker: Docker, name: 'a' | 'b', into: Start[], since?: number): Promise<() => void> {
  const stream = (await docker.getEvents({ ...(since ? { since } : {}), filters: { type: ['container'], event: ['start'] } })) as NodeJS.ReadableStream & {
    destroy(): void;
  };
  let buffer = '';
  stream.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const a = (JSON.parse(buffer.slice(0, nl)) as { Actor: { Attributes: Record<string, string> } }).Actor.Attributes ?? {};
      buffer = buffer.slice(nl + 1);
      if (a[LABEL_STEP_KIND] && a[LABEL_ROLE] !== 'holder') {
        into.push({ engine: name, job: a[LABEL_JOB] ?? '', step: `${a[LABEL_STEP_KIND]}-${a[LABEL_STEP_INDEX]}`, placement: a[LABEL_PLACEMENT] ?? '?' });
      }
    }
  });
  // The stream of an engine that is killed ends with it.
  stream.on('error', () => undefined);
  return () => stream.destroy();
}

function hostBEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: stack.config.TEMPORAL_ADDRESS,
    DATABASE_URL: stack.config.DATABASE_URL!,
    DRAFTSMAN_TASK_QUEUE: stack.config.DRAFTSMAN_TASK_QUEUE,
    ...stack.workerEnv,
    DOCKER_HOST: engine.host,
    DRAFTSMAN_HOST_ID: 'host-b',
    DRAFTSMAN_HOST_CAPACITY: '4',
    DRAFTSMAN_MAX_CONCURRENT_STEPS: '4',
    ...LOSS,
    ...extra,
  };
}

beforeAll(async () => {
  [engine, stack, repo] = await Promise.all([
    startPrivateEngine({ dataRoot: path.join(dir, 'engine'), images: ['draftsman-runner:latest'], log: () => undefined }),
    startTestStack({ DRAFTSMAN_HOST_ID: 'host-a', DRAFTSMAN_HOST_CAPACITY: '1', ...LOSS }),
    startGitFixture(1),
  ]);
  hostB = await startWorkerProcess(hostBEnv());
}, 180_000);
afterAll(async () => {
  hostB?.child.kill('SIGTERM');
  await hostB?.exited;
  // The restarted host-b's worker created the janitor's schedule for the test's queue.
  await stack?.client.schedule
    .getHandle(janitorScheduleId(stack.config))
    .delete()
    .catch(() => undefined);
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
  await engine?.stop();
  await removeEngineFolder(dir);
}, 120_000);

type Trail = { events: { type: string; data: Record<string, unknown> }[] };

test('three jobs on a host whose worker and engine are killed: each records host_lost and succeeds on the other host as placement 2; no step starts twice in a placement; the host, back, is cleaned', async () => {
  const starts: Start[] = [];
  const stopA = await watchStarts(stack.docker, 'a', starts);
  const stopB = await watchStarts(engine.docker, 'b', starts);
  const ids: string[] = [];
  try {
    // Setup leaves a marker that validation needs: a job that moved runs setup again on its new host.
    const spec = { repo: repo.url, commit: repo.head, setup: ['echo placed > marker', 'sleep 5'], validate: ['test -f marker'] };
    for (let i = 0; i < 3; i++) ids.push(await stack.submit(spec));
    // Host-b has the most room: all three run there, each in its setup's sleep.
    await waitFor(
      async () =>
        (await engine.docker.listContainers({ filters: JSON.stringify({ label: [`${LABEL_STEP_KIND}=setup`, `${LABEL_STEP_INDEX}=1`] }) })).length === 3,
      'three jobs in their sleep on host-b',
      { timeoutMs: 60_000 },
    );
    const lostAt = Date.now();
    hostB!.child.kill('SIGKILL');
    await hostB!.exited;
    hostB = null;
    // The engine goes too, and stays away while the jobs move.
    const engineBack = engine.restart('SIGKILL', 20_000);

    const ended = await Promise.all(ids.map((id) => stack.waitForEnd(id, 150_000)));
    const movedIn = Date.now() - lostAt;
    expect(ended.map((j) => [j.status, j.placement])).toEqual(ids.map(() => ['succeeded', 2]));
    // Within the bound: the host is lost after a step's heartbeat timeout (5 s) and the
    // lost-after time (8 s), then the three run one after another on host-a (room for one).
    expect(movedIn).toBeLessThan(120_000);
    console.log(`three jobs moved and succeeded ${(movedIn / 1000).toFixed(1)} s after host-b was killed`);
    for (const [i, id] of ids.entries()) {
      const trail = (await stack.api<Trail>('GET', `/v1/jobs/${id}/events`)).body.events;
      expect(trail.filter((e) => e.type === 'placed').map((e) => e.data)).toEqual([
        { host: 'host-b', placement: 1 },
        { host: 'host-a', placement: 2 },
      ]);
      // The step it was in when its host went (the store's word: the batch of setup steps was in flight).
      expect(trail.filter((e) => e.type === 'host_lost').map((e) => e.data)).toEqual([{ host: 'host-b', placement: 1, step: 'setup-1', movedTo: 2 }]);
      // The view shows this placement's steps, each run once; the steps of placement 1 are in the trail.
      expect(ended[i]!.steps.map((s) => [`${s.kind}-${s.index}`, s.status])).toEqual([
        ['clone-0', 'succeeded'],
        ['setup-0', 'succeeded'],
        ['setup-1', 'succeeded'],
        ['validate-0', 'succeeded'],
      ]);
      // Both placements' starts of setup-1 are in the audit trail, each under its own key.
      const setupStarts = trail.filter((e) => e.type === 'step_started' && e.data.kind === 'setup' && e.data.index === 1);
      expect(setupStarts.map((e) => e.data.placement ?? 1)).toEqual([1, 2]);
    }
    await engineBack;
  } finally {
    stopA();
    stopB();
  }

  // The engines' word: every step started at most once per placement; placement 1 on host-b, placement 2 on host-a.
  const mine = starts.filter((s) => ids.includes(s.job));
  const keys = mine.map((s) => `${s.job}/${s.placement}/${s.step}`);
  expect(keys.length).toBeGreaterThan(0);
  expect(new Set(keys).size).toBe(keys.length);
  for (const id of ids) {
    expect(new Set(mine.filter((s) => s.job === id && s.placement === '1').map((s) => s.engine))).toEqual(new Set(['b']));
    expect(mine.filter((s) => s.job === id && s.placement === '2').map((s) => `${s.engine}:${s.step}`)).toEqual([
      'a:clone-0',
      'a:setup-0',
      'a:setup-1',
      'a:validate-0',
    ]);
  }

  // Host-b comes back: the engine stopped the containers of placement 1 when it started, and
  // its worker's first sweep removes them and the workspaces. Nothing is left on either engine.
  for (const id of ids) expect((await leftovers(engine.docker, id)).length).toBeGreaterThan(0);
  const startsAfter: Start[] = [];
  const stopAfter = await watchStarts(engine.docker, 'b', startsAfter);
  hostB = await startWorkerProcess(hostBEnv({ DRAFTSMAN_JANITOR_INTERVAL_SECONDS: '3600' }));
  try {
    for (const id of ids) {
      await waitFor(async () => (await leftovers(engine.docker, id)).length === 0, `what ${id} left on host-b removed`, { timeoutMs: 60_000 });
      expect(await leftovers(stack.docker, id)).toEqual([]);
    }
  } finally {
    stopAfter();
  }
  // No step of a moved job started again there.
  expect(startsAfter.filter((s) => ids.includes(s.job))).toEqual([]);
});

test('a rolling restart of both hosts under load (drain, the worker stops, a new one starts), one host at a time: no job fails, none moves, no step starts twice', async () => {
  const starts: Start[] = [];
  const stops = [await watchStarts(stack.docker, 'a', starts), await watchStarts(engine.docker, 'b', starts)];
  const ids: string[] = [];
  const spec = { repo: repo.url, commit: repo.head, setup: ['echo placed > marker', 'sleep 1'], validate: ['test -f marker'] };
  // The load: a job every second, at most 16 and for at most 90 s, until both hosts have restarted.
  let restarted = false;
  const began = Date.now();
  const load = (async () => {
    while (!restarted && ids.length < 16 && Date.now() - began < 90_000) {
      ids.push(await stack.submit(spec));
      await new Promise((r) => setTimeout(r, 1_000));
    }
  })();
  const hostState = async (id: string) => (await stack.api<{ state: string }>('GET', `/v1/hosts/${id}`)).body.state;
  try {
    await waitFor(async () => ids.length >= 3, 'the load under way', { timeoutMs: 30_000 });
    // host-b: drained, its worker exits by itself (0), a new one takes the host back.
    expect((await stack.api('POST', '/v1/hosts/host-b/drain')).status).toBe(200);
    await expect(hostB!.exited).resolves.toBe(0);
    hostB = await startWorkerProcess(hostBEnv());
    expect(await hostState('host-b')).toBe('up');
    // Then host-a, the stack's own worker.
    expect((await stack.api('POST', '/v1/hosts/host-a/drain')).status).toBe(200);
    await stack.workerStopped();
    await stack.replaceWorker();
    expect(await hostState('host-a')).toBe('up');
    restarted = true;
    await load;
    const ended = await Promise.all(ids.map((id) => stack.waitForEnd(id, 120_000)));
    expect(ended.map((j) => j.status)).toEqual(ids.map(() => 'succeeded'));
    expect(ended.filter((j) => j.placement !== undefined)).toEqual([]);
    console.log(`rolling restart: ${ids.length} jobs submitted over ${((Date.now() - began) / 1000).toFixed(1)} s, all succeeded`);
  } finally {
    restarted = true;
    await load;
    for (const stop of stops) stop();
  }
  const keys = starts.filter((s) => ids.includes(s.job)).map((s) => `${s.job}/${s.placement}/${s.step}`);
  // clone, two setup steps and a validation for every job, each started once.
  expect(keys.length).toBe(ids.length * 4);
  expect(new Set(keys).size).toBe(keys.length);
  // Both hosts ran jobs.
  expect(new Set(starts.filter((s) => ids.includes(s.job)).map((s) => s.engine))).toEqual(new Set(['a', 'b']));
});

test("a drain that outlasts DRAFTSMAN_DRAIN_TIMEOUT_SECONDS: the host's worker exits anyway, and its job moves to the other host and succeeds there", async () => {
  // host-b again, with a drain timeout of 2 s.
  hostB!.child.kill('SIGTERM');
  await hostB!.exited;
  hostB = await startWorkerProcess(hostBEnv({ DRAFTSMAN_DRAIN_TIMEOUT_SECONDS: '2' }));
  // Longer than the drain's end can take (the drain seen at a heartbeat, timed out at a
  // later one, 5 s apart, then the worker's 5 s shutdown grace): the step is still running.
  const id = await stack.submit({ repo: repo.url, commit: repo.head, setup: ['sleep 20'] });
  await waitFor(async () => (await leftovers(engine.docker, id)).some((n) => n.endsWith('-setup-0')), 'its step running on host-b', { timeoutMs: 60_000 });
  expect((await stack.api('POST', '/v1/hosts/host-b/drain')).status).toBe(200);
  // The job holds host-b past the timeout: its worker stops anyway (exit 0, as a drain's).
  await expect(hostB!.exited).resolves.toBe(0);
  hostB = null;
  const job = await stack.waitForEnd(id, 90_000);
  expect([job.status, job.placement]).toEqual(['succeeded', 2]);
  const trail = (await stack.api<Trail>('GET', `/v1/jobs/${id}/events`)).body.events;
  expect(trail.filter((e) => e.type === 'placed').map((e) => e.data.host)).toEqual(['host-b', 'host-a']);
  expect(trail.filter((e) => e.type === 'host_lost').map((e) => e.data)).toEqual([{ host: 'host-b', placement: 1, step: 'setup-0', movedTo: 2 }]);
});
