import fs from 'node:fs';
import path from 'node:path';
import type { Approval } from '../../common/job';
import { type EmbeddedPg, startEmbeddedPostgres } from '../../stack/postgres';
import { type DevServer, startTemporalDevServer, temporalCliPath } from '../../stack/temporal';
import { freePort, TEST_DATA_DIR } from '../../testing/env';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { sleep, waitFor, waitForContainer } from '../../testing/helpers';
import { leftovers, startTestStack, TEST_TOKENS, type TestStack } from '../../testing/stack';

// This file has a Temporal server (with a state file) and a PostgreSQL of its own,
// so that it can restart them in the middle of a job.
const dir = path.join(TEST_DATA_DIR, `restarts-${process.pid}`);
let temporalPort: number;
let pgPort: number;
let temporal: DevServer;
let pg: EmbeddedPg;
let stack: TestStack;
let repo: GitFixture;

const startTemporal = () =>
  startTemporalDevServer({
    cli: temporalCliPath(path.resolve('data')),
    port: temporalPort,
    dbFile: path.join(dir, 'temporal.db'),
    logFile: path.join(dir, 'temporal.log'),
  });
const startPg = () => startEmbeddedPostgres({ dir: path.join(dir, 'postgres'), port: pgPort });
const PUSH_TOKEN = 'push-token-value-4711';
const stackEnv = () => ({ TEMPORAL_ADDRESS: temporal.address, DATABASE_URL: pg.url, DRAFTSMAN_SECRETS_DIR: path.join(dir, 'secrets') });

beforeAll(async () => {
  pgPort = await freePort();
  pg = await startPg();
  temporalPort = await freePort();
  temporal = await startTemporal();
  fs.mkdirSync(path.join(dir, 'secrets'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'secrets', 'push-token'), PUSH_TOKEN);
  [stack, repo] = await Promise.all([startTestStack(stackEnv()), startGitFixture(1)]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
  await Promise.allSettled([temporal?.stop(), pg?.stop()]);
});

const EXPECTED_TRAIL = [
  'created',
  // On the host of the worker that took it (one host here).
  'placed',
  'started',
  'step_started:clone-0',
  'step_finished:clone-0',
  'step_started:setup-0',
  'step_finished:setup-0',
  'step_started:validate-0',
  'step_finished:validate-0',
  'cleaned_up',
  'finished',
];

async function runThrough(restart: () => Promise<void>): Promise<void> {
  const { id } = await stack.jobs.start({
    repo: repo.url,
    commit: repo.head,
    setup: ['echo ran >> runs; sleep 5'],
    validate: ['test "$(wc -l < runs)" -eq 1'],
  });
  await waitForContainer(stack.runner, { jobId: id, kind: 'setup', index: 0 });
  await restart();
  const job = await stack.waitForEnd(id, 120_000);
  expect(job.status).toBe('succeeded');
  expect(job.steps.map((s) => `${s.kind}-${s.index}:${s.exitCode}`)).toEqual(['clone-0:0', 'setup-0:0', 'validate-0:0']);
  const events = await stack.store.events(id);
  const trail = events.map((e) => (e.data.kind ? `${e.type}:${e.data.kind}-${e.data.index}` : e.type));
  expect(trail).toEqual(EXPECTED_TRAIL);
  const { rows } = await stack.store.pool.query('SELECT count(*)::int AS n FROM steps WHERE job_id = $1', [id]);
  expect(rows[0].n).toBe(3);
  expect(await leftovers(stack.docker, id)).toEqual([]);
}

test('a Temporal server restarted (same state file) in the middle of a job: the job completes, the trail is whole', async () => {
  await runThrough(async () => {
    await temporal.stop();
    await sleep(1000);
    temporal = await startTemporal();
  });
});

test('a PostgreSQL restarted in the middle of a job: the job completes, no gap and no duplicate in the trail', async () => {
  await runThrough(async () => {
    await pg.stop();
    await sleep(3000);
    pg = await startPg();
  });
});

test('a job waiting for approval through a restart of every service (worker, API, Temporal, PostgreSQL) is approved through the new API, once, and publishes', async () => {
  // An endpoint for the gate's webhook (this API sends no deliveries: the row is the proof).
  await stack.store.pool.query(
    "INSERT INTO webhook_endpoints (id, url, events, secret, created_by) VALUES ($1, 'http://127.0.0.1:9/hook', '{job.awaiting_approval}', 'whsec_x', 'test')",
    [`wh-restarts-${process.pid}`],
  );
  const id = await stack.submit({
    repo: repo.url,
    commit: repo.head,
    validate: ['true'],
    publish: ['echo "publishing with $PUSH_TOKEN"'],
    publishSecrets: { PUSH_TOKEN: 'push-token' },
    approval: { before: 'publish', timeoutSeconds: 600 },
  });
  await waitFor(async () => (await stack.store.getJob(id))?.status === 'awaiting_approval', 'the approval gate', { timeoutMs: 60_000 });
  const reader = await stack.api(`POST`, `/v1/jobs/${id}/approval`, { decision: 'approve' }, { authorization: `Bearer ${TEST_TOKENS.reader}` });
  expect(reader.status).toBe(403);
  expect((await stack.api('POST', `/v1/jobs/${id}/approval`, { decision: 'maybe' })).status).toBe(400);

  await stack.stop();
  await Promise.all([temporal.stop(), pg.stop()]);
  await sleep(1000);
  [pg, temporal] = await Promise.all([startPg(), startTemporal()]);
  stack = await startTestStack(stackEnv());
  expect((await stack.store.getJob(id))?.status).toBe('awaiting_approval');

  const key = { 'idempotency-key': `approve-${id}` };
  const approved = await stack.api<Approval>('POST', `/v1/jobs/${id}/approval`, { decision: 'approve', comment: 'after the restarts' }, key);
  expect(approved.status).toBe(200);
  expect(approved.body).toEqual({ decision: 'approve', by: 'admin', comment: 'after the restarts', at: expect.any(String) });
  const retried = await stack.api<Approval>('POST', `/v1/jobs/${id}/approval`, { decision: 'approve', comment: 'after the restarts' }, key);
  expect(retried.body).toEqual(approved.body);
  const conflict = await stack.api<{ code: string }>('POST', `/v1/jobs/${id}/approval`, { decision: 'reject' });
  expect([conflict.status, conflict.body.code]).toEqual([409, 'approval_conflict']);

  const job = await stack.waitForEnd(id, 120_000);
  expect(job.status).toBe('succeeded');
  expect(job.steps.map((s) => `${s.kind}-${s.index}:${s.exitCode}`)).toEqual(['clone-0:0', 'validate-0:0', 'publish-0:0']);
  const events = await stack.store.events(id);
  expect(events.filter((e) => e.type === 'awaiting_approval' || e.type === 'approved').map((e) => [e.type, e.data.by ?? e.data.before])).toEqual([
    ['awaiting_approval', 'publish'],
    ['approved', 'admin'],
  ]);
  const logs = await stack.api<string>('GET', `/v1/jobs/${id}/logs?step=publish-0`);
  expect(JSON.stringify(logs.body)).toContain('publishing with');
  expect(JSON.stringify(logs.body)).not.toContain(PUSH_TOKEN);
  const { rows } = await stack.store.pool.query('SELECT event_type FROM webhook_deliveries WHERE job_id = $1', [id]);
  expect(rows).toEqual([{ event_type: 'job.awaiting_approval' }]);
  await stack.store.pool.query('DELETE FROM webhook_endpoints WHERE id = $1', [`wh-restarts-${process.pid}`]);
  expect(await leftovers(stack.docker, id)).toEqual([]);
}, 240_000);
