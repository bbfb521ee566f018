import { startTestStack, type TestStack } from './stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

const commit = 'c'.repeat(40);
const valid = { repo: 'git://127.0.0.1:9/repo.git', commit };

interface ErrorBody {
  error: { code: string; message: string; field?: string };
}

test.each([
  ['a branch name as commit', { ...valid, commit: 'main' }, 'commit'],
  ['a short commit', { ...valid, commit: 'abc123' }, 'commit'],
  ['a bad repo URL', { ...valid, repo: 'file:///etc' }, 'repo'],
  ['a repo URL that is an option', { ...valid, repo: '-oProxyCommand=x' }, 'repo'],
  ['maxIterations 0', { ...valid, loop: { command: 'x', maxIterations: 0 } }, 'loop.maxIterations'],
  ['maxIterations 1001', { ...valid, loop: { command: 'x', maxIterations: 1001 } }, 'loop.maxIterations'],
  ['an unknown field', { ...valid, volumes: ['/:/host'] }, 'volumes'],
  ['a missing repo', { commit }, 'repo'],
  ['a wrong type', { ...valid, setup: 'npm ci' }, 'setup'],
])('%s gets 400 naming the field', async (_name, body, field) => {
  const res = await stack.api<ErrorBody>('POST', '/v1/jobs', body);
  expect(res.status).toBe(400);
  expect(res.body.error.code).toBe('invalid_spec');
  expect(res.body.error.field).toBe(field);
  expect(res.body.error.message).toContain(field);
});

test('malformed JSON gets 400, a wrong content type 415', async () => {
  const bad = await stack.api<ErrorBody>('POST', '/v1/jobs', '{"repo": ');
  expect(bad.status).toBe(400);
  expect(bad.body.error.code).toBe('invalid_json');
  const text = await stack.api<ErrorBody>('POST', '/v1/jobs', JSON.stringify(valid), { 'content-type': 'text/plain' });
  expect(text.status).toBe(415);
});

test('bad queries and unknown jobs get clear errors', async () => {
  expect((await stack.api<ErrorBody>('GET', '/v1/jobs?status=bogus')).status).toBe(400);
  expect((await stack.api<ErrorBody>('GET', '/v1/jobs?limit=0')).status).toBe(400);
  const missing = await stack.api<ErrorBody>('GET', '/v1/jobs/job-does-not-exist');
  expect(missing.status).toBe(404);
  expect(missing.body.error.code).toBe('not_found');
  expect((await stack.api<ErrorBody>('GET', '/v1/nothing')).status).toBe(404);
});

test('no refused request started a workflow or wrote a job', async () => {
  // This file's task queue saw only refused requests.
  const started = [];
  for await (const wf of stack.client.workflow.list({ query: `TaskQueue = "${stack.config.DRAFTSMAN_TASK_QUEUE}"` })) {
    started.push(wf.workflowId);
  }
  expect(started).toEqual([]);
  const { rows } = await stack.store.pool.query<{ n: string }>(
    "SELECT count(*) AS n FROM jobs WHERE repo = $1",
    [valid.repo],
  );
  expect(Number(rows[0]!.n)).toBe(0);
});

test('health reports the database', async () => {
  const res = await stack.api<{ status: string; database: string }>('GET', '/health');
  expect(res).toEqual({ status: 200, body: { status: 'ok', database: 'ok' } });
});
