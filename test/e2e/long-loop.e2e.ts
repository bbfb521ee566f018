import type { JobView } from '../../common/job';
import { SEARCH_ATTRIBUTES } from '../../common/names';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { waitFor } from '../../testing/helpers';
import { leftovers, startTestStack, type TestStack } from '../../testing/stack';

// A loop longer than the worker's iterations per run continues as new runs of the
// same workflow id. Four iterations a run here, so that a ten-iteration loop takes
// three runs.
const PER_RUN = 4;
let stack: TestStack;
let repo: GitFixture;

beforeAll(async () => {
  [stack, repo] = await Promise.all([startTestStack({ DRAFTSMAN_LOOP_ITERATIONS_PER_RUN: String(PER_RUN) }), startGitFixture(1)]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
});

/** Every run of the job's workflow, oldest first, with the length of its history. */
async function runs(id: string): Promise<{ runId: string; events: number; status: string }[]> {
  const found: { runId: string; status: string; startTime: Date }[] = [];
  for await (const w of stack.client.workflow.list({ query: `WorkflowId = "${id}"` })) {
    found.push({ runId: w.runId, status: w.status.name, startTime: w.startTime });
  }
  found.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
  return Promise.all(
    found.map(async (r) => ({
      runId: r.runId,
      status: r.status,
      events: (await stack.client.workflow.getHandle(id, r.runId).fetchHistory()).events?.length ?? 0,
    })),
  );
}

const loopSteps = (job: JobView) => job.steps.filter((s) => s.kind === 'loop' || s.kind === 'until').map((s) => `${s.kind}-${s.index}`);

test('a ten-iteration loop runs in three workflow runs, each step once, with its state and the result intact', async () => {
  const { id } = await stack.jobs.start({
    repo: repo.url,
    commit: repo.head,
    setup: ['echo 0 > counter'],
    loop: { command: 'echo $(( $(cat counter) + 1 )) > counter', until: 'test "$(cat counter)" -ge 10', maxIterations: 50 },
    validate: ['test "$(cat counter)" = 10'],
  });
  const job = await stack.waitForEnd(id);
  expect([job.status, job.error]).toEqual(['succeeded', undefined]);
  expect(job.loop).toEqual({ iterations: 10, converged: true });
  const expected = Array.from({ length: 10 }, (_, i) => [`loop-${i + 1}`, `until-${i + 1}`]).flat();
  expect(loopSteps(job)).toEqual(expected);
  expect(job.steps.map((s) => s.kind)).toEqual(['clone', 'setup', ...expected.map((s) => s.split('-')[0]), 'validate']);
  // Setup and clone ran once: the later runs picked up the workspace as it was.
  expect(job.steps.filter((s) => s.kind === 'clone' || s.kind === 'setup')).toHaveLength(2);

  const chain = await runs(id);
  expect(chain.map((r) => r.status)).toEqual(['CONTINUED_AS_NEW', 'CONTINUED_AS_NEW', 'COMPLETED']);
  // Every run is found by the job's repo in the Web UI's search.
  const byRepo = async () => {
    let n = 0;
    for await (const _ of stack.client.workflow.list({ query: `WorkflowId = "${id}" AND ${SEARCH_ATTRIBUTES.repo.name} = "${repo.url}"` })) n++;
    return n;
  };
  await waitFor(async () => (await byRepo()) === 3, 'all three runs searchable by repo', { timeoutMs: 10_000, everyMs: 200 });
  // Each run's history is bounded by the iterations it ran, not by the whole loop.
  const longest = Math.max(...chain.map((r) => r.events));
  expect(longest).toBeLessThan(PER_RUN * 2 * 12 + 60);

  // The last run's result is the job's live view: it carries the loop steps of the
  // run before it and its own, and counts those it left out (the audit trail has all).
  const result = (await stack.client.workflow.getHandle(id).result()) as JobView;
  expect(result).toMatchObject({ status: 'succeeded', loop: { iterations: 10, converged: true }, stepsOmitted: 8 });
  expect(loopSteps(result)).toEqual(expected.slice(8));
  expect(result.steps.map((s) => s.kind).filter((k) => k !== 'loop' && k !== 'until')).toEqual(['clone', 'setup', 'validate']);
  expect(await leftovers(stack.docker, id)).toEqual([]);
}, 180_000);

test('a cancel in a later run stops the step and cleans up; the deadline carries over between runs', async () => {
  // Cancelled during the second run.
  const { id } = await stack.jobs.start({
    repo: repo.url,
    commit: repo.head,
    loop: { command: 'sleep 0.2', until: 'false', maxIterations: 40 },
  });
  await waitFor(async () => (await runs(id)).length >= 2, 'the second run', { timeoutMs: 60_000, everyMs: 200 });
  const cancel = await stack.api('POST', `/v1/jobs/${id}/cancel`, { reason: 'enough' });
  expect(cancel.status).toBe(202);
  const cancelled = await stack.waitForEnd(id);
  expect(cancelled.status).toBe('cancelled');
  expect(cancelled.loop!.iterations).toBeGreaterThan(PER_RUN);
  expect(cancelled.loop!.iterations).toBeLessThan(40);
  expect(await leftovers(stack.docker, id)).toEqual([]);

  // A job limit of 12 s over runs of a few seconds each (four iterations of two steps
  // that do nothing; the limit came in the fifth run here, while with steps of 0.5 s
  // and a limit of 8 s a loaded CI machine reached it within the first): were the timer
  // to restart with every run, no run would ever reach it.
  const { id: slow } = await stack.jobs.start({
    repo: repo.url,
    commit: repo.head,
    loop: { command: 'true', until: 'false', maxIterations: 400 },
    timeouts: { jobSeconds: 12 },
  });
  const timedOut = await stack.waitForEnd(slow);
  expect(timedOut.status).toBe('timed_out');
  expect(timedOut.error).toMatch(/job exceeded its 12 s time limit/);
  expect((await runs(slow)).length).toBeGreaterThanOrEqual(2);
  expect(await leftovers(stack.docker, slow)).toEqual([]);
}, 180_000);
