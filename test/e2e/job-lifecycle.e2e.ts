import type { JobView } from '../../common/job';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { leftovers, startTestStack, type TestStack } from '../../testing/stack';

// Steps reach the fixture's git daemon on 127.0.0.1 through the host network.
let stack: TestStack;
let repo: GitFixture;

beforeAll(async () => {
  [stack, repo] = await Promise.all([startTestStack({ DRAFTSMAN_ALLOWED_IMAGES: 'draftsman-no-such-image:1' }), startGitFixture(3)]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
});

async function submit(spec: Record<string, unknown>): Promise<string> {
  const res = await stack.api<{ id: string }>('POST', '/v1/jobs', { repo: repo.url, ...spec });
  expect(res.status).toBe(202);
  return res.body.id;
}

async function finished(id: string): Promise<JobView> {
  await stack.waitForEnd(id);
  const res = await stack.api<JobView>('GET', `/v1/jobs/${id}`);
  expect(res.status).toBe(200);
  return res.body;
}

const stepNames = (job: JobView) => job.steps.map((s) => `${s.kind}-${s.index}:${s.exitCode}`);

test('a full job checks out the requested commit, converges on iteration 3, validates and leaves nothing behind', async () => {
  const commit = repo.commits[1]!;
  expect(commit).not.toBe(repo.head);
  const id = await submit({
    commit,
    setup: ['echo prepared > setup.txt'],
    loop: {
      // State kept in the workspace between iterations: a counter file.
      command: 'n=$(cat counter 2>/dev/null || echo 0); echo $((n + 1)) > counter',
      until: 'test "$(cat counter)" -ge 3',
      maxIterations: 5,
    },
    validate: ['test "$(cat marker)" = commit-2', `test "$(git rev-parse HEAD)" = ${commit}`, 'test -f setup.txt && test "$(id -u)" != 0'],
  });

  const queued = await stack.api<JobView>('GET', `/v1/jobs/${id}`);
  expect(queued.status).toBe(200);
  expect(['queued', 'running']).toContain(queued.body.status);

  const job = await finished(id);
  expect(job).toMatchObject({ id, status: 'succeeded', repo: repo.url, commit, loop: { iterations: 3, converged: true } });
  expect(stepNames(job)).toEqual([
    'clone-0:0',
    'setup-0:0',
    'loop-1:0',
    'until-1:1',
    'loop-2:0',
    'until-2:1',
    'loop-3:0',
    'until-3:0',
    'validate-0:0',
    'validate-1:0',
    'validate-2:0',
  ]);
  expect(job.steps.map((s) => s.status)).toEqual([
    'succeeded',
    'succeeded',
    'succeeded',
    'failed',
    'succeeded',
    'failed',
    'succeeded',
    'succeeded',
    'succeeded',
    'succeeded',
    'succeeded',
  ]);
  for (const s of job.steps) {
    expect(Date.parse(s.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(s.startedAt!));
  }
  expect(job.startedAt && job.finishedAt).toBeTruthy();
  expect(job.error).toBeUndefined();
  expect(await leftovers(stack.docker, id)).toEqual([]);

  const events = await stack.api<{ events: { type: string }[] }>('GET', `/v1/jobs/${id}/events`);
  const types = events.body.events.map((e) => e.type);
  expect(types[0]).toBe('created');
  expect(types.filter((t) => t === 'step_finished')).toHaveLength(11);
  expect(types.slice(-2)).toEqual(['cleaned_up', 'finished']);

  // The live view from the workflow's status query has the same shape.
  const live = await stack.jobs.status(id);
  expect(live.status).toBe('succeeded');
  expect(stepNames(live)).toEqual(stepNames(job));

  // The Web UI can filter jobs by the search attributes the workflow keeps current.
  const query = `DraftsmanStatus = "succeeded" AND DraftsmanRepo = "${repo.url}" AND DraftsmanCommit = "${commit}"`;
  let found: string[] = [];
  for (let i = 0; i < 50 && !found.includes(id); i++) {
    found = [];
    for await (const wf of stack.client.workflow.list({ query })) found.push(wf.workflowId);
    if (!found.includes(id)) await new Promise((r) => setTimeout(r, 100));
  }
  expect(found).toEqual([id]);

  const list = await stack.api<{ jobs: JobView[] }>('GET', '/v1/jobs?status=succeeded');
  expect(list.body.jobs.map((j) => j.id)).toContain(id);
  const failedList = await stack.api<{ jobs: JobView[] }>('GET', '/v1/jobs?status=failed');
  expect(failedList.body.jobs.map((j) => j.id)).not.toContain(id);
});

test('a failing setup step fails the job and nothing after it runs', async () => {
  const id = await submit({ commit: repo.head, setup: ['exit 3', 'touch never'], validate: ['true'] });
  const job = await finished(id);
  expect(job.status).toBe('failed');
  expect(stepNames(job)).toEqual(['clone-0:0', 'setup-0:3']);
  expect(job.error).toMatch(/setup-0/);
  expect(await leftovers(stack.docker, id)).toEqual([]);
});

test('the clone and the setup steps run in one activity, the validations in another: no activity per step', async () => {
  const id = await submit({ commit: repo.head, setup: ['echo a > a', 'test -f a', 'true'], validate: ['test -f a', 'true'] });
  const job = await finished(id);
  expect(job.status).toBe('succeeded');
  expect(stepNames(job)).toEqual(['clone-0:0', 'setup-0:0', 'setup-1:0', 'setup-2:0', 'validate-0:0', 'validate-1:0']);
  const history = await stack.client.workflow.getHandle(id).fetchHistory();
  const scheduled = (history.events ?? []).flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
  // Its two batches and its end (on its host's queue); accepting, placing and starting it are local activities.
  expect(scheduled).toEqual(['runSteps', 'runSteps', 'endJob']);
  const markers = (history.events ?? []).flatMap((e) => e.markerRecordedEventAttributes?.markerName ?? []);
  // One patch marker (each is a history event and a search attribute upsert), three local activities.
  expect(markers.filter((m) => m === 'core_patch')).toHaveLength(1);
  expect(markers.filter((m) => m === 'core_local_activity')).toHaveLength(3);
  // Each step still has its own audit records.
  const events = await stack.api<{ events: { type: string }[] }>('GET', `/v1/jobs/${id}/events`);
  expect(events.body.events.filter((e) => e.type === 'step_started')).toHaveLength(6);
  expect(events.body.events.filter((e) => e.type === 'step_finished')).toHaveLength(6);
});

test('a failing validate step fails the job, and every validate step still runs', async () => {
  const id = await submit({ commit: repo.head, validate: ['exit 1', 'true', 'exit 2'] });
  const job = await finished(id);
  expect(job.status).toBe('failed');
  expect(stepNames(job)).toEqual(['clone-0:0', 'validate-0:1', 'validate-1:0', 'validate-2:2']);
  expect(job.error).toMatch(/validate-0.*validate-2/);
});

test('a loop that never converges stops at maxIterations, is not a failure, and validation still runs', async () => {
  const id = await submit({
    commit: repo.head,
    loop: { command: 'echo x >> attempts; exit 7', maxIterations: 3 },
    validate: ['test "$(wc -l < attempts)" -eq 3'],
  });
  const job = await finished(id);
  expect(job.status).toBe('succeeded');
  expect(job.loop).toEqual({ iterations: 3, converged: false });
  expect(stepNames(job)).toEqual(['clone-0:0', 'loop-1:7', 'loop-2:7', 'loop-3:7', 'validate-0:0']);
});

test('a commit the repository does not have fails the clone, and the job', async () => {
  const id = await submit({ commit: 'f'.repeat(40), validate: ['true'] });
  const job = await finished(id);
  expect(job.status).toBe('failed');
  expect(job.steps).toHaveLength(1);
  expect(job.steps[0]).toMatchObject({ kind: 'clone', status: 'failed' });
  expect(job.steps[0]!.exitCode).not.toBe(0);
  expect(await leftovers(stack.docker, id)).toEqual([]);
});

test('a job started with the Temporal client SDK alone is recorded and served by the API', async () => {
  const { id } = await stack.jobs.start({ repo: repo.url, commit: repo.commits[0]!, validate: ['test "$(cat marker)" = commit-1'] });
  const job = await finished(id);
  expect(job.status).toBe('succeeded');
  expect(stepNames(job)).toEqual(['clone-0:0', 'validate-0:0']);
  const events = await stack.api<{ events: { type: string }[] }>('GET', `/v1/jobs/${id}/events`);
  expect(events.body.events.map((e) => e.type)).toContain('started');
});

test('an invalid spec started through the SDK fails the job with the reason recorded', async () => {
  const { id } = await stack.jobs.start({ repo: repo.url, commit: 'main' });
  const job = await finished(id);
  expect(job.status).toBe('failed');
  expect(job.error).toMatch(/commit/);
});

test('an image the engine does not have fails the job with a clear error, without retrying forever', async () => {
  const id = await submit({ commit: repo.head, image: 'draftsman-no-such-image:1', validate: ['true'] });
  const job = await finished(id);
  expect(job.status).toBe('failed');
  expect(job.error).toMatch(/image draftsman-no-such-image:1 is not present/);
  expect(await leftovers(stack.docker, id)).toEqual([]);
});
