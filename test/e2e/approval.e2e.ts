/**
 * The approval gate on the real Temporal server with scripted activities: decisions by
 * update (approve, reject, a repeat, a conflicting one, one too early), the timeout's
 * decision, time spent waiting outside the job's time limit, publish steps and their
 * secrets, a cancel while waiting.
 */
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Activities } from '../../activities';
import { JobsClient } from '../../client/jobs';
import { ApprovalRefusedError, DecisionPendingError } from '../../common/errors';
import type { AcceptedJob, Approval, ApprovalGate, JobView, ResolvedJobSpec, StepOutcome } from '../../common/job';
import { CANCEL_SIGNAL, FailureType, JOB_WORKFLOW_TYPE, STATUS_QUERY } from '../../common/names';
import { TEST_DATA_DIR } from '../../testing/env';
import { fakeSpec } from '../../testing/fake-spec';
import { waitFor } from '../../testing/helpers';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await TestWorkflowEnvironment.createFromExistingServer({ address: process.env.DRAFTSMAN_TEST_TEMPORAL_ADDRESS! });
});
afterAll(async () => {
  await env?.teardown();
});

const ok = (kind: StepOutcome['kind'], index: number): StepOutcome => ({
  kind,
  index,
  status: 'succeeded',
  exitCode: 0,
  oomKilled: false,
  startedAt: null,
  finishedAt: null,
});

/** Scripted activities that record the gate's calls, the steps run and their secrets. */
function scripted(spec: ResolvedJobSpec, beforeValidate: () => Promise<void> = async () => undefined) {
  const record = {
    steps: [] as string[],
    secrets: {} as Record<string, Record<string, string> | undefined>,
    gates: [] as ApprovalGate[],
    approvals: [] as Approval[],
    ended: [] as { status: string; error?: string }[],
  };
  const activities: Partial<Activities> = {
    acceptJob: async (): Promise<AcceptedJob> => ({ spec, iterationsPerRun: 10 }),
    placeJob: async () => null,
    startJob: async () => ({ started: true }) as const,
    runSteps: async (input) => {
      if (!input.clone) await beforeValidate();
      record.steps.push(...input.steps.map((s) => `${s.kind}-${s.index}`));
      return [...(input.clone ? [ok('clone', 0)] : []), ...input.steps.map((s) => ok(s.kind, s.index))];
    },
    runStep: async (input) => {
      record.steps.push(`${input.kind}-${input.index}`);
      record.secrets[`${input.kind}-${input.index}`] = input.secretEnv;
      return ok(input.kind, input.index);
    },
    capturePatch: async () => ({ bytes: 0, truncated: false }),
    preparePublish: async (input) => {
      record.steps.push(`checkout:${input.commit.slice(0, 7)}:${input.withPatch ? 'patch' : 'commit'}`);
      return { patchBytes: 0 };
    },
    awaitApproval: async (input) => {
      if ('before' in input.gate) record.gates.push(input.gate);
    },
    recordApproval: async (input) => {
      record.approvals.push(input.approval);
    },
    endJob: async (input) => {
      record.ended.push({ status: input.status, error: input.error });
    },
  };
  return { activities, record };
}

async function withWorker<T>(name: string, activities: Partial<Activities>, body: (jobId: string, taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = `approval-${process.pid}-${name}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: { codePath: path.join(TEST_DATA_DIR, 'workflow-bundle.js') },
    activities,
  });
  return worker.runUntil(body(`approval-${name}-${process.pid}`, taskQueue));
}

const start = (jobId: string, taskQueue: string) => env.client.workflow.start(JOB_WORKFLOW_TYPE, { taskQueue, workflowId: jobId, args: [{}] });
const status = async (jobId: string) => (await env.client.workflow.getHandle(jobId).query<JobView>(STATUS_QUERY)).status;
const atGate = (jobId: string) => waitFor(async () => (await status(jobId)) === 'awaiting_approval', 'the approval gate', { timeoutMs: 20_000 });
const failureOf = (jobId: string) =>
  env.client.workflow
    .getHandle(jobId)
    .result()
    .then(
      () => null,
      (e: unknown) => (e as WorkflowFailedError).cause,
    );

test('approved before publish: the decision is answered, repeated, refused when different or early; publish runs with its secrets', async () => {
  let release!: () => void;
  const validating = new Promise<void>((r) => (release = r));
  const spec = fakeSpec({
    validate: ['check'],
    secrets: { READ: 'read-token' },
    publish: ['push'],
    publishSecrets: { PUSH: 'push-token' },
    approval: { before: 'publish', timeoutSeconds: 600, onTimeout: 'reject' },
  });
  const { activities, record } = scripted(spec, () => validating);
  const jobs = new JobsClient(env.client);
  await withWorker('approve', activities, async (jobId, taskQueue) => {
    await start(jobId, taskQueue);
    await waitFor(async () => (await status(jobId)) === 'running', 'a running job', { timeoutMs: 20_000 });
    // Still validating: not at the gate yet.
    await expect(jobs.approve(jobId, { decision: 'approve' }, 'alice')).rejects.toEqual(expect.objectContaining({ reason: 'not_awaiting' }));
    release();
    await atGate(jobId);
    expect(record.steps).not.toContain('publish-0');

    const first = await jobs.approve(jobId, { decision: 'approve', comment: 'ship it' }, 'alice');
    expect(first).toEqual({ decision: 'approve', by: 'alice', comment: 'ship it', at: expect.any(String) });
    // The same decision again (a retry): the first answer.
    expect(await jobs.approve(jobId, { decision: 'approve' }, 'bob').catch((e: unknown) => e)).toEqual(first);
    const conflict = await jobs.approve(jobId, { decision: 'reject' }, 'bob').catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(ApprovalRefusedError);
    expect(conflict).toMatchObject({ reason: 'conflict', message: 'the job was already approved by alice: ship it' });

    expect(await env.client.workflow.getHandle(jobId).result()).toMatchObject({ status: 'succeeded' });
  });
  expect(record.gates).toEqual([{ before: 'publish', timeoutSeconds: 600, onTimeout: 'reject' }]);
  expect(record.approvals).toEqual([expect.objectContaining({ decision: 'approve', by: 'alice' })]);
  // Publish runs on a clean checkout of the commit (no loop: no patch), made after the gate.
  expect(record.steps).toEqual(['validate-0', `checkout:${spec.commit.slice(0, 7)}:commit`, 'publish-0']);
  // The write-scoped secret reaches the publish step only.
  expect(record.secrets['publish-0']).toEqual({ READ: 'read-token', PUSH: 'push-token' });
  expect(record.ended).toEqual([expect.objectContaining({ status: 'succeeded' })]);
});

test('rejected before validation: the job ends rejected and the gated steps never run', async () => {
  const spec = fakeSpec({ validate: ['check'], publish: ['push'], approval: { before: 'validate', timeoutSeconds: 600, onTimeout: 'approve' } });
  const { activities, record } = scripted(spec);
  const failure = await withWorker('reject', activities, async (jobId, taskQueue) => {
    await start(jobId, taskQueue);
    await atGate(jobId);
    await new JobsClient(env.client).approve(jobId, { decision: 'reject', comment: 'wrong approach' }, 'carol');
    return failureOf(jobId);
  });
  expect(failure).toBeInstanceOf(ApplicationFailure);
  expect(failure).toMatchObject({ type: FailureType.JobRejected, message: 'rejected by carol: wrong approach' });
  expect(record.steps).toEqual([]);
  expect(record.ended).toEqual([{ status: 'rejected', error: 'rejected by carol: wrong approach' }]);
});

test.each([
  ['reject', 'rejected', []],
  ['approve', 'succeeded', ['publish-0']],
] as const)('nobody decides in time: onTimeout %s ends the wait; the wait does not count against jobSeconds', async (onTimeout, end, published) => {
  // The job may take 2 s, and waits 4 s: counted, it would time out.
  const spec = fakeSpec({ publish: ['push'], timeouts: { stepSeconds: 60, jobSeconds: 2 }, approval: { before: 'publish', timeoutSeconds: 4, onTimeout } });
  const { activities, record } = scripted(spec);
  await withWorker(`timeout-${onTimeout}`, activities, async (jobId, taskQueue) => {
    await start(jobId, taskQueue);
    await failureOf(jobId);
  });
  expect(record.approvals).toEqual([{ decision: onTimeout, by: 'timeout', at: expect.any(String), comment: 'no decision within 4 s' }]);
  expect(record.steps.filter((s) => !s.startsWith('checkout:'))).toEqual(published);
  expect(record.ended).toEqual([expect.objectContaining({ status: end })]);
});

test('a cancel while waiting ends the job cancelled, and a decision after its end is refused', async () => {
  const spec = fakeSpec({ loop: { command: 'agent', maxIterations: 1 }, approval: { before: 'loop', timeoutSeconds: 600, onTimeout: 'approve' } });
  const { activities, record } = scripted(spec);
  const jobs = new JobsClient(env.client);
  const failure = await withWorker('cancel', activities, async (jobId, taskQueue) => {
    await start(jobId, taskQueue);
    await atGate(jobId);
    await env.client.workflow.getHandle(jobId).signal(CANCEL_SIGNAL, { reason: 'not needed' });
    const f = await failureOf(jobId);
    await expect(jobs.approve(jobId, { decision: 'approve' })).rejects.toThrow();
    return f;
  });
  expect(failure).toBeInstanceOf(CancelledFailure);
  expect(record.steps).toEqual([]);
  expect(record.approvals).toEqual([]);
  expect(record.ended).toEqual([expect.objectContaining({ status: 'cancelled' })]);
});

test('a decision no worker takes in time is pending; sent again with its update id once a worker is back, it is taken once', async () => {
  const spec = fakeSpec({ validate: ['check'], approval: { before: 'validate', timeoutSeconds: 600, onTimeout: 'reject' } });
  const { activities, record } = scripted(spec);
  const jobs = new JobsClient(env.client);
  const jobId = `approval-pending-${process.pid}`;
  await withWorker('pending', activities, async (id, taskQueue) => {
    await start(jobId, taskQueue);
    await atGate(jobId);
    return id;
  });
  // No worker now.
  const pending = await jobs.approve(jobId, { decision: 'approve' }, 'dave', { updateId: 'decision-1', timeoutMs: 1_500 }).catch((e: unknown) => e);
  expect(pending).toBeInstanceOf(DecisionPendingError);
  const view = await withWorker('pending', activities, async () => {
    const taken = await jobs.approve(jobId, { decision: 'approve' }, 'dave', { updateId: 'decision-1', timeoutMs: 30_000 });
    expect(taken).toMatchObject({ decision: 'approve', by: 'dave' });
    return env.client.workflow.getHandle(jobId).result();
  });
  expect(view.status).toBe('succeeded');
  expect(record.approvals).toEqual([expect.objectContaining({ decision: 'approve', by: 'dave' })]);
});
