/**
 * Idempotency-Key on POST /v1/jobs and cancel, against the real API, Temporal and
 * PostgreSQL: a retried request never starts a job twice, whether it comes after the
 * first answer or at the same time as the first request.
 */
import { createApp } from '../../api/app';
import { Authenticator, parseTokens } from '../../api/auth';
import { bodyHash, derivedJobId } from '../../api/idempotency';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { listen } from '../../testing/helpers';
import { startTestStack, type TestStack } from '../../testing/stack';

let stack: TestStack;
let repo: GitFixture;
const started = new Set<string>();

beforeAll(async () => {
  [stack, repo] = await Promise.all([startTestStack(), startGitFixture(1)]);
});
afterAll(async () => {
  // Every job ends before the stack goes, so that nothing is left on the engine.
  await Promise.allSettled([...started].map((id) => stack.waitForEnd(id)));
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
});

let n = 0;
const spec = (extra: Record<string, unknown> = {}) => ({ repo: repo.url, commit: repo.head, setup: ['true'], ...extra });

async function post(body: unknown, key?: string, url = stack.apiUrl, token = stack.authHeader.authorization!) {
  const res = await fetch(`${url}/v1/jobs`, {
    method: 'POST',
    headers: { authorization: token, 'content-type': 'application/json', ...(key === undefined ? {} : { 'idempotency-key': key }) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const parsed = (await res.json()) as { id?: string; code?: string; detail?: string };
  if (parsed.id) started.add(parsed.id);
  return { status: res.status, replayed: res.headers.get('idempotent-replayed'), body: parsed };
}

/** Rows and workflows of a job id: one each when it was started once. */
async function starts(id: string) {
  const { rows } = await stack.store.pool.query(`SELECT count(*)::int AS n FROM events WHERE job_id = $1 AND type = 'created'`, [id]);
  const runs = [];
  for await (const w of stack.client.workflow.list({ query: `WorkflowId = "${id}"` })) runs.push(w.runId);
  return { created: rows[0].n as number, runs: runs.length };
}

test('the same key and body again: the first answer, marked replayed, and one job', async () => {
  const key = `retry-${process.pid}-${n++}`;
  const first = await post(spec(), key);
  expect(first).toMatchObject({ status: 202, replayed: null });
  // The same body with its keys in another order is the same body.
  const again = await post({ setup: ['true'], commit: repo.head, repo: repo.url }, key);
  expect(again).toEqual({ status: 202, replayed: 'true', body: first.body });
  await stack.waitForEnd(first.body.id!);
  expect(await starts(first.body.id!)).toEqual({ created: 1, runs: 1 });
});

test('five requests with one key at the same time start one job, and all get its id', async () => {
  const key = `burst-${process.pid}-${n++}`;
  const answers = await Promise.all(Array.from({ length: 5 }, () => post(spec(), key)));
  expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 202, 202]);
  const ids = new Set(answers.map((a) => a.body.id));
  expect(ids.size).toBe(1);
  const [id] = [...ids];
  await stack.waitForEnd(id!);
  expect(await starts(id!)).toEqual({ created: 1, runs: 1 });
});

test('a first request that started its job and died before it answered: the retry waits for it a while, then gets the same job, started once', async () => {
  const key = `died-${process.pid}-${n++}`;
  const body = spec();
  // What the first request left: its claim of the key, unanswered, and the job it started.
  const { rows } = await stack.store.pool.query<{ created_at: Date }>(
    `INSERT INTO idempotency_keys (principal, route, key, body_hash) VALUES ('admin', 'POST /v1/jobs', $1, $2) RETURNING created_at`,
    [key, bodyHash(body)],
  );
  const id = derivedJobId('admin', key, rows[0]!.created_at);
  await stack.jobs.start(body, id, { principal: 'admin' });
  started.add(id);
  const retry = await post(body, key);
  expect(retry).toMatchObject({ status: 202, replayed: null, body: { id } });
  await stack.waitForEnd(id);
  expect(await starts(id)).toEqual({ created: 1, runs: 1 });
  // Answered now: the next retry is a replay.
  expect(await post(body, key)).toMatchObject({ status: 202, replayed: 'true', body: { id } });
}, 60_000);

test('the key with another body is a 422 naming it; a refused request does not use its key up', async () => {
  const key = `reuse-${process.pid}-${n++}`;
  const first = await post(spec(), key);
  expect(first.status).toBe(202);
  const other = await post(spec({ setup: ['false'] }), key);
  expect(other.status).toBe(422);
  expect(other.body).toMatchObject({ code: 'idempotency_key_reused', detail: expect.stringContaining(key) });

  const fresh = `fix-${process.pid}-${n++}`;
  expect((await post({ ...spec(), commit: 'main' }, fresh)).status).toBe(400);
  const corrected = await post(spec(), fresh);
  expect(corrected).toMatchObject({ status: 202, replayed: null });
});

test('keys are per principal: two tokens with one key start two jobs', async () => {
  const app = createApp({
    store: stack.store,
    jobs: stack.jobs,
    config: stack.config,
    auth: new Authenticator(parseTokens('alice:read+write:alice-token-0123456789,bob:read+write:bob-token-0123456789', 'test'), 1000),
  });
  const server = await listen(app);
  try {
    const key = `shared-${process.pid}-${n++}`;
    const a = await post(spec(), key, server.url, 'Bearer alice-token-0123456789');
    const b = await post(spec(), key, server.url, 'Bearer bob-token-0123456789');
    expect([a.status, b.status]).toEqual([202, 202]);
    expect(a.body.id).not.toBe(b.body.id);
    const views = await Promise.all([stack.waitForEnd(a.body.id!), stack.waitForEnd(b.body.id!)]);
    expect(views.map((v) => v.principal)).toEqual(['alice', 'bob']);
  } finally {
    await server.close();
  }
});

test('a key forgotten after 24 h starts a new job', async () => {
  const key = `old-${process.pid}-${n++}`;
  const first = await post(spec(), key);
  await stack.store.pool.query(`UPDATE idempotency_keys SET created_at = created_at - interval '25 hours' WHERE key = $1`, [key]);
  const later = await post(spec(), key);
  expect(later).toMatchObject({ status: 202, replayed: null });
  expect(later.body.id).not.toBe(first.body.id);
});

test('a cancel with a key: a retry gets the first answer, though the job has ended since', async () => {
  const { body } = await post(spec({ setup: ['sleep 30'] }));
  const id = body.id!;
  const key = `cancel-${process.pid}-${n++}`;
  const cancel = () =>
    fetch(`${stack.apiUrl}/v1/jobs/${id}/cancel`, {
      method: 'POST',
      headers: { ...stack.authHeader, 'content-type': 'application/json', 'idempotency-key': key },
      body: '{}',
    });
  const first = await cancel();
  expect(first.status).toBe(202);
  expect((await stack.waitForEnd(id)).status).toBe('cancelled');
  const retry = await cancel();
  expect([retry.status, retry.headers.get('idempotent-replayed'), await retry.json()]).toEqual([202, 'true', { id, status: 'cancelling' }]);
  // Without the key, the ended job is a 409.
  expect((await stack.api('POST', `/v1/jobs/${id}/cancel`, {})).status).toBe(409);
});

test.each([['has space'], ['x'.repeat(256)]])('a key that is not 1 to 255 printable characters (%#) is a 400, and nothing starts', async (key) => {
  const res = await post(spec(), key);
  expect(res).toMatchObject({ status: 400, body: { code: 'invalid_idempotency_key' } });
});
