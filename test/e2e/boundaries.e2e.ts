/**
 * The windows of a job's own activities (its end, its acceptance, its patch) on
 * FakeRunner and the real PostgreSQL store, in MockActivityEnvironment. The windows
 * between a step's phases are unit tests on the in-memory store
 * (activities/step/windows.test.ts).
 */
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../activities';
import { loadConfig } from '../../common/config';
import type { ResolvedJobSpec } from '../../common/job';
import { JobStore } from '../../db/store';
import { FakeRunner } from '../../runner/fake/fake-runner';
import { fakeSpec } from '../../testing/fake-spec';

const config = loadConfig({ DRAFTSMAN_STOP_GRACE_SECONDS: '1', DRAFTSMAN_DEPLOYMENT_ID: 'test' });
let store: JobStore;
let n = 0;

beforeAll(async () => {
  store = JobStore.connect(process.env.DRAFTSMAN_TEST_DATABASE_URL!);
  await store.migrate();
});
afterAll(async () => {
  await store?.close();
});

const spec = fakeSpec();

/** A job row to hang steps on, and the activities over a fake engine (a second lasts 50 ms there). */
async function setUp(
  opts: {
    config?: Partial<typeof config>;
    /** What the patch step prints: FakeRunner cannot run git, so its command is replaced by echoes of these lines. */
    patchLines?: string[];
  } = {},
) {
  const jobId = `boundary-${process.pid}-${n++}`;
  await store.recordAccepted(jobId, `run-${jobId}`, spec);
  const runner = new FakeRunner({ secondMs: 50 });
  if (opts.patchLines) {
    const start = runner.start.bind(runner);
    const echoes = opts.patchLines.map((l) => `echo ${l}`).join('; ');
    runner.start = (req) => start(req.kind === 'patch' ? { ...req, command: echoes } : req);
  }
  const activities = createActivities({
    runner,
    store,
    config: { ...config, ...opts.config },
    describeJob: async () => ({ running: true }),
    heartbeatMs: 50,
    engineWatch: { everyMs: 100, missedExitMs: 400 },
    workspaceWatchMs: 100,
  });
  return { jobId, runner, activities };
}

/** MockActivityEnvironment.run with the activity's own types. */
const runIn = <A extends unknown[], R>(env: MockActivityEnvironment, fn: (...args: A) => Promise<R>, ...args: A): Promise<R> =>
  env.run(fn as never, ...(args as unknown as never[])) as Promise<R>;

test('a job that ends while no attempt runs its step: SIGTERM with the grace period, and the step row recorded', async () => {
  const { jobId, runner, activities } = await setUp();
  const ref = { jobId, kind: 'setup' as const, index: 0 };
  await store.steps.claim(jobId, { kind: 'setup', index: 0, seq: 0 }, 1);
  await runner.start({ ...ref, image: 'fake:1', command: 'trap "exit 42" TERM; sleep 100', env: {}, timeoutSeconds: 60 });
  await runIn(new MockActivityEnvironment(), activities.endJob, { jobId, status: 'cancelled', loop: null, error: 'cancelled by request' });
  const job = await store.getJob(jobId);
  expect(job?.steps[0]).toMatchObject({ status: 'cancelled', exitCode: 42 });
  expect(job?.status).toBe('cancelled');
  expect(await runner.listJobResources(jobId)).toEqual({ steps: [], holders: [], workspaces: [] });
});

test('a job id that cannot name an engine resource is refused before anything starts', async () => {
  const { activities } = await setUp();
  const err = await runIn(new MockActivityEnvironment(), activities.acceptJob, {
    jobId: 'bad id/../x',
    runId: 'r1',
    spec: { repo: spec.repo, commit: spec.commit },
  }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect((err as ApplicationFailure).type).toBe('InvalidJobSpecError');
  expect((err as ApplicationFailure).message).toMatch(/job id/);
});

test('a duplicate job id is refused and leaves the stored spec as it was', async () => {
  const { jobId, activities } = await setUp();
  const err = await runIn(new MockActivityEnvironment(), activities.acceptJob, {
    jobId,
    runId: 'another-run',
    spec: { repo: 'https://example.com/other.git', commit: 'b'.repeat(40) },
  }).catch((e: unknown) => e);
  expect((err as ApplicationFailure).type).toBe('DuplicateJobIdError');
  const { rows } = await store.pool.query<{ spec: ResolvedJobSpec }>('SELECT spec FROM jobs WHERE id = $1', [jobId]);
  expect(rows[0]?.spec.repo).toBe(spec.repo);
});

test.each([
  ['exactly at DRAFTSMAN_PATCH_MAX_BYTES is stored whole', 0, false],
  ['one byte over it is stored cut at the ceiling and marked truncated', 1, true],
])('a patch %s', async (_title, over, truncated) => {
  const max = 200;
  const head = ['diff --git a/f b/f', 'new file mode 100644', '--- /dev/null', '+++ b/f', '@@ -0,0 +1 @@'];
  const headBytes = head.reduce((sum, l) => sum + l.length + 1, 0);
  // The added line's text, its '+' and its newline fill the rest of the ceiling (plus `over`).
  const lines = [...head, `+${'x'.repeat(max - headBytes - 2 + over)}`];
  const { jobId, activities } = await setUp({ patchLines: lines, config: { DRAFTSMAN_PATCH_MAX_BYTES: max } });
  const env = new MockActivityEnvironment({ attempt: 1 });
  const result = await runIn(env, activities.capturePatch, { jobId, image: 'fake:1', timeoutSeconds: 60 });
  expect(result).toEqual({ bytes: max, truncated });
  const stored = await store.getPatch(jobId);
  expect(stored?.truncated).toBe(truncated);
  expect(stored?.data.toString()).toBe(`${lines.join('\n')}\n`.slice(0, max));
  const events = await store.events(jobId);
  expect(events.find((e) => e.type === 'patch_stored')?.data).toMatchObject({ bytes: max, truncated });
});
