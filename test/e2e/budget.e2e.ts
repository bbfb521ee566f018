/**
 * Budgets on the real stack: a step that burns CPU past the job's cpuSeconds is stopped
 * within 2 s of crossing it and the job fails budget_exceeded; wall time and egress
 * likewise; a job within its budget is untouched; the operator's ceiling refuses a spec
 * over it and gives its limits to a spec without one.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JobView } from '../../common/job';
import { GIT_HOST, type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { gitException, startTestStack, type TestStack } from '../../testing/stack';

const N = 3_000_000;
let stack: TestStack;
let repo: GitFixture;
let server: http.Server;
let target = '';

beforeAll(async () => {
  server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-length': N });
    res.end(Buffer.alloc(N, 0x62));
  });
  await new Promise<void>((r) => server.listen(0, GIT_HOST, () => r()));
  target = `${GIT_HOST}:${(server.address() as AddressInfo).port}`;
  [stack, repo] = await Promise.all([
    startTestStack({ DRAFTSMAN_EGRESS_EXCEPTIONS: `${gitException()},${target}`, DRAFTSMAN_BUDGET_CEILINGS: 'admin=cpuSeconds:100' }),
    startGitFixture(1),
  ]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repo?.stop(), new Promise((r) => server?.close(r))]);
});

type Trail = { events: { type: string; data: Record<string, unknown> }[] };
const eventOf = async (id: string, type: string) => (await stack.api<Trail>('GET', `/v1/jobs/${id}/events`)).body.events.find((e) => e.type === type)?.data;
/** Burns until its own CPU time (user and system) reaches `seconds`, then exits 0. */
const burnTo = (seconds: number) => `perl -e 'while ((times)[0] + (times)[1] < ${seconds}) {}'`;
const view = async (id: string) => (await stack.api<JobView>('GET', `/v1/jobs/${id}`)).body;

test('a step that burns CPU past cpuSeconds: 3 is stopped within 2 s of crossing it; the job fails budget_exceeded, naming it; a job within its budget is not stopped', async () => {
  const id = await stack.submit({ repo: repo.url, commit: repo.head, setup: [`perl -e 'while (1) {}'`], budget: { cpuSeconds: 3 } });
  const end = await stack.waitForEnd(id, 60_000);
  expect(end.status).toBe('failed');
  expect(end.error).toMatch(/^budget_exceeded: cpuSeconds [\d.]+ is past the job's budget of 3 \(step setup-0 was stopped\)$/);
  const step = (await view(id)).steps.find((s) => s.kind === 'setup')!;
  expect(step).toMatchObject({ status: 'failed', reason: 'budget_exceeded' });
  // One busy thread uses at most a CPU-second a second: stopped within 2 s of crossing 3 means at most 5 (the clone's share aside).
  expect(step.cpuSeconds).toBeGreaterThanOrEqual(2.5);
  expect(step.cpuSeconds).toBeLessThanOrEqual(5);
  expect(await eventOf(id, 'budget_exceeded')).toMatchObject({ step: 'setup-0', budget: 'cpuSeconds', limit: 3, onExceed: 'fail' });
  console.log(`budget: cpuSeconds 3, the step was stopped having used ${step.cpuSeconds} CPU-s`);

  // The control: the same burn within a larger budget runs to its end.
  const within = await stack.submit({
    repo: repo.url,
    commit: repo.head,
    setup: [`perl -e 'while ((times)[0] + (times)[1] < 1) {}'`],
    budget: { cpuSeconds: 10 },
  });
  expect((await stack.waitForEnd(within, 60_000)).status).toBe('succeeded');
  expect(await eventOf(within, 'budget_exceeded')).toBeUndefined();
});

test('wall time and egress budgets stop the step past them', async () => {
  const slow = await stack.submit({ repo: repo.url, commit: repo.head, setup: ['sleep 30'], budget: { wallSeconds: 2 } });
  const slowEnd = await stack.waitForEnd(slow, 60_000);
  expect(slowEnd.status).toBe('failed');
  expect(slowEnd.error).toContain('budget_exceeded: wallSeconds');
  expect(slowEnd.steps.find((s) => s.kind === 'setup')!.durationMs).toBeLessThan(10_000);

  const download = `perl -MHTTP::Tiny -e 'HTTP::Tiny->new->get("http://${target}/x")' && sleep 30`;
  const big = await stack.submit({
    repo: repo.url,
    commit: repo.head,
    egress: { allow: [gitException(), target] },
    setup: [download],
    budget: { egressBytes: 1_000_000 },
  });
  const bigEnd = await stack.waitForEnd(big, 60_000);
  expect(bigEnd.status).toBe('failed');
  expect(bigEnd.error).toContain('budget_exceeded: egressBytes');
  expect(await eventOf(big, 'budget_exceeded')).toMatchObject({ budget: 'egressBytes', limit: 1_000_000, used: expect.any(Number) });
});

test("the operator's ceiling: a spec over it is a 400 naming the field; a spec without a budget gets the ceiling's", async () => {
  const over = await stack.api<{ field: string; detail: string }>('POST', '/v1/jobs', { repo: repo.url, commit: repo.head, budget: { cpuSeconds: 500 } });
  expect([over.status, over.body.field]).toEqual([400, 'budget.cpuSeconds']);
  expect(over.body.detail).toContain('over the ceiling of 100 for admin');
  const bad = await stack.api<{ field: string }>('POST', '/v1/jobs', { repo: repo.url, commit: repo.head, budget: { onExceed: 'fail' } });
  expect([bad.status, bad.body.field]).toEqual([400, 'budget']);
  const plain = await stack.submit({ repo: repo.url, commit: repo.head, setup: ['true'] });
  expect((await stack.waitForEnd(plain)).status).toBe('succeeded');
  expect((await stack.store.getSpec(plain))?.budget).toEqual({ onExceed: 'fail', cpuSeconds: 100 });
});

const statusOf = async (id: string) => (await view(id)).status;
const until = async (what: string, ok: () => Promise<boolean>, ms = 60_000) => {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
};
/** The engine's own word on whether the step's container is frozen. */
const frozen = async (id: string) =>
  (await stack.docker.listContainers({ all: true, filters: { label: [`org.draftsman.job=${id}`, 'org.draftsman.step.kind=setup'] } }))[0]?.State === 'paused';

test('onExceed approval: the step is frozen and the job waits; a raise lets it finish; a rejection ends it rejected', async () => {
  const spec = { repo: repo.url, commit: repo.head, setup: [burnTo(4)], budget: { cpuSeconds: 2, onExceed: 'approval' } };
  const raised = await stack.submit(spec);
  await until('the job to wait at its budget', async () => (await statusOf(raised)) === 'awaiting_approval');
  expect(await frozen(raised)).toBe(true);
  const gate = await eventOf(raised, 'awaiting_approval');
  expect(gate).toMatchObject({ reason: 'budget_exceeded', step: 'setup-0', budget: 'cpuSeconds', limit: 2, onTimeout: 'reject' });
  // Frozen: it uses no CPU while it waits.
  const before = (await stack.runner.usage({ jobId: raised, kind: 'setup', index: 0 }))!.cpuSeconds;
  await new Promise((r) => setTimeout(r, 1000));
  expect((await stack.runner.usage({ jobId: raised, kind: 'setup', index: 0 }))!.cpuSeconds - before).toBeLessThan(0.05);
  const approved = await stack.api<{ decision: string; budget?: Record<string, number> }>('POST', `/v1/jobs/${raised}/approval`, {
    decision: 'approve',
    budget: { cpuSeconds: 10 },
  });
  expect([approved.status, approved.body.budget]).toEqual([200, { cpuSeconds: 10 }]);
  const end = await stack.waitForEnd(raised, 60_000);
  expect(end.status).toBe('succeeded');
  const step = (await view(raised)).steps.find((s) => s.kind === 'setup')!;
  expect(step.status).toBe('succeeded');
  expect(step.cpuSeconds).toBeGreaterThanOrEqual(3.9);
  // One start of its command: the same container, frozen and thawed.
  expect((await view(raised)).steps.filter((s) => s.kind === 'setup')).toHaveLength(1);

  const rejected = await stack.submit(spec);
  await until('the second job to wait at its budget', async () => (await statusOf(rejected)) === 'awaiting_approval');
  const no = await stack.api('POST', `/v1/jobs/${rejected}/approval`, { decision: 'reject', comment: 'too costly' });
  expect(no.status).toBe(200);
  const rejectedEnd = await stack.waitForEnd(rejected, 60_000);
  expect(rejectedEnd.status).toBe('rejected');
  expect(await stack.runner.listJobResources(rejected)).toEqual({ steps: [], holders: [], workspaces: [] });
});
