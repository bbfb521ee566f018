/**
 * Two hosts on one machine: the test stack's worker on the machine's engine (host-a) and a
 * second worker on a private engine (host-b), on one shared task queue. Each job is placed
 * on one host; every container and the workspace volume of a job are on that host's engine
 * (the engines' own event streams say where), and with one step at a time per host no
 * engine ever runs two steps at once. On 2 cores two hosts measure correctness, not speed.
 */
import path from 'node:path';
import { NativeConnection } from '@temporalio/worker';
import type Docker from 'dockerode';
import { LABEL_JOB, LABEL_ROLE, LABEL_STEP_KIND } from '../../common/names';
import { volumeName } from '../../runner/docker/convert';
import { DockerRunner } from '../../runner/docker/docker-runner';
import { createWorker, type HostWorker, stepPolicy } from '../../worker/worker';
import { TEST_DATA_DIR } from './env';
import { type GitFixture, startGitFixture } from './git-fixture';
import { type PrivateEngine, removeEngineFolder, startPrivateEngine } from './private-engine';
import { startTestStack, type TestStack } from './stack';

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
      const e = JSON.parse(buffer.slice(0, nl)) as { Type: string; Action: string; timeNano: number; Actor: { ID: string; Attributes: Record<string, string> } };
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
