import { JobsClient } from '../../client/jobs';
import type { JobView } from '../../common/job';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { sleep, waitFor, waitForContainer } from '../../testing/helpers';
import { leftovers, startTestStack, type TestStack } from '../../testing/stack';
import { startWorkerProcess } from '../../testing/worker-process';

// Each step appends a line to a file in the workspace; validation proves it ran once.
const APPEND_AND_WAIT = 'echo ran >> runs; sleep 4';
const RAN_ONCE = 'test "$(wc -l < runs)" -eq 1';

let stack: TestStack;
let repo: GitFixture;
let queueSeq = 0;

beforeAll(async () => {
  [stack, repo] = await Promise.all([startTestStack(), startGitFixture(1)]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
});

function queue(): { taskQueue: string; jobs: JobsClient } {
  const taskQueue = `${stack.config.DRAFTSMAN_TASK_QUEUE}-r${++queueSeq}`;
  return { taskQueue, jobs: new JobsClient(stack.client, { taskQueue }) };
}

function workerEnv(taskQueue: string): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: stack.config.TEMPORAL_ADDRESS,
    DATABASE_URL: stack.config.DATABASE_URL!,
    DRAFTSMAN_TASK_QUEUE: taskQueue,
    ...stack.workerEnv,
    DRAFTSMAN_STOP_GRACE_SECONDS: '2',
  };
}

async function finished(id: string): Promise<JobView> {
  const job = await stack.waitForEnd(id, 120_000);
  expect(await leftovers(stack.docker, id)).toEqual([]);
  return job;
}

const spec = (extra: Record<string, unknown> = {}) => ({
  repo: repo.url,
  commit: repo.head,
  setup: [APPEND_AND_WAIT],
  validate: [RAN_ONCE],
  ...extra,
});

test('a worker killed with SIGKILL mid-step: the next worker re-attaches and the step runs once', async () => {
  const { taskQueue, jobs } = queue();
  const first = await startWorkerProcess(workerEnv(taskQueue));
  const { id } = await jobs.start(spec());
  await waitForContainer(stack.runner, { jobId: id, kind: 'setup', index: 0 });
  first.child.kill('SIGKILL');
  await first.exited;
  const [container] = (await stack.runner.listJobResources(id)).steps;
  expect(container).toBe(`draftsman-test-${id}-setup-0`); // left running by the dead worker

  const second = await startWorkerProcess(workerEnv(taskQueue));
  try {
    const job = await finished(id);
    expect(job.status).toBe('succeeded');
    expect(job.steps.map((s) => `${s.kind}-${s.index}:${s.exitCode}`)).toEqual(['clone-0:0', 'setup-0:0', 'validate-0:0']);
  } finally {
    second.child.kill('SIGTERM');
    await second.exited;
  }
});

test('a worker stopped with SIGTERM leaves the running step to the next worker instead of killing it', async () => {
  const { taskQueue, jobs } = queue();
  const first = await startWorkerProcess(workerEnv(taskQueue));
  const { id } = await jobs.start(spec({ setup: ['echo ran >> runs; sleep 8'] }));
  await waitForContainer(stack.runner, { jobId: id, kind: 'setup', index: 0 });
  first.child.kill('SIGTERM');
  expect(await first.exited).toBe(0);
  const state = await stack.runner.status({ jobId: id, kind: 'setup', index: 0 });
  expect(state.state).toBe('running');

  const second = await startWorkerProcess(workerEnv(taskQueue));
  try {
    const job = await finished(id);
    expect(job.status).toBe('succeeded');
    expect(job.steps.find((s) => s.kind === 'setup')).toMatchObject({ status: 'succeeded', exitCode: 0 });
  } finally {
    second.child.kill('SIGTERM');
    await second.exited;
  }
});

test('the janitor stops a step past its deadline while no worker is alive, and the job ends timed_out', async () => {
  const { taskQueue, jobs } = queue();
  const first = await startWorkerProcess(workerEnv(taskQueue));
  const { id } = await jobs.start(spec({ setup: ['sleep 300'], timeouts: { stepSeconds: 2 } }));
  await waitForContainer(stack.runner, { jobId: id, kind: 'setup', index: 0 });
  first.child.kill('SIGKILL');
  await first.exited;
  // Past the deadline (2 s) and the janitor's slack (grace 2 s + 5 s).
  await sleep(10_000);
  const result = await stack.client.workflow.execute('janitorWorkflow', {
    taskQueue: stack.config.DRAFTSMAN_TASK_QUEUE,
    workflowId: `janitor-${id}`,
  });
  expect(result).toMatchObject({ stopped: [`draftsman-test-${id}-setup-0`] });
  const state = await stack.runner.status({ jobId: id, kind: 'setup', index: 0 });
  expect(state.state).toBe('exited');

  const second = await startWorkerProcess(workerEnv(taskQueue));
  try {
    const job = await finished(id);
    expect(job.status).toBe('timed_out');
    expect(job.steps.find((s) => s.kind === 'setup')?.status).toBe('timed_out');
  } finally {
    second.child.kill('SIGTERM');
    await second.exited;
  }
});

test('the janitor removes the container and volume of a job Temporal does not know, and records it', async () => {
  const jobId = `job-orphan-${process.pid}`;
  await stack.runner.prepareWorkspace(jobId);
  await stack.runner.start({
    jobId,
    kind: 'setup',
    index: 0,
    image: stack.config.DRAFTSMAN_DEFAULT_IMAGE,
    command: 'sleep 300',
    env: {},
    timeoutSeconds: 600,
  });
  // The step, the job's network holder and the workspace.
  expect((await leftovers(stack.docker, jobId)).length).toBe(3);

  const result = await stack.client.workflow.execute('janitorWorkflow', {
    taskQueue: stack.config.DRAFTSMAN_TASK_QUEUE,
    workflowId: `janitor-${jobId}`,
  });
  expect(result.removed).toEqual(
    expect.arrayContaining([`draftsman-test-${jobId}-setup-0`, `draftsman-test-${jobId}-holder`, `draftsman-test-${jobId}-workspace`]),
  );
  expect(await leftovers(stack.docker, jobId)).toEqual([]);
  const { rows } = await stack.store.pool.query('SELECT action, type, reason FROM janitor_actions WHERE job_id = $1 ORDER BY id', [jobId]);
  expect(rows).toEqual([
    { action: 'remove', type: 'step', reason: 'job unknown to Temporal' },
    { action: 'remove', type: 'holder', reason: 'job unknown to Temporal' },
    { action: 'remove', type: 'workspace', reason: 'job unknown to Temporal' },
  ]);
  // Its socket folder went with the holder: the egress service no longer listens for it.
  await waitFor(() => !stack.egress.jobs().includes(jobId), 'the egress service to let the job go', { timeoutMs: 10_000 });
});
