import { createApp } from '../../api/app';
import { Authenticator, parseTokens } from '../../api/auth';
import { listen } from '../../testing/helpers';
import { startTestStack, TEST_TOKENS, type TestStack } from '../../testing/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

// Every refused spec names this host, so the check at the end can look for rows of it.
const commit = 'c'.repeat(40);
const valid = { repo: 'https://bad-input.invalid/repo.git', commit };
const deep = (n: number): unknown => (n === 0 ? 'x' : { a: deep(n - 1) });

/** RFC 9457 problem details, as every refusal is answered. */
interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  code: string;
  field?: string;
}

type Case = [name: string, body: unknown, status: number, code: string, field: string];

const specCases: Case[] = [
  ['branch name as commit', { ...valid, commit: 'main' }, 400, 'invalid_spec', 'commit'],
  ['tag name as commit', { ...valid, commit: 'v1.2.3' }, 400, 'invalid_spec', 'commit'],
  ['short commit', { ...valid, commit: 'abc123' }, 400, 'invalid_spec', 'commit'],
  ['commit starting with -', { ...valid, commit: `-${'a'.repeat(39)}` }, 400, 'invalid_spec', 'commit'],
  ['commit as a number', { ...valid, commit: 1234 }, 400, 'invalid_spec', 'commit'],
  ['missing commit', { repo: valid.repo }, 400, 'invalid_spec', 'commit'],
  ['missing repo', { commit }, 400, 'invalid_spec', 'repo'],
  ['repo as an array', { ...valid, repo: [valid.repo] }, 400, 'invalid_spec', 'repo'],
  ['file:// repo', { ...valid, repo: 'file:///etc' }, 400, 'invalid_spec', 'repo'],
  ['git:// repo (cannot pass the egress proxy)', { ...valid, repo: 'git://bad-input.invalid/r.git' }, 400, 'invalid_spec', 'repo'],
  ['scp-like ssh repo', { ...valid, repo: 'git@bad-input.invalid:r.git' }, 400, 'invalid_spec', 'repo'],
  ['http:// repo with a token', { ...valid, repo: 'http://bad-input.invalid/r.git', gitTokenSecret: 'tok' }, 400, 'invalid_spec', 'gitTokenSecret'],
  ['egress entry that is a URL', { ...valid, egress: { allow: ['https://bad-input.invalid'] } }, 400, 'invalid_spec', 'egress.allow.0'],
  ['ext:: transport helper', { ...valid, repo: 'ext::sh -c id' }, 400, 'invalid_spec', 'repo'],
  ['fd:: transport helper', { ...valid, repo: 'fd::3' }, 400, 'invalid_spec', 'repo'],
  ['repo that is an option', { ...valid, repo: '--upload-pack=touch /tmp/x' }, 400, 'invalid_spec', 'repo'],
  ['ssh host that is an option', { ...valid, repo: 'ssh://-oProxyCommand=id/x' }, 400, 'invalid_spec', 'repo'],
  ['credentials in the URL', { ...valid, repo: 'https://user:pw@bad-input.invalid/r.git' }, 400, 'invalid_spec', 'repo'],
  ['token as URL user', { ...valid, repo: 'https://ghp_token@bad-input.invalid/r.git' }, 400, 'invalid_spec', 'repo'],
  ['newline in the URL', { ...valid, repo: 'https://bad-input.invalid/r\n.git' }, 400, 'invalid_spec', 'repo'],
  ['NUL in the URL', { ...valid, repo: 'https://bad-input.invalid/r\u0000.git' }, 400, 'invalid_spec', 'repo'],
  ['bidi override in the URL', { ...valid, repo: 'https://bad-input.invalid/\u202etig.r' }, 400, 'invalid_spec', 'repo'],
  ['zero-width space in the URL', { ...valid, repo: 'https://bad\u200b-input.invalid/r.git' }, 400, 'invalid_spec', 'repo'],
  ['Cyrillic look-alike host', { ...valid, repo: 'https://b\u0430d-input.invalid/r.git' }, 400, 'invalid_spec', 'repo'],
  ['overlong URL', { ...valid, repo: `https://bad-input.invalid/${'a'.repeat(3000)}` }, 400, 'invalid_spec', 'repo'],
  ['maxIterations 0', { ...valid, loop: { command: 'x', maxIterations: 0 } }, 400, 'invalid_spec', 'loop.maxIterations'],
  ['maxIterations 1001', { ...valid, loop: { command: 'x', maxIterations: 1001 } }, 400, 'invalid_spec', 'loop.maxIterations'],
  ['maxIterations as a string', { ...valid, loop: { command: 'x', maxIterations: '5' } }, 400, 'invalid_spec', 'loop.maxIterations'],
  ['maxIterations NaN-ish', { ...valid, loop: { command: 'x', maxIterations: 2.5 } }, 400, 'invalid_spec', 'loop.maxIterations'],
  ['loop without command', { ...valid, loop: { maxIterations: 2 } }, 400, 'invalid_spec', 'loop.command'],
  ['unknown top-level field', { ...valid, privileged: true }, 400, 'invalid_spec', 'privileged'],
  ['host volumes', { ...valid, volumes: ['/var/run/docker.sock:/var/run/docker.sock'] }, 400, 'invalid_spec', 'volumes'],
  ['network from the spec', { ...valid, network: 'host' }, 400, 'invalid_spec', 'network'],
  ['unknown nested field', { ...valid, timeouts: { stepSeconds: 5, forever: true } }, 400, 'invalid_spec', 'timeouts.forever'],
  ['setup as a string', { ...valid, setup: 'npm ci' }, 400, 'invalid_spec', 'setup'],
  ['empty setup command', { ...valid, setup: [''] }, 400, 'invalid_spec', 'setup.0'],
  ['NUL in a setup command', { ...valid, setup: ['echo a\u0000b'] }, 400, 'invalid_spec', 'setup.0'],
  ['NUL in an env value', { ...valid, env: { A: 'x\u0000' } }, 400, 'invalid_spec', 'env.A'],
  ['setup command as an object', { ...valid, setup: [{ run: 'x' }] }, 400, 'invalid_spec', 'setup.0'],
  ['too many setup steps', { ...valid, setup: Array.from({ length: 101 }, () => 'true') }, 400, 'invalid_spec', 'setup'],
  ['overlong command', { ...valid, validate: ['x'.repeat(16_385)] }, 400, 'invalid_spec', 'validate.0'],
  ['reserved env name', { ...valid, env: { DRAFTSMAN_JOB_ID: 'x' } }, 400, 'invalid_spec', 'env.DRAFTSMAN_JOB_ID'],
  ['env name with =', { ...valid, env: { 'A=B': 'x' } }, 400, 'invalid_spec', 'env.A=B'],
  ['env value as a number', { ...valid, env: { A: 1 } }, 400, 'invalid_spec', 'env.A'],
  ['too many env variables', { ...valid, env: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`V${i}`, 'x'])) }, 400, 'invalid_spec', 'env'],
  ['overlong env value', { ...valid, env: { A: 'x'.repeat(32_769) } }, 400, 'invalid_spec', 'env.A'],
  ['image outside the allowlist', { ...valid, image: 'alpine:3' }, 400, 'invalid_spec', 'image'],
  ['image that is not a reference', { ...valid, image: '../../etc' }, 400, 'invalid_spec', 'image'],
  ['negative step timeout', { ...valid, timeouts: { stepSeconds: -1 } }, 400, 'invalid_spec', 'timeouts.stepSeconds'],
  ['huge job timeout', { ...valid, timeouts: { jobSeconds: 1e12 } }, 400, 'invalid_spec', 'timeouts.jobSeconds'],
  ['deeply nested junk', { ...valid, loop: deep(200) }, 400, 'invalid_spec', ''],
  ['prototype pollution key', JSON.parse(`{"repo":"${valid.repo}","commit":"${commit}","__proto__":{"admin":true}}`), 400, 'invalid_spec', '__proto__'],
  ['body is an array', [valid], 400, 'invalid_spec', ''],
  ['body is null', null, 400, 'invalid_json', ''],
  ['body is a string', 'hello', 400, 'invalid_json', ''],
  ['body is a number', 42, 400, 'invalid_json', ''],
];

test.each(specCases.map((c) => [`${c[0]}: ${c[2]} ${c[3]}`, c] as const))('POST /v1/jobs with %s', async (_title, [, body, status, code, field]) => {
  const res = await stack.api<Problem>('POST', '/v1/jobs', JSON.stringify(body));
  expect(res.status).toBe(status);
  expect(res.body).toMatchObject({ type: `/problems/${code}`, status, code });
  if (field) expect(res.body.field).toBe(field);
  expect(res.body.detail.length).toBeGreaterThan(0);
});

type RawCase = [name: string, method: string, path: string, body: string | undefined, headers: Record<string, string>, status: number, code: string];
const json = { 'content-type': 'application/json' };
/** A spec of exactly `bytes` bytes, padded by a field the schema refuses (so a body that passes the size check is a 400). */
function specOfSize(bytes: number): string {
  const empty = JSON.stringify({ ...valid, pad: '' });
  const body = JSON.stringify({ ...valid, pad: 'x'.repeat(bytes - empty.length) });
  if (Buffer.byteLength(body) !== bytes) throw new Error(`a spec of ${bytes} bytes could not be made`);
  return body;
}
const maxBody = 256 * 1024;
const rawCases: RawCase[] = [
  ['malformed JSON', 'POST', '/v1/jobs', '{"repo": ', json, 400, 'invalid_json'],
  ['trailing garbage after JSON', 'POST', '/v1/jobs', `${JSON.stringify(valid)}x`, json, 400, 'invalid_json'],
  ['text/plain body', 'POST', '/v1/jobs', JSON.stringify(valid), { 'content-type': 'text/plain' }, 415, 'unsupported_media_type'],
  ['form body', 'POST', '/v1/jobs', 'repo=x', { 'content-type': 'application/x-www-form-urlencoded' }, 415, 'unsupported_media_type'],
  ['no content type', 'POST', '/v1/jobs', JSON.stringify(valid), {}, 415, 'unsupported_media_type'],
  ['oversized body (300 KiB)', 'POST', '/v1/jobs', JSON.stringify({ ...valid, pad: 'x'.repeat(300 * 1024) }), json, 413, 'too_large'],
  ['body exactly at DRAFTSMAN_API_MAX_BODY_BYTES (read, then refused for its field)', 'POST', '/v1/jobs', specOfSize(maxBody), json, 400, 'invalid_spec'],
  ['body one byte over DRAFTSMAN_API_MAX_BODY_BYTES', 'POST', '/v1/jobs', specOfSize(maxBody + 1), json, 413, 'too_large'],
  ['unknown status filter', 'GET', '/v1/jobs?status=bogus', undefined, {}, 400, 'invalid_query'],
  ['limit 0', 'GET', '/v1/jobs?limit=0', undefined, {}, 400, 'invalid_query'],
  ['limit not a number', 'GET', '/v1/jobs?limit=ten', undefined, {}, 400, 'invalid_query'],
  ['unknown query parameter', 'GET', '/v1/jobs?colour=red', undefined, {}, 400, 'invalid_query'],
  ['repeated query parameter', 'GET', '/v1/jobs?status=failed&status=running', undefined, {}, 400, 'invalid_query'],
  ['bad step filter for logs', 'GET', '/v1/jobs/job-x/logs?step=../../etc', undefined, {}, 400, 'invalid_query'],
  ['unknown job', 'GET', '/v1/jobs/job-does-not-exist', undefined, {}, 404, 'not_found'],
  ['job id with path tricks', 'GET', '/v1/jobs/..%2F..%2Fetc', undefined, {}, 404, 'not_found'],
  ['cancel of an unknown job', 'POST', '/v1/jobs/job-nope/cancel', '{}', json, 404, 'not_found'],
  ['cancel with an unknown field', 'POST', '/v1/jobs/job-nope/cancel', '{"force":true}', json, 400, 'invalid_body'],
  ['cancel with a non-string reason', 'POST', '/v1/jobs/job-nope/cancel', '{"reason":5}', json, 400, 'invalid_body'],
  ['unknown route', 'GET', '/v1/nothing', undefined, {}, 404, 'not_found'],
];

test.each(rawCases.map((c) => [`${c[0]}: ${c[5]} ${c[6]}`, c] as const))('%s', async (_title, [, method, path, body, headers, status, code]) => {
  const res = await fetch(`${stack.apiUrl}${path}`, { method, body, headers: { ...stack.authHeader, ...headers } });
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const parsed = (await res.json()) as Problem;
  expect(parsed).toMatchObject({ type: `/problems/${code}`, status, code, instance: res.headers.get('x-request-id') });
  if (status === 413) expect(parsed.detail).toContain(`larger than ${maxBody} bytes`);
});

const routes: [method: string, path: string, scope: 'read' | 'write'][] = [
  ['GET', '/metrics', 'read'],
  ['GET', '/v1/jobs', 'read'],
  ['GET', '/v1/jobs/job-x', 'read'],
  ['GET', '/v1/jobs/job-x/events', 'read'],
  ['GET', '/v1/jobs/job-x/logs', 'read'],
  ['GET', '/v1/jobs/job-x/patch', 'read'],
  ['POST', '/v1/jobs', 'write'],
  ['POST', '/v1/jobs/job-x/cancel', 'write'],
];

test.each(routes)('%s %s: 401 without a token or with a wrong one, 403 without the %s scope', async (method, path, scope) => {
  const send = (authorization?: string) =>
    fetch(`${stack.apiUrl}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
      body: method === 'POST' ? JSON.stringify(valid) : undefined,
    });
  for (const auth of [undefined, 'Bearer wrong-token-0123456789', `Basic ${TEST_TOKENS.admin}`, `Bearer ${TEST_TOKENS.admin}x`]) {
    const res = await send(auth);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('Bearer');
    expect(((await res.json()) as Problem).code).toBe('unauthorized');
  }
  const reader = await send(`Bearer ${TEST_TOKENS.reader}`);
  if (scope === 'write') {
    expect(reader.status).toBe(403);
    expect(((await reader.json()) as Problem).code).toBe('forbidden');
  } else {
    expect([200, 404]).toContain(reader.status);
  }
});

test('/health needs no token, and shows the disk guard', async () => {
  const res = await fetch(`${stack.apiUrl}/health`);
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({
    status: 'ok',
    database: 'ok',
    disk: { path: stack.config.DRAFTSMAN_DATA_DIR, freeMb: expect.any(Number), floorMb: 1024, enough: true },
  });
});

test('/health below the disk floor says degraded (jobs wait queued), still 200', async () => {
  const app = createApp({
    store: stack.store,
    jobs: stack.jobs,
    // No machine has a billion MiB free.
    config: { ...stack.config, DRAFTSMAN_MIN_FREE_DISK_MB: 1_000_000_000 },
    auth: new Authenticator(parseTokens(`a:read:${TEST_TOKENS.admin}`, 'test'), 10),
  });
  const server = await listen(app);
  try {
    const res = await fetch(`${server.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'degraded', database: 'ok', disk: { floorMb: 1_000_000_000, enough: false } });
  } finally {
    await server.close();
  }
});

test("requests past a token's rate get 429 with Retry-After, other tokens are not affected", async () => {
  const app = createApp({
    store: stack.store,
    jobs: stack.jobs,
    config: stack.config,
    auth: new Authenticator(parseTokens(`a:read:${TEST_TOKENS.admin},b:read:${TEST_TOKENS.reader}`, 'test'), 3),
  });
  const server = await listen(app);
  try {
    const url = `${server.url}/v1/jobs?limit=1`;
    const as = (token: string) => fetch(url, { headers: { authorization: `Bearer ${token}` } });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await as(TEST_TOKENS.admin)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const limited = await as(TEST_TOKENS.admin);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await as(TEST_TOKENS.reader)).status).toBe(200);
  } finally {
    await server.close();
  }
});

test('sign-in attempts past the per-address rate get 429 with Retry-After, right token or wrong, on both sign-in routes', async () => {
  const app = createApp({
    store: stack.store,
    jobs: stack.jobs,
    config: stack.config,
    auth: new Authenticator(parseTokens(`a:read:${TEST_TOKENS.admin}`, 'test'), 1000, 3),
  });
  const server = await listen(app);
  try {
    const json = (token: string) =>
      fetch(`${server.url}/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
    const statuses = [(await json('wrong-token-0123456789')).status, (await json('wrong-token-0123456789')).status, (await json(TEST_TOKENS.admin)).status];
    // Positive control: the right token signs in while attempts are left.
    expect(statuses).toEqual([401, 401, 201]);
    const limited = await json(TEST_TOKENS.admin);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    const form = await fetch(`${server.url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `token=${TEST_TOKENS.admin}`,
      redirect: 'manual',
    });
    expect(form.status).toBe(429);
  } finally {
    await server.close();
  }
});

test('no refused request started a workflow or wrote a row', async () => {
  const started: string[] = [];
  for await (const wf of stack.client.workflow.list({ query: `TaskQueue = "${stack.config.DRAFTSMAN_TASK_QUEUE}"` })) {
    started.push(wf.workflowId);
  }
  expect(started).toEqual([]);
  const { rows } = await stack.store.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM jobs WHERE repo LIKE '%bad-input%' OR repo LIKE '%bad%input%'");
  expect(rows[0]!.n).toBe(0);
  expect(specCases.length + rawCases.length + routes.length * 5).toBeGreaterThanOrEqual(50);
});

test.each([
  ['a plain id of its own is kept', 'ci-run.42:attempt-1', true],
  ['129 characters are replaced', 'x'.repeat(129), false],
  ['spaces are replaced', 'a b', false],
  ['a newline-free but odd character is replaced', 'id/1', false],
])('X-Request-Id: %s, and every answer carries one (the error names it as its instance)', async (_title, sent, kept) => {
  const res = await fetch(`${stack.apiUrl}/v1/jobs/job-does-not-exist`, { headers: { ...stack.authHeader, 'x-request-id': sent } });
  const id = res.headers.get('x-request-id');
  expect(id).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
  expect(id === sent).toBe(kept);
  expect(((await res.json()) as Problem).instance).toBe(id);
  const ok = await fetch(`${stack.apiUrl}/health`);
  expect(ok.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
});

test('each problem type is served, without a token, with the title and status its answers carry', async () => {
  const list = (await (await fetch(`${stack.apiUrl}/problems`)).json()) as { problems: { type: string; code: string; status: number; title: string }[] };
  expect(list.problems.map((p) => p.code)).toEqual(expect.arrayContaining(['invalid_spec', 'unauthorized', 'too_large', 'secret_not_granted']));
  const refusal = await stack.api<Problem>('POST', '/v1/jobs', JSON.stringify({ ...valid, commit: 'main' }));
  const type = await fetch(`${stack.apiUrl}${refusal.body.type}`);
  expect(type.status).toBe(200);
  expect(await type.json()).toEqual({ type: refusal.body.type, code: 'invalid_spec', status: 400, title: refusal.body.title });
  expect((await fetch(`${stack.apiUrl}/problems/nope`)).status).toBe(404);
});

test.each([['/openapi.json'], ['/problems'], ['/health']])('%s is served without a token', async (route) => {
  const res = await fetch(`${stack.apiUrl}${route}`);
  expect(res.status).toBe(200);
});
