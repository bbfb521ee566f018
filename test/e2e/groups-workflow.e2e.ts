/**
 * The group workflow on the real Temporal server with scripted activities: a group's
 * attempts as child jobs that outlive it, its rule applied as they end.
 */
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Activities } from '../../activities';
import type { AttemptEnd, BestRule, GroupInput } from '../../common/group';
import type { AcceptedJob, StepOutcome } from '../../common/job';
import { GROUP_WORKFLOW_TYPE } from '../../common/names';
import { TEST_DATA_DIR } from '../../testing/env';
import { fakeSpec } from '../../testing/fake-spec';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await TestWorkflowEnvironment.createFromExistingServer({ address: process.env.DRAFTSMAN_TEST_TEMPORAL_ADDRESS! });
});
afterAll(async () => {
  await env?.teardown();
});

const outcome = (kind: StepOutcome['kind'], index: number, exitCode: number): StepOutcome => ({
  kind,
  index,
  status: exitCode === 0 ? 'succeeded' : 'failed',
  exitCode,
  oomKilled: false,
  startedAt: null,
  finishedAt: null,
});

/**
 * Activities of jobs whose loop step `loopStep` decides by job id (an outcome, or 'block':
 * a step that runs until it is cancelled), and of the group, recording what they were asked.
 */
function scripted(
  maxIterations: number,
  iterationsPerRun: number,
  loopStep: (jobId: string, index: number) => StepOutcome | 'block',
  patchBytes: (jobId: string) => number,
) {
  const ended = new Map<string, { status: string; error?: string }>();
  const group: { recorded: unknown[]; decided: string[]; ended: { winner: string | null; attempts: AttemptEnd[] }[] } = {
    recorded: [],
    decided: [],
    ended: [],
  };
  const activities: Partial<Activities> = {
    acceptJob: async (): Promise<AcceptedJob> => ({ spec: fakeSpec({ loop: { command: 'agent', maxIterations } }), iterationsPerRun }),
    placeJob: async () => null,
    startJob: async () => ({ started: true }) as const,
    runSteps: async (input) => (input.clone ? [outcome('clone', 0, 0)] : []),
    runStep: async (input) => {
      const step = loopStep(input.jobId, input.index);
      if (step !== 'block') return step;
      const ctx = Context.current();
      // Until the job's cancel reaches the activity (through its heartbeat), at most 60 s.
      for (let i = 0; i < 300; i++) {
        ctx.heartbeat();
        await ctx.sleep(200);
      }
      throw new Error('never cancelled');
    },
    capturePatch: async (input) => ({ bytes: patchBytes(input.jobId), truncated: false }),
    recordHostLost: async () => undefined,
    endJob: async (input) => {
      ended.set(input.jobId, { status: input.status, ...(input.error ? { error: input.error } : {}) });
    },
    recordGroup: async (input) => {
      group.recorded.push(input);
    },
    decideGroup: async (input) => {
      group.decided.push(input.winner);
    },
    endGroup: async (input) => {
      group.ended.push({ winner: input.winner, attempts: input.attempts });
    },
  };
  return { activities, ended, group };
}

function groupInput(name: string, taskQueue: string, count: number, best: BestRule): GroupInput {
  const groupId = `grp-${name}-${process.pid}`;
  return {
    groupId,
    parent: `parent-${name}-${process.pid}`,
    after: 'setup',
    best,
    principal: 'tester',
    taskQueue,
    members: Array.from({ length: count }, (_, i) => ({
      id: `${groupId}.${i + 1}`,
      variant: null,
      spec: { repo: 'https://example.com/r.git', commit: 'a'.repeat(40) },
    })),
  };
}

async function runGroup(input: GroupInput, activities: Partial<Activities>) {
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: input.taskQueue,
    workflowBundle: { codePath: path.join(TEST_DATA_DIR, 'workflow-bundle.js') },
    activities,
  });
  return worker.runUntil(async () => {
    const result = await env.client.workflow.execute(GROUP_WORKFLOW_TYPE, { taskQueue: input.taskQueue, workflowId: input.groupId, args: [input] });
    // The attempts are jobs of their own: each has ended, and its workflow with it.
    for (const m of input.members)
      await env.client.workflow
        .getHandle(m.id)
        .result()
        .catch(() => undefined);
    return result as { winner: string | null; attempts: AttemptEnd[] };
  });
}

test('first-validated: the first attempt to succeed wins and the others, still in their loop, are cancelled naming it', async () => {
  const taskQueue = `grp-${process.pid}-first`;
  const input = groupInput('first', taskQueue, 4, 'first-validated');
  const winner = input.members[2]!.id;
  const { activities, ended, group } = scripted(
    3,
    10,
    (jobId, index) => (jobId === winner ? outcome('loop', index, 0) : 'block'),
    () => 10,
  );
  const result = await runGroup(input, activities);
  expect(result.winner).toBe(winner);
  expect(group.decided).toEqual([winner]);
  expect(group.recorded).toEqual([
    expect.objectContaining({ groupId: input.groupId, members: input.members.map((m) => expect.objectContaining({ id: m.id, runId: expect.any(String) })) }),
  ]);
  expect(ended.get(winner)).toEqual({ status: 'succeeded' });
  for (const m of input.members.filter((x) => x.id !== winner)) {
    expect(ended.get(m.id)).toEqual({ status: 'cancelled', error: expect.stringContaining(`attempt ${winner} of group ${input.groupId} succeeded first`) });
  }
  expect(group.ended).toEqual([{ winner, attempts: expect.arrayContaining(input.members.map((m) => expect.objectContaining({ id: m.id }))) }]);
  expect(new Map(group.ended[0]!.attempts.map((a) => [a.id, a.status]))).toEqual(
    new Map(input.members.map((m) => [m.id, m.id === winner ? 'succeeded' : 'cancelled'])),
  );
});

test('smallest-patch: attempts whose loops continue as new are followed to their end; the smallest patch that succeeded wins, nothing is cancelled', async () => {
  const taskQueue = `grp-${process.pid}-small`;
  const input = groupInput('small', taskQueue, 3, 'smallest-patch');
  const [a, b, c] = input.members.map((m) => m.id);
  const { activities, ended, group } = scripted(
    3,
    1,
    // No loop converges; the spec has no validation, so every attempt succeeds, each with its own patch.
    (_jobId, index) => outcome('loop', index, 1),
    (jobId) => (jobId === a ? 300 : jobId === b ? 20 : 4000),
  );
  const result = await runGroup(input, activities);
  expect(result.winner).toBe(b);
  expect(group.decided).toEqual([]);
  expect([...ended.values()].map((e) => e.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
  expect(new Map(result.attempts.map((x) => [x.id, x.patchBytes]))).toEqual(
    new Map([
      [a, 300],
      [b, 20],
      [c, 4000],
    ]),
  );
});
