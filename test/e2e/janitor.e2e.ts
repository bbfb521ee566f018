/**
 * The janitor on an engine shared by two deployments (and by resources of a version
 * from before deployment labels): each removes only its own deployment's leftovers,
 * and never those of a job that still runs.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import Docker from 'dockerode';
import { createActivities } from '../../activities';
import { loadConfig } from '../../common/config';
import { LABEL_JOB, LABEL_MANAGED } from '../../common/names';
import { HostStore } from '../../db/host-store';
import { JobStore } from '../../db/store';
import { DockerRunner } from '../../runner/docker/docker-runner';
import { stepPolicy } from '../../worker/worker';

const docker = new Docker();
let store: JobStore;
const tag = `${process.pid}`;
const runnerOf = (deployment: string) =>
  new DockerRunner(docker, stepPolicy(loadConfig({ DRAFTSMAN_DEPLOYMENT_ID: deployment, DRAFTSMAN_STEP_EGRESS: 'none', DRAFTSMAN_STOP_GRACE_SECONDS: '1' })));
const [a, b] = [runnerOf(`ja${tag}`), runnerOf(`jb${tag}`)];
const legacy = `draftsman-legacy-${tag}`;

beforeAll(async () => {
  store = JobStore.connect(process.env.DRAFTSMAN_TEST_DATABASE_URL!);
  await store.migrate();
});
afterAll(async () => {
  for (const r of [a, b]) for (const id of ['ended', 'live', 'stranger']) await r.removeJob(`${id}-${tag}`);
  await docker
    .getContainer(legacy)
    .remove({ force: true })
    .catch(() => undefined);
  await store.close();
});

const step = (jobId: string) => ({
  jobId,
  kind: 'setup' as const,
  index: 0,
  image: 'draftsman-runner:latest',
  command: 'sleep 60',
  env: {},
  timeoutSeconds: 600,
});

test("two deployments on one engine: A's janitor removes A's ended job only, never A's running job, B's jobs or unlabelled ones", async () => {
  const ended = `ended-${tag}`;
  const live = `live-${tag}`;
  const stranger = `stranger-${tag}`;
  for (const [runner, jobId] of [
    [a, ended],
    [a, live],
    [b, ended],
    [b, stranger],
  ] as const) {
    await runner.prepareWorkspace(jobId);
    await runner.start(step(jobId));
  }
  // A container of a version from before deployment labels (managed, no deployment).
  await docker.createContainer({ name: legacy, Image: 'draftsman-runner:latest', Cmd: ['true'], Labels: { [LABEL_MANAGED]: 'true', [LABEL_JOB]: ended } });

  // A's Temporal knows `live` as running and nothing of the others.
  const activities = createActivities({
    runner: a,
    store,
    config: loadConfig({ DRAFTSMAN_STOP_GRACE_SECONDS: '1' }),
    describeJob: async (id) => (id === live ? { running: true } : null),
  });
  const result = (await new MockActivityEnvironment().run(activities.sweep)) as { removed: string[] };
  expect(result.removed.sort()).toEqual([`draftsman-ja${tag}-${ended}-setup-0`, `draftsman-ja${tag}-${ended}-workspace`].sort());

  expect((await a.status(step(live))).state).toBe('running');
  expect((await b.status(step(ended))).state).toBe('running');
  expect((await b.status(step(stranger))).state).toBe('running');
  expect((await b.listJobResources(ended)).workspaces).toHaveLength(1);
  expect((await docker.getContainer(legacy).inspect()).Name).toBe(`/${legacy}`);
});

test('a job whose workflow ended without recording its end frees its host: the janitor records it failed, and the next in line is placed', async () => {
  const queue = `jq${tag}`;
  const hosts = new HostStore(store.pool, queue);
  await hosts.heartbeat({ id: 'h1', taskQueue: `${queue}@h1`, capacity: 1, freeDiskMb: null, minFreeDiskMb: 0 }, true);
  const [gone, next] = [`gone-${tag}`, `next-${tag}`];
  for (const id of [gone, next]) await store.recordQueued(id, 'run', 'https://example.com/r.git', 'a'.repeat(40), {}, { principal: 'test' });
  expect(await hosts.place(gone)).toMatchObject({ host: { id: 'h1' } });
  expect(await hosts.place(next)).toEqual({ wait: 'waiting for a host with room (position 1 in the queue)' });

  // Temporal knows `next` as running and nothing of `gone` (terminated, its history gone).
  const activities = createActivities({
    runner: a,
    store,
    config: loadConfig({ DRAFTSMAN_STOP_GRACE_SECONDS: '1', DRAFTSMAN_TASK_QUEUE: queue }),
    describeJob: async (id) => (id === next ? { running: true } : null),
  });
  await new MockActivityEnvironment().run(activities.sweep);
  expect(await store.jobState(gone)).toEqual({ status: 'failed', finished: true });
  expect(await store.jobState(next)).toEqual({ status: 'queued', finished: false });
  expect(await hosts.place(next)).toMatchObject({ host: { id: 'h1' } });
  expect((await hosts.list()).map((h) => [h.id, h.running, h.holding])).toEqual([['h1', 1, 1]]);
});
