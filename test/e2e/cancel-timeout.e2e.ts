import type { JobView } from '../../common/job';
import { createWorker } from '../../worker/worker';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { hangingRepoUrl, sleep, waitFor, waitForContainer, waitForStep } from '../../testing/helpers';
import { leftovers, startTestStack, type TestStack } from '../../testing/stack';
import { NativeConnection } from '@temporalio/worker';
import { JobsClient } from '../../client/jobs';
import path from 'node:path';
import { TEST_DATA_DIR } from '../../testing/env';

// Stop grace is 2 s in these tests (DRAFTSMAN_STOP_GRACE_SECONDS).
let stack: TestStack;
let repo: GitFixture;

beforeAll(async () => {
  [stack, repo] = await Promise.all([startTestStack(), startGitFixture(1)]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
});

interface AuditEvent {
  type: string;
  data: Record<string, unknown>;
}

const submit = (spec: Record<string, unknown>) => stack.submit({ repo: repo.url, commit: repo.head, ...spec });

async function ended(id: string): Promise<{ job: JobView; events: AuditEvent[] }> {
  const job = await stack.waitForEnd(id);
  const { body } = await stack.api<{ events: AuditEvent[] }>('GET', `/v1/jobs/${id}/events`);
  expect(await leftovers(stack.docker, id)).toEqual([]);
  return { job, events: body.events };
}

const step = (job: JobView, name: string) => job.steps.find((s) => `${s.kind}-${s.index}` === name);

// A step that answers SIGTERM by exiting 42: its exit code proves TERM arrived before any KILL.
const TRAPS_TERM = 'trap "exit 42" TERM; sleep 300 & wait';

test('cancel through the API during setup: SIGTERM reaches the step, the job ends cancelled with reason and step', async () => {
  const id = await submit({ setup: [TRAPS_TERM], validate: ['true'] });
  await waitForContainer(stack.runner, { jobId: id, kind: 'setup', index: 0 });
  await sleep(500); // the shell has installed its trap

  const first = await stack.api('POST', `/v1/jobs/${id}/cancel`, { reason: 'no longer needed' });
  const second = await stack.api('POST', `/v1/jobs/${id}/cancel`, { reason: 'again' });
  expect(first.status).toBe(202);
  expect([202, 409]).toContain(second.status); // a second cancel is harmless

  const { job, events } = await ended(id);
  expect(job.status).toBe('cancelled');
  expect(job.error).toMatch(/no longer needed.*setup-0/);
  expect(step(job, 'setup-0')).toMatchObject({ status: 'cancelled', exitCode: 42 });
  expect(job.steps.map((s) => s.kind)).not.toContain('validate');
  const cancelled = events.find((e) => e.type === 'cancelled');
  expect(cancelled?.data).toMatchObject({ step: 'setup-0' });
  expect(String(cancelled?.data.reason)).toContain('no longer needed');
  expect(events.filter((e) => e.type === 'cancelled')).toHaveLength(1);

  expect((await stack.api('POST', `/v1/jobs/${id}/cancel`, {})).status).toBe(409);
  expect((await stack.api('POST', '/v1/jobs/job-unknown/cancel', {})).status).toBe(404);
});

/** The lines of a job's first setup step, as stored. */
const setupLog = async (id: string) =>
  (await stack.store.logs.read(id, { afterId: 0, step: { kind: 'setup', index: 0 }, limit: 1000 })).flatMap((c) => c.lines.map((l) => l.x));

test('a cancelled compound command: the whole process group gets SIGTERM, the handler runs within the grace period, nothing after it', async () => {
  const perl = `perl -e '$|=1; $SIG{TERM}=sub{print "got-term\\n"; exit 0}; print "ready\\n"; sleep 60'; echo after`;
  const id = await submit({ setup: [perl], validate: ['true'] });
  const storedLog = () => setupLog(id);
  await waitFor(async () => (await storedLog()).includes('ready'), 'ready in the stored log');
  const cancelledAt = Date.now();
  await stack.jobs.cancel(id, 'process group');
  const { job } = await ended(id);
  expect(job.status).toBe('cancelled');
  const log = await storedLog();
  expect(log).toContain('got-term');
  expect(log).not.toContain('after');
  // The handler exits 0 on TERM; SIGKILL after the grace period would leave 137.
  expect(step(job, 'setup-0')?.status).toBe('cancelled');
  expect(step(job, 'setup-0')?.exitCode).not.toBe(137);
  expect(Date.parse(step(job, 'setup-0')!.finishedAt!) - cancelledAt).toBeLessThan(2_000);
});

test('a TERM handler that takes its time within the grace period runs to its end: the shell waits for it, then runs nothing more', async () => {
  // The shell gets the group's SIGTERM too: dying at once, it would end the container and
  // kill the handler half a second before it prints.
  const perl = `perl -e '$|=1; $SIG{TERM}=sub{select(undef, undef, undef, 0.5); print "cleaned-up\\n"; exit 0}; print "ready\\n"; sleep 60'; echo after`;
  const id = await submit({ setup: [perl], validate: ['true'] });
  const storedLog = () => setupLog(id);
  await waitFor(async () => (await storedLog()).includes('ready'), 'ready in the stored log');
  await stack.jobs.cancel(id, 'slow handler');
  const { job } = await ended(id);
  expect(job.status).toBe('cancelled');
  expect(await storedLog()).toEqual(['ready', 'cleaned-up']);
  expect(step(job, 'setup-0')?.exitCode).toBe(143);
});

test('cancel during the second of several setup steps (one activity): the first stays succeeded, nothing after the second runs', async () => {
  const id = await submit({ setup: ['true', TRAPS_TERM, 'touch never'], validate: ['true'] });
  await waitForContainer(stack.runner, { jobId: id, kind: 'setup', index: 1 });
  await sleep(500);
  await stack.jobs.cancel(id, 'second step');
  const { job, events } = await ended(id);
  expect(job.status).toBe('cancelled');
  expect(job.error).toMatch(/second step.*setup-1/);
  expect(job.steps.map((s) => `${s.kind}-${s.index}:${s.status}`)).toEqual(['clone-0:succeeded', 'setup-0:succeeded', 'setup-1:cancelled']);
  expect(step(job, 'setup-1')).toMatchObject({ exitCode: 42 });
  expect(events.find((e) => e.type === 'cancelled')?.data).toMatchObject({ step: 'setup-1' });
  // The workflow's own view agrees with the audit trail.
  const live = await stack.jobs.status(id);
  expect(live.steps.map((s) => `${s.kind}-${s.index}:${s.status}`)).toEqual(['clone-0:succeeded', 'setup-0:succeeded', 'setup-1:cancelled']);
});

test('a step that ignores SIGTERM is killed after the grace period', async () => {
  const id = await submit({ setup: ['trap "" TERM; while :; do sleep 1; done'] });
  await waitForContainer(stack.runner, { jobId: id, kind: 'setup', index: 0 });
  await sleep(500);
  const cancelledAt = Date.now();
  await stack.jobs.cancel(id, 'by signal');
  const { job } = await ended(id);
  expect(job.status).toBe('cancelled');
  const s = step(job, 'setup-0')!;
  expect(s).toMatchObject({ status: 'cancelled', exitCode: 137 });
  expect(Date.parse(s.finishedAt!) - cancelledAt).toBeGreaterThanOrEqual(1500);
});

test("Temporal's own workflow cancellation during a loop iteration cancels the job the same way", async () => {
  const id = await submit({ loop: { command: TRAPS_TERM, maxIterations: 3 }, validate: ['true'] });
  await waitForContainer(stack.runner, { jobId: id, kind: 'loop', index: 1 });
  await sleep(500);
  await stack.client.workflow.getHandle(id).cancel();
  const { job, events } = await ended(id);
  expect(job.status).toBe('cancelled');
  expect(step(job, 'loop-1')).toMatchObject({ status: 'cancelled', exitCode: 42 });
  expect(events.find((e) => e.type === 'cancelled')?.data).toMatchObject({ step: 'loop-1' });
});

test('cancel between and during fast loop iterations', async () => {
  const id = await submit({ loop: { command: 'true', until: 'false', maxIterations: 1000 } });
  await waitForStep(stack.store, id, 'until-2', 'failed');
  await stack.jobs.cancel(id);
  const { job } = await ended(id);
  expect(job.status).toBe('cancelled');
  expect(job.loop!.iterations).toBeGreaterThanOrEqual(2);
  expect(job.loop!.iterations).toBeLessThan(1000);
});

test('cancel during validate', async () => {
  const id = await submit({ validate: ['true', TRAPS_TERM, 'true'] });
  await waitForContainer(stack.runner, { jobId: id, kind: 'validate', index: 1 });
  await sleep(500);
  await stack.jobs.cancel(id);
  const { job } = await ended(id);
  expect(job.status).toBe('cancelled');
  expect(job.steps.map((s) => `${s.kind}-${s.index}:${s.status}`)).toEqual(['clone-0:succeeded', 'validate-0:succeeded', 'validate-1:cancelled']);
});

test('cancel during a clone that hangs', async () => {
  const id = await submit({ repo: hangingRepoUrl(), validate: ['true'] });
  await waitForStep(stack.store, id, 'clone-0');
  await stack.jobs.cancel(id, 'clone hangs');
  const { job } = await ended(id);
  expect(job.status).toBe('cancelled');
  expect(step(job, 'clone-0')?.status).toBe('cancelled');
});

test('cancel while queued: no step runs once a worker picks the job up', async () => {
  // A task queue no worker polls yet: the job stays queued.
  const taskQueue = `${stack.config.DRAFTSMAN_TASK_QUEUE}-queued`;
  const jobs = new JobsClient(stack.client, { taskQueue });
  const { id } = await jobs.start({ repo: repo.url, commit: repo.head, validate: ['true'] });
  expect((await stack.api<JobView>('GET', `/v1/jobs/${id}`)).body.status).toBe('queued');
  expect((await stack.api('POST', `/v1/jobs/${id}/cancel`, { reason: 'before start' })).status).toBe(202);

  const connection = await NativeConnection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  const worker = await createWorker({
    config: { ...stack.config, DRAFTSMAN_TASK_QUEUE: taskQueue },
    store: stack.store,
    runner: stack.runner,
    connection,
    workflowBundle: { codePath: path.join(TEST_DATA_DIR, 'workflow-bundle.js') },
  });
  try {
    const { job } = await worker.runUntil(ended(id));
    expect(job.status).toBe('cancelled');
    expect(job.steps).toEqual([]);
    expect(job.error).toContain('before start');
  } finally {
    await connection.close();
  }
});

test('a step past stepSeconds is stopped and the job ends timed_out naming the step', async () => {
  const id = await submit({ setup: [TRAPS_TERM], validate: ['true'], timeouts: { stepSeconds: 2 } });
  const { job, events } = await ended(id);
  expect(job.status).toBe('timed_out');
  expect(job.error).toMatch(/setup-0.*2 s/);
  expect(step(job, 'setup-0')).toMatchObject({ status: 'timed_out', exitCode: 42 });
  expect(job.steps.map((s) => s.kind)).not.toContain('validate');
  expect(events.find((e) => e.type === 'timed_out')?.data).toMatchObject({ step: 'setup-0' });
});

test('a job past jobSeconds ends timed_out inside the workflow, and cleanup still runs', async () => {
  const id = await submit({ loop: { command: 'sleep 1', until: 'false', maxIterations: 1000 }, timeouts: { jobSeconds: 4 } });
  const { job, events } = await ended(id);
  expect(job.status).toBe('timed_out');
  expect(job.error).toMatch(/job exceeded its 4 s time limit/);
  expect(events.map((e) => e.type)).toContain('cleaned_up');
  const description = await stack.client.workflow.getHandle(id).describe();
  expect(description.status.name).toBe('FAILED');
});
