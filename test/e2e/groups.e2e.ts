/**
 * Groups and resume on the real stack: eight attempts from one kept setup, the first to
 * validate wins and the rest are cancelled, a retried call starts nothing new, the
 * group.ended webhook; a failed job resumed from its kept workspace runs only what follows.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { GroupView } from '../../common/group';
import type { JobView } from '../../common/job';
import { projectRoot } from '../../common/paths';
import { KeptStore } from '../../db/kept-store';
import { WebhookStore } from '../../db/webhook-store';
import { WebhookDispatcher } from '../../webhooks/dispatcher';
import { launchChromium } from '../../testing/browser';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { startTestStack, TEST_TOKENS, type TestStack } from '../../testing/stack';

let stack: TestStack;
let repo: GitFixture;
let receiver: http.Server;
let dispatcher: WebhookDispatcher;
const hooks: { type: string; data: Record<string, unknown> }[] = [];
/** The group of the first test and a failed job with a kept workspace, for the dashboard's test. */
let shownGroup = '';

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hooks.push(JSON.parse(body) as (typeof hooks)[number]);
      res.statusCode = 204;
      res.end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  const { port } = receiver.address() as AddressInfo;
  [stack, repo] = await Promise.all([startTestStack({ DRAFTSMAN_WEBHOOK_EXCEPTIONS: `127.0.0.1:${port}` }), startGitFixture(1)]);
  const hook = await stack.api<{ id: string }>('POST', '/v1/webhooks', { url: `http://127.0.0.1:${port}/hook`, events: ['group.ended'] });
  expect(hook.status).toBe(201);
  // The API process's dispatcher, for this file's endpoint alone.
  dispatcher = new WebhookDispatcher({
    store: new WebhookStore(stack.store.pool),
    exceptions: [{ host: '127.0.0.1', port }],
    retrySeconds: [1, 1, 1],
    endpoints: [hook.body.id],
    pollMs: 100,
    log: () => undefined,
  }).start();
});
afterAll(async () => {
  await dispatcher?.stop();
  const kept = stack && new KeptStore(stack.store.pool);
  for (const k of (await kept?.list({ kind: 'snapshot' })) ?? []) {
    if (!k.scope.startsWith(`repo=${repo?.url}`)) continue;
    await kept!.remove(k.id);
    await stack.runner.removeKept(k.id).catch(() => undefined);
  }
  await Promise.allSettled([stack?.stop(), repo?.stop(), new Promise((r) => receiver?.close(r))]);
});

type Trail = { events: { type: string; data: Record<string, unknown> }[] };
const events = async (id: string) => (await stack.api<Trail>('GET', `/v1/jobs/${id}/events`)).body.events;
const until = async <T>(what: string, get: () => Promise<T | null | undefined>, ms = 90_000): Promise<T> => {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
};

test('a group of 8 from one kept setup: one setup in all, each patch its own, the first to validate wins and the rest end cancelled within seconds; a retried call starts nothing', async () => {
  const parent = await stack.submit({
    repo: repo.url,
    commit: repo.head,
    setup: ['echo "prepared by $DRAFTSMAN_JOB_ID" > prepared.txt'],
    snapshot: { after: 'setup' },
    loop: { command: 'cat prepared.txt && echo "$DRAFTSMAN_JOB_ID" > attempt.txt', maxIterations: 1 },
    // Validation naps for NAP seconds: the variants make one attempt quick and the others slow.
    validate: ['sleep "${NAP:-0}"; grep -q "$DRAFTSMAN_JOB_ID" attempt.txt'],
  });
  expect((await stack.waitForEnd(parent)).status).toBe('succeeded');

  const body = {
    after: 'setup',
    count: 8,
    best: 'first-validated',
    // The winner naps 4 s: time for the others to finish their loops (and have a patch) first.
    variants: [{ env: { NAP: '40' } }, { env: { NAP: '40' } }, { env: { NAP: '4' } }, ...Array.from({ length: 5 }, () => ({ env: { NAP: '40' } }))],
  };
  const headers = { 'idempotency-key': `group-${process.pid}` };
  const started = await stack.api<{ id: string; parent: string; jobs: string[] }>('POST', `/v1/jobs/${parent}/forks`, body, headers);
  expect(started.status).toBe(202);
  expect(started.headers.get('location')).toBe(`/v1/groups/${started.body.id}`);
  expect(started.body.jobs).toHaveLength(8);
  const { id: groupId, jobs } = started.body;
  shownGroup = groupId;
  const quick = jobs[2]!;

  // The same call again with its key: the same answer, nothing new started.
  const again = await stack.api<typeof started.body>('POST', `/v1/jobs/${parent}/forks`, body, headers);
  expect([again.status, again.body]).toEqual([202, started.body]);

  const group = await until('the group to end', async () => {
    const g = (await stack.api<GroupView>('GET', `/v1/groups/${groupId}`)).body;
    return g.endedAt ? g : null;
  });
  expect(group).toMatchObject({ id: groupId, parent, after: 'setup', best: 'first-validated', principal: 'admin', winner: quick });
  const views = new Map<string, JobView>();
  for (const id of jobs) views.set(id, (await stack.store.getJob(id))!);
  expect(group.jobs.map((j) => [j.id, j.status, j.variant])).toEqual(jobs.map((id, i) => [id, id === quick ? 'succeeded' : 'cancelled', i]));
  expect(group.jobs.find((j) => j.id === quick)).toMatchObject({ validated: true, patch: { bytes: expect.any(Number) }, durationMs: expect.any(Number) });
  const won = Date.parse(views.get(quick)!.finishedAt!);
  const after: number[] = [];
  for (const id of jobs.filter((j) => j !== quick)) {
    const view = views.get(id)!;
    expect(view.error).toContain(`attempt ${quick} of group ${groupId} succeeded first`);
    after.push(Date.parse(view.finishedAt!) - won);
    expect(view.group).toBe(groupId);
  }
  // Cancelled within seconds of the winner, long before their 40 s nap would have ended.
  expect(Math.max(...after)).toBeLessThan(10_000);
  console.log(`group of 8: the 7 others ended ${Math.min(...after)}-${Math.max(...after)} ms after the winner`);

  // One setup in all: the parent's. Every attempt restored its workspace and ran no clone or setup.
  const setupSteps = async (id: string) => (await events(id)).filter((e) => e.type === 'step_finished' && ['clone', 'setup'].includes(String(e.data.kind)));
  expect((await setupSteps(parent)).map((e) => e.data.kind)).toEqual(['clone', 'setup']);
  for (const id of jobs) {
    expect(await setupSteps(id)).toEqual([]);
    expect((await events(id)).find((e) => e.type === 'setup_restored')?.data).toMatchObject({ from: parent });
    // Its own steps only; one cancelled before its validation started has the loop alone.
    expect(['loop', 'validate']).toEqual(expect.arrayContaining(views.get(id)!.steps.map((s) => s.kind)));
  }
  // Each attempt's patch is its own (every loop wrote its own id): the winner's, and every other that got as far.
  const patched = group.jobs.filter((j) => j.patch).map((j) => j.id);
  expect(patched).toContain(quick);
  expect(patched.length).toBeGreaterThanOrEqual(4);
  for (const id of patched) {
    const patch = await (await fetch(`${stack.apiUrl}/v1/jobs/${id}/patch`, { headers: stack.authHeader })).text();
    expect(patch).toContain(`+${id}`);
    expect(jobs.filter((other) => other !== id && patch.includes(other))).toEqual([]);
  }
  // Started once: the parent's trail names the group once, and its end.
  const trail = await events(parent);
  expect(trail.filter((e) => e.type === 'forked').map((e) => e.data)).toEqual([expect.objectContaining({ groupId, jobs, best: 'first-validated' })]);
  expect(trail.find((e) => e.type === 'group_won')?.data).toMatchObject({ groupId, winner: quick });
  expect(trail.find((e) => e.type === 'group_ended')?.data).toMatchObject({ groupId, winner: quick });
  // The webhook: group.ended, once, naming the group and its winner.
  await until('the group.ended webhook', async () => hooks.some((h) => h.data.groupId === groupId));
  expect(hooks.filter((h) => h.data.groupId === groupId)).toEqual([
    expect.objectContaining({ type: 'group.ended', data: expect.objectContaining({ groupId, winner: quick, jobId: parent }) }),
  ]);
});

test('a fork call is refused whole: a point the parent did not keep, a bad variant, a count past the ceiling, a group that does not exist', async () => {
  const parent = await stack.submit({
    repo: repo.url,
    commit: repo.head,
    setup: ['true'],
    snapshot: { after: 'setup' },
    loop: { command: 'true', maxIterations: 1 },
  });
  expect((await stack.waitForEnd(parent)).status).toBe('succeeded');
  const refused = async (body: unknown) => {
    const res = await stack.api<{ code: string; field?: string }>('POST', `/v1/jobs/${parent}/forks`, body);
    return [res.status, res.body.code, res.body.field];
  };
  expect(await refused({ after: 'loop-1', count: 2 })).toEqual([409, 'not_kept', 'after']);
  expect(await refused({ after: 'setup', count: 33 })).toEqual([400, 'invalid_body', 'count']);
  expect(await refused({ after: 'setup', count: 1, variants: [{}, {}] })).toEqual([400, 'invalid_body', 'count']);
  expect(await refused({ after: 'setup', variants: [{}, { loop: { maxIterations: 100000 } }] })).toEqual([
    400,
    'invalid_body',
    'variants.1.loop.maxIterations',
  ]);
  expect(await refused({ after: 'setup', variants: [{ env: { DRAFTSMAN_X: '1' } }] })).toEqual([
    400,
    'invalid_body',
    expect.stringMatching(/^variants\.0\.env/),
  ]);
  // The control: the same parent forks where it kept its workspace.
  const ok = await stack.api<{ id: string; jobs: string[] }>('POST', `/v1/jobs/${parent}/forks`, { after: 'setup', count: 1 });
  expect(ok.status).toBe(202);
  expect((await stack.waitForEnd(ok.body.jobs[0]!)).status).toBe('succeeded');
  // Nothing of the refused calls was started: the parent's trail names one group.
  expect((await events(parent)).filter((e) => e.type === 'forked')).toHaveLength(1);
  expect((await stack.api('GET', '/v1/groups/grp-00000000000000000000000000000000')).status).toBe(404);
  expect((await stack.api('POST', '/v1/jobs/no-such-job/forks', { after: 'setup', count: 1 })).status).toBe(404);
});

test('a job whose validation fails is resumed from its kept setup: no clone or setup, only the phases after, and it succeeds with the fix', async () => {
  const failed = await stack.submit({
    repo: repo.url,
    commit: repo.head,
    setup: ['echo prepared > prepared.txt'],
    snapshot: { after: 'setup', when: 'failed' },
    loop: { command: 'cat prepared.txt > out.txt', maxIterations: 1 },
    validate: ['grep -q fixed out.txt'],
  });
  const failedEnd = await stack.waitForEnd(failed);
  expect(failedEnd.status).toBe('failed');

  const res = await stack.api<{ id: string; resumeOf: string; from: string }>('POST', `/v1/jobs/${failed}/resume`, {
    loop: { command: 'cat prepared.txt > out.txt && echo fixed >> out.txt' },
  });
  expect(res.status).toBe(202);
  expect(res.body).toMatchObject({ resumeOf: failed, from: 'setup' });
  const resumed = await stack.waitForEnd(res.body.id);
  expect(resumed.status).toBe('succeeded');
  expect(resumed.steps.map((s) => s.kind)).toEqual(['loop', 'validate']);
  // The audit trail names both jobs.
  const trail = await events(res.body.id);
  expect(trail.find((e) => e.type === 'created')?.data).toMatchObject({ resumeOf: failed, from: 'setup' });
  expect(trail.find((e) => e.type === 'setup_restored')?.data).toMatchObject({ from: failed });
  expect((await events(failed)).find((e) => e.type === 'resumed')?.data).toMatchObject({ jobId: res.body.id, from: 'setup' });

  // A job that succeeded is not resumed, and one that kept nothing has nothing to resume from.
  const refusedSucceeded = await stack.api<{ code: string }>('POST', `/v1/jobs/${res.body.id}/resume`, {});
  expect([refusedSucceeded.status, refusedSucceeded.body.code]).toEqual([409, 'job_not_resumable']);
  const bare = await stack.submit({ repo: repo.url, commit: repo.head, validate: ['false'] });
  expect((await stack.waitForEnd(bare)).status).toBe('failed');
  const refusedBare = await stack.api<{ code: string }>('POST', `/v1/jobs/${bare}/resume`, {});
  expect([refusedBare.status, refusedBare.body.code]).toEqual([409, 'not_kept']);
});

test('resumed after a kept loop step, the loop goes on at the next iteration; a workspace kept for a resume is given up when the job succeeds', async () => {
  const failed = await stack.submit({
    repo: repo.url,
    commit: repo.head,
    loop: { command: 'echo "iteration" >> progress', until: 'test $(wc -l < progress) -ge 9', maxIterations: 2 },
    snapshot: { after: 'loop-1', when: 'failed' },
    validate: ['test $(wc -l < progress) -ge 3'],
  });
  expect((await stack.waitForEnd(failed)).status).toBe('failed');
  const res = await stack.api<{ id: string; from: string }>('POST', `/v1/jobs/${failed}/resume`, { loop: { maxIterations: 3 } });
  expect([res.status, res.body.from]).toEqual([202, 'loop-1']);
  const resumed = await stack.waitForEnd(res.body.id);
  expect(resumed.status).toBe('succeeded');
  // Iterations 2 and 3 on the workspace of iteration 1: three lines in all.
  expect(resumed.steps.filter((s) => s.kind === 'loop').map((s) => s.index)).toEqual([2, 3]);

  // snapshot.when: failed on a job that succeeds: kept while it ran, then given up.
  // (A setup of its own: one kept by an earlier test with the same setup would be restored instead.)
  const fine = await stack.submit({ repo: repo.url, commit: repo.head, setup: ['echo kept-for-a-resume'], snapshot: { after: 'setup', when: 'failed' } });
  expect((await stack.waitForEnd(fine)).status).toBe('succeeded');
  const trail = await events(fine);
  expect(trail.find((e) => e.type === 'snapshot_saved')).toBeDefined();
  expect(trail.find((e) => e.type === 'snapshot_forgotten')?.data).toMatchObject({ workspaces: 1 });
  expect(await new KeptStore(stack.store.pool).pointsKeptBy(fine, `repo=${repo.url} principal=admin`)).toEqual([]);
});

test("the dashboard's group page shows the attempts, the winner and their diffs side by side; a failed job's page resumes it", async () => {
  expect(shownGroup).not.toBe('');
  const failed = await stack.submit({
    repo: repo.url,
    commit: repo.head,
    setup: ['echo page > page.txt'],
    snapshot: { after: 'setup', when: 'failed' },
    validate: ['false'],
  });
  expect((await stack.waitForEnd(failed)).status).toBe('failed');
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${stack.apiUrl}/login?next=${encodeURIComponent(`/ui/groups/${shownGroup}`)}`);
    await page.getByLabel('API token').fill(TEST_TOKENS.admin);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: /^Group / }).waitFor();
    const rows = page.locator('table.attempts tbody tr');
    await rows.nth(7).waitFor();
    expect(await rows.count()).toBe(8);
    expect(await page.locator('table.attempts tr.winner').count()).toBe(1);
    expect(await page.locator('table.attempts tr.winner').textContent()).toContain('(winner)');
    // Every attempt's diff, side by side, each naming its own attempt's file content.
    const diffs = page.locator('.side-by-side .attempt-diff');
    await diffs.nth(7).waitFor();
    expect(await diffs.count()).toBe(8);
    fs.mkdirSync(path.join(projectRoot(), 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: path.join(projectRoot(), 'test-artifacts', 'group.png'), fullPage: true });

    // The failed job's page: Resume starts the job again from its kept workspace and shows it.
    await page.goto(`${stack.apiUrl}/ui/jobs/${failed}`);
    await page.getByRole('button', { name: 'Resume from its kept workspace' }).click();
    await page.waitForURL((u) => u.pathname.startsWith('/ui/jobs/') && !u.pathname.endsWith(failed));
    const resumed = decodeURIComponent(new URL(page.url()).pathname.split('/').pop()!);
    expect((await events(failed)).find((e) => e.type === 'resumed')?.data).toMatchObject({ jobId: resumed, from: 'setup' });
    expect(problems).toEqual([]);
  } finally {
    await browser.close();
  }
  // The resumed job (validation still fails) ends; nothing of it is left running.
  await stack.waitForEnd((await events(failed)).find((e) => e.type === 'resumed')!.data.jobId as string);
});
