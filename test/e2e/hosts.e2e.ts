/**
 * Two hosts on one machine: the test stack's worker on the machine's engine (host-a) and a
 * second worker on a private engine (host-b), on one shared task queue. Each job is placed
 * on one host; every container and the workspace volume of a job are on that host's engine
 * (the engines' own event streams say where), and with one step at a time per host no
 * engine ever runs two steps at once. With both hosts full, jobs wait queued with their
 * place in the queue and are placed in submission order; a drained host takes no new job,
 * finishes its own, and its worker stops. On 2 cores two hosts measure correctness, not speed.
 */
import path from 'node:path';
import { NativeConnection } from '@temporalio/worker';
import type Docker from 'dockerode';
import { LABEL_JOB, LABEL_ROLE, LABEL_STEP_KIND } from '../../common/names';
import { volumeName } from '../../runner/docker/convert';
import { DockerRunner } from '../../runner/docker/docker-runner';
import { createWorker, type HostWorker, stepPolicy } from '../../worker/worker';
import { TEST_DATA_DIR } from '../../testing/env';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { type PrivateEngine, removeEngineFolder, startPrivateEngine } from '../../testing/private-engine';
import { waitFor } from '../../testing/helpers';
import { startTestStack, TEST_TOKENS, type TestStack } from '../../testing/stack';

const dir = path.join(TEST_DATA_DIR, `hosts-${process.pid}`);
let engine: PrivateEngine;
let stack: TestStack;
let repo: GitFixture;
let hostB: { worker: HostWorker; done: Promise<void>; connection: NativeConnection };
/** Workspace volume names of the test's jobs, to their job. */
const volumeJob = new Map<string, string>();

interface EngineEvent {
  engine: 'a' | 'b';
  type: string;
  action: string;
  job?: string;
  kind?: string;
  role?: string;
  at: bigint;
}

/**
 * The engine's events of containers and volumes, as they come. A volume's events carry
 * no labels: its job is read from its name.
 */
async function watchEngine(docker: Docker, name: 'a' | 'b', into: EngineEvent[]): Promise<() => void> {
  const stream = (await docker.getEvents({ filters: { type: ['container', 'volume'] } })) as NodeJS.ReadableStream & { destroy(): void };
  let buffer = '';
  stream.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const e = JSON.parse(buffer.slice(0, nl)) as {
        Type: string;
        Action: string;
        timeNano: number;
        Actor: { ID: string; Attributes: Record<string, string> };
      };
      buffer = buffer.slice(nl + 1);
      const a = e.Actor.Attributes ?? {};
      const job = e.Type === 'volume' ? volumeJob.get(e.Actor.ID) : a[LABEL_JOB];
      into.push({ engine: name, type: e.Type, action: e.Action, job, kind: a[LABEL_STEP_KIND], role: a[LABEL_ROLE], at: BigInt(e.timeNano) });
    }
  });
  return () => stream.destroy();
}

beforeAll(async () => {
  const one = { DRAFTSMAN_MAX_CONCURRENT_STEPS: '1' };
  [engine, stack, repo] = await Promise.all([
    startPrivateEngine({ dataRoot: path.join(dir, 'engine'), images: ['draftsman-runner:latest'], log: () => undefined }),
    startTestStack({ ...one, DRAFTSMAN_HOST_ID: 'host-a' }),
    startGitFixture(1),
  ]);
  const connection = await NativeConnection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  const worker = await createWorker({
    config: { ...stack.config, DRAFTSMAN_MAX_CONCURRENT_STEPS: 1, DRAFTSMAN_HOST_ID: 'host-b' },
    store: stack.store,
    runner: new DockerRunner(engine.docker, stepPolicy(stack.config)),
    connection,
    workflowBundle: { codePath: path.join(TEST_DATA_DIR, 'workflow-bundle.js') },
  });
  hostB = { worker, connection, done: worker.run() };
}, 180_000);
afterAll(async () => {
  hostB?.worker.shutdown();
  await hostB?.done.catch(() => undefined);
  await hostB?.connection.close();
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
  await engine?.stop();
  await removeEngineFolder(dir);
}, 120_000);

test('20 jobs on two hosts: every container and the workspace of a job are on the engine it was placed on, and no engine runs two steps at once', async () => {
  const events: EngineEvent[] = [];
  const stops = await Promise.all([watchEngine(stack.docker, 'a', events), watchEngine(engine.docker, 'b', events)]);
  const ids: string[] = [];
  try {
    // Setup writes a file the loop, the patch and validation need: a step on the other engine would find an empty workspace.
    const spec = {
      repo: repo.url,
      commit: repo.head,
      setup: ['echo placed > marker'],
      loop: { command: 'test -f marker && echo step >> out', until: 'test "$(wc -l < out)" -ge 2', maxIterations: 3 },
      validate: ['test -f marker', 'test "$(wc -l < out)" -eq 2'],
    };
    for (let i = 0; i < 20; i++) {
      const id = await stack.submit(spec);
      ids.push(id);
      volumeJob.set(volumeName(id, 'test'), id);
    }
    const ended = await Promise.all(ids.map((id) => stack.waitForEnd(id, 150_000)));
    expect(ended.map((j) => j.status)).toEqual(ids.map(() => 'succeeded'));
  } finally {
    // The last events (containers removed at cleanup) come just after the job is recorded.
    await new Promise((r) => setTimeout(r, 1_000));
    for (const stop of stops) stop();
  }

  const mine = events.filter((e) => e.job && ids.includes(e.job));
  const placedOn = new Map<string, string>();
  for (const id of ids) {
    const engines = new Set(mine.filter((e) => e.job === id).map((e) => e.engine));
    expect([id, [...engines]]).toEqual([id, [expect.stringMatching(/^[ab]$/)]]);
    const [where] = engines;
    placedOn.set(id, where!);
    // Its volume was made there, and each of its step containers started there.
    expect(mine.some((e) => e.job === id && e.type === 'volume' && e.action === 'create' && e.engine === where)).toBe(true);
    const started = mine.filter((e) => e.job === id && e.type === 'container' && e.action === 'start' && e.kind);
    expect(started.length).toBeGreaterThanOrEqual(8);
    // The job's `placed` event names the host whose engine ran it.
    const trail = (await stack.api<{ events: { type: string; data: Record<string, unknown> }[] }>('GET', `/v1/jobs/${id}/events`)).body.events;
    expect(trail.filter((e) => e.type === 'placed').map((e) => e.data)).toEqual([{ host: `host-${where}`, placement: 1 }]);
  }
  expect(new Set(placedOn.values())).toEqual(new Set(['a', 'b']));

  // One step at a time per engine: step containers (not the job's network holder) never overlap.
  for (const name of ['a', 'b'] as const) {
    let running = 0;
    let most = 0;
    const steps = mine
      .filter((e) => e.engine === name && e.type === 'container' && e.kind && e.role !== 'holder' && (e.action === 'start' || e.action === 'die'))
      .sort((x, y) => (x.at < y.at ? -1 : x.at > y.at ? 1 : x.action === 'die' ? -1 : 1));
    for (const e of steps) {
      running += e.action === 'start' ? 1 : -1;
      most = Math.max(most, running);
    }
    expect([name, most]).toEqual([name, 1]);
  }
});

type Trail = { events: { type: string; at: string; data: Record<string, unknown> }[] };
const placedOn = async (id: string) =>
  (await stack.api<Trail>('GET', `/v1/jobs/${id}/events`)).body.events.filter((e) => e.type === 'placed').map((e) => e.data.host);
const hostState = async (id: string) => (await stack.api<{ state: string; holding: number; running: number }>('GET', `/v1/hosts/${id}`)).body;

test('with both hosts full, jobs wait queued with their place in the queue, and are placed in the order they came', async () => {
  // Long enough that no job ends while the test reads the line (a loaded machine included).
  const spec = { repo: repo.url, commit: repo.head, setup: ['sleep 8'] };
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push(await stack.submit(spec));
  // Two run (one per host); the others wait, each knowing its place.
  await waitFor(
    async () => {
      const views = await Promise.all(ids.map(async (id) => (await stack.api<{ status: string; waiting?: string }>('GET', `/v1/jobs/${id}`)).body));
      return views.filter((v) => v.waiting?.startsWith('waiting for a host with room')).length === 3;
    },
    'three jobs waiting for a host',
    { timeoutMs: 30_000 },
  );
  // Their places, counted when asked: 1, 2, 3 in the order they were submitted.
  const views = await Promise.all(ids.map(async (id) => (await stack.api<{ waiting?: string; queuePosition?: number }>('GET', `/v1/jobs/${id}`)).body));
  const waiting = views.filter((v) => v.queuePosition !== undefined);
  expect(waiting.map((v) => v.queuePosition)).toEqual([1, 2, 3]);
  expect(waiting.map((v) => v.waiting)).toEqual([1, 2, 3].map((n) => `waiting for a host with room (position ${n} in the queue)`));
  const list = (await stack.api<{ hosts: { id: string; running: number; capacity: number }[]; waiting: number }>('GET', '/v1/hosts')).body;
  expect(list.waiting).toBe(3);
  expect(list.hosts.map((h) => [h.id, h.running, h.capacity])).toEqual([
    ['host-a', 1, 1],
    ['host-b', 1, 1],
  ]);

  const ended = await Promise.all(ids.map((id) => stack.waitForEnd(id, 120_000)));
  expect(ended.map((j) => j.status)).toEqual(ids.map(() => 'succeeded'));
  // Placed in submission order. A job waits while the jobs before it take the room there
  // is, so two hosts freed together place two waiting jobs at once, and either may be
  // recorded first; a job that jumped the line would be placed a whole step (8 s) early.
  const placedAt = await Promise.all(
    ids.map(async (id) => Date.parse((await stack.api<Trail>('GET', `/v1/jobs/${id}/events`)).body.events.find((e) => e.type === 'placed')!.at)),
  );
  const jumps = placedAt.flatMap((at, j) =>
    placedAt
      .slice(0, j)
      .filter((before) => at < before - 3_000)
      .map((before) => [j, before - at]),
  );
  expect(jumps).toEqual([]);
});

test('the hosts API: read scope lists, admin scope drains, an unknown host is 404', async () => {
  const reader = { authorization: `Bearer ${TEST_TOKENS.reader}` };
  expect((await stack.api('GET', '/v1/hosts', undefined, reader)).status).toBe(200);
  expect((await stack.api('POST', '/v1/hosts/host-a/drain', undefined, reader)).status).toBe(403);
  expect((await stack.api('POST', '/v1/hosts/no-such-host/drain')).status).toBe(404);
  expect((await stack.api('GET', '/v1/hosts/NOT_AN_ID')).status).toBe(404);
  expect(await hostState('host-a')).toMatchObject({ state: 'up' });
});

// Last: host-b's worker stops at the end of its drain.
test('a drained host takes no new job, finishes the one it runs, then its worker stops', async () => {
  const slow = { repo: repo.url, commit: repo.head, setup: ['sleep 6'] };
  const quick = { repo: repo.url, commit: repo.head, setup: ['true'] };
  // One job on each host (capacity 1 each).
  const first = [await stack.submit(slow), await stack.submit(slow)];
  await waitFor(async () => (await Promise.all(first.map(placedOn))).every((p) => p.length === 1), 'both jobs placed', { timeoutMs: 30_000 });
  const onB = first[(await Promise.all(first.map(placedOn))).findIndex((p) => p[0] === 'host-b')]!;
  expect(onB).toBeDefined();

  // host-b drains while its job runs: the next jobs all go to host-a.
  expect((await stack.api('POST', '/v1/hosts/host-b/drain')).body).toMatchObject({ id: 'host-b', state: 'draining', holding: 1 });
  const next = [await stack.submit(quick), await stack.submit(quick)];
  const ended = await Promise.all([...first, ...next].map((id) => stack.waitForEnd(id, 60_000)));
  expect(ended.map((j) => j.status)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
  expect(await placedOn(onB)).toEqual(['host-b']);
  expect(await Promise.all(next.map(placedOn))).toEqual([['host-a'], ['host-a']]);

  // Nothing left on host-b: it is drained, and its worker stops by itself.
  await expect(Promise.race([hostB.done.then(() => 'stopped'), new Promise((r) => setTimeout(() => r('still running'), 20_000))])).resolves.toBe('stopped');
  expect(await hostState('host-b')).toMatchObject({ state: 'drained', holding: 0 });
  // A worker started on it ends the drain (the upgrade the drain was for).
  const restarted = await createWorker({
    config: { ...stack.config, DRAFTSMAN_MAX_CONCURRENT_STEPS: 1, DRAFTSMAN_HOST_ID: 'host-b' },
    store: stack.store,
    runner: new DockerRunner(engine.docker, stepPolicy(stack.config)),
    connection: hostB.connection,
    workflowBundle: { codePath: path.join(TEST_DATA_DIR, 'workflow-bundle.js') },
  });
  hostB = { ...hostB, worker: restarted, done: restarted.run() };
  expect(await hostState('host-b')).toMatchObject({ state: 'up' });
});
