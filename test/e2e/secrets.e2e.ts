import fs from 'node:fs';
import path from 'node:path';
import { TEST_DATA_DIR } from '../../testing/env';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { waitFor } from '../../testing/helpers';
import { startTestStack, type TestStack } from '../../testing/stack';

const SECRET = 'S3cr3t/Value+xyz&';
const MULTI = 'line-one-of-the-key\nline-two-of-the-key';
const secretsDir = path.join(TEST_DATA_DIR, `secrets-${process.pid}`);
let stack: TestStack;
let repo: GitFixture;

beforeAll(async () => {
  fs.mkdirSync(secretsDir, { recursive: true });
  fs.writeFileSync(path.join(secretsDir, 'npm-token'), `${SECRET}\n`);
  fs.writeFileSync(path.join(secretsDir, 'deploy-key'), MULTI);
  fs.writeFileSync(path.join(secretsDir, 'git-token'), 'git-token-value-123');
  fs.writeFileSync(path.join(secretsDir, 'other-team-token'), 'other-team-value-456');
  [stack, repo] = await Promise.all([
    startTestStack({
      DRAFTSMAN_SECRETS_DIR: secretsDir,
      // The API's admin token may name these (the unknown one too, to reach the worker's
      // check); SDK clients only npm-token; nobody other-team-token.
      DRAFTSMAN_SECRET_GRANTS: 'admin=npm-token+deploy-key+git-token+no-such-secret, sdk:*=npm-token',
    }),
    startGitFixture(1),
  ]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
  fs.rmSync(secretsDir, { recursive: true, force: true });
});

const forms = (v: string) => [v, Buffer.from(v).toString('base64'), encodeURIComponent(v), ...v.split('\n')];

test('secrets by reference reach the step, and their values appear nowhere: not in history, audit, API or logs', async () => {
  const res = await stack.api<{ id: string }>('POST', '/v1/jobs', {
    repo: repo.url,
    commit: repo.head,
    secrets: { NPM_TOKEN: 'npm-token', DEPLOY_KEY: 'deploy-key', GIT_TOKEN: 'git-token' },
    setup: [
      'echo "plain $NPM_TOKEN"',
      'printf %s "$NPM_TOKEN" | base64',
      'printf %s "$NPM_TOKEN" | sed \'s#/#%2F#g; s#+#%2B#g; s#&#%26#g\'',
      'echo "$DEPLOY_KEY"',
    ],
    validate: ['test -n "$NPM_TOKEN"'],
  });
  expect(res.status).toBe(202);
  const id = res.body.id;
  const job = await stack.waitForEnd(id);
  expect(job.status).toBe('succeeded');
  expect(job.principal).toBe('admin');

  const logs = await (await fetch(`${stack.apiUrl}/v1/jobs/${id}/logs`, { headers: stack.authHeader })).text();
  expect(logs).toContain('plain ***');
  const history = JSON.stringify((await stack.client.workflow.getHandle(id).fetchHistory()).events);
  const events = JSON.stringify(await stack.store.events(id));
  const view = JSON.stringify(job);
  const { rows } = await stack.store.pool.query('SELECT spec::text FROM jobs WHERE id = $1', [id]);
  for (const form of [...forms(SECRET), ...forms(MULTI), 'git-token-value-123']) {
    expect(logs).not.toContain(form);
    expect(history).not.toContain(form);
    expect(events).not.toContain(form);
    expect(view).not.toContain(form);
    expect(JSON.stringify(rows)).not.toContain(form);
  }
  // The references themselves are fine to show.
  expect(JSON.stringify(rows)).toContain('npm-token');
});

test('an unknown secret reference fails the job before anything runs, naming it', async () => {
  const res = await stack.api<{ id: string }>('POST', '/v1/jobs', {
    repo: repo.url,
    commit: repo.head,
    secrets: { TOKEN: 'no-such-secret' },
    validate: ['true'],
  });
  const job = await stack.waitForEnd(res.body.id);
  expect(job.status).toBe('failed');
  expect(job.error).toMatch(/secrets\.TOKEN: unknown secret reference no-such-secret/);
  expect(job.steps).toEqual([]);
});

test('a token is sent to a repository over https only: with an http:// one the job is refused, naming the field', async () => {
  const res = await stack.api<{ field: string; detail: string }>('POST', '/v1/jobs', { repo: repo.url, commit: repo.head, gitTokenSecret: 'git-token' });
  expect(res.status).toBe(400);
  expect(res.body).toMatchObject({ field: 'gitTokenSecret', detail: expect.stringMatching(/only over https/) });
});

test('a secret written into new files, and printed inside longer strings, is in none of the patch, the logs, the events or the API', async () => {
  const res = await stack.api<{ id: string }>('POST', '/v1/jobs', {
    repo: repo.url,
    commit: repo.head,
    secrets: { NPM_TOKEN: 'npm-token' },
    loop: {
      command: [
        'echo "token=$NPM_TOKEN" > leaked.txt',
        'printf "{\\"auth\\":\\"%s\\"}" "$NPM_TOKEN" | base64 -w0 > encoded.txt',
        'printf %s "$NPM_TOKEN" | od -An -tx1 | tr -d " \\n" > hex.txt',
        'echo "HARMLESS=1" > .env',
        'echo kept > notes.txt',
        'printf "prefix-%s-suffix" "$NPM_TOKEN" | base64 -w0; echo',
        'printf %s "$NPM_TOKEN" | od -An -tx1 | tr -d " \\n"; echo',
        'printf %s "$NPM_TOKEN" | sed \'s#/#%2f#g; s#+#%2b#g; s#&#%26#g\'; echo',
      ].join('; '),
      maxIterations: 1,
    },
  });
  expect(res.status).toBe(202);
  const id = res.body.id;
  const job = await stack.waitForEnd(id);
  expect(job.status).toBe('succeeded');

  const patch = await (await fetch(`${stack.apiUrl}/v1/jobs/${id}/patch`, { headers: stack.authHeader })).text();
  expect(patch).toContain('notes.txt');
  for (const f of ['leaked.txt', 'encoded.txt', 'hex.txt', '.env']) expect([f, patch.includes(f)]).toEqual([f, false]);
  const withheld = (await stack.store.events(id)).filter((e) => e.type === 'patch_file_withheld').map((e) => e.data);
  expect(withheld.sort((a, b) => String(a.file).localeCompare(String(b.file)))).toEqual([
    { file: '.env', reason: 'secret file name' },
    { file: 'encoded.txt', reason: 'holds a secret' },
    { file: 'hex.txt', reason: 'holds a secret' },
    { file: 'leaked.txt', reason: 'holds a secret' },
  ]);

  const logs = await (await fetch(`${stack.apiUrl}/v1/jobs/${id}/logs`, { headers: stack.authHeader })).text();
  const everything = [patch, logs, JSON.stringify(await stack.store.events(id)), JSON.stringify(job)].join('\n');
  const inside = Buffer.from(`prefix-${SECRET}-suffix`).toString('base64');
  // The base64 characters that come from the secret's bytes alone (7 to 24 of the string).
  for (const form of [SECRET, Buffer.from(SECRET).toString('hex'), inside.slice(10, 32), 'S3cr3t%2fValue%2bxyz%26']) {
    expect([form, everything.includes(form)]).toEqual([form, false]);
  }
  expect(logs.match(/\*\*\*/g)?.length).toBeGreaterThanOrEqual(3);
});

test('a secret not granted to the token is a 403 naming it, and nothing is started', async () => {
  const res = await stack.api<Record<string, unknown>>('POST', '/v1/jobs', {
    repo: repo.url,
    commit: repo.head,
    secrets: { NPM_TOKEN: 'npm-token', OTHER: 'other-team-token' },
    validate: ['true'],
  });
  expect(res.status).toBe(403);
  expect(res.body).toEqual({
    type: '/problems/secret_not_granted',
    title: 'A secret is not granted to the principal',
    status: 403,
    code: 'secret_not_granted',
    field: 'secrets.OTHER',
    detail: 'secrets.OTHER: the secret "other-team-token" is not granted to admin (DRAFTSMAN_SECRET_GRANTS)',
    instance: expect.any(String),
  });
  const { rows } = await stack.store.pool.query(`SELECT id FROM jobs WHERE spec::text LIKE '%other-team-token%'`);
  expect(rows).toEqual([]);
});

test('a job started with the Temporal SDK is sdk:<identity>, and its grants are checked by the worker before anything runs', async () => {
  const identity = stack.client.options.identity;
  const spec = { repo: repo.url, commit: repo.head, validate: ['test -n "$T"'] };
  const granted = await stack.jobs.start({ ...spec, secrets: { T: 'npm-token' } });
  const refused = await stack.jobs.start({ ...spec, secrets: { T: 'other-team-token' } });
  const [ok, ko] = await Promise.all([stack.waitForEnd(granted.id), stack.waitForEnd(refused.id)]);
  expect(ok).toMatchObject({ status: 'succeeded', principal: `sdk:${identity}` });
  expect(ko).toMatchObject({
    status: 'failed',
    principal: `sdk:${identity}`,
    error: `secrets.T: the secret "other-team-token" is not granted to sdk:${identity} (DRAFTSMAN_SECRET_GRANTS)`,
    steps: [],
  });
  // A principal the SDK names itself is taken as it is (Temporal access is operator access).
  const named = await stack.jobs.start({ ...spec, secrets: { T: 'npm-token' } }, undefined, { principal: 'admin' });
  expect(await stack.waitForEnd(named.id)).toMatchObject({ status: 'succeeded', principal: 'admin' });
});

test('the audit trail names who started and who cancelled a job, with the API request of each', async () => {
  const started = await stack.api<{ id: string }>(
    'POST',
    '/v1/jobs',
    { repo: repo.url, commit: repo.head, setup: ['sleep 30'] },
    { 'x-request-id': 'trace-start-1' },
  );
  expect(started.status).toBe(202);
  const id = started.body.id;
  await waitFor(async () => (await stack.store.getJob(id))?.status === 'running', 'the job to run');
  const cancel = await stack.api('POST', `/v1/jobs/${id}/cancel`, { reason: 'audit' }, { 'x-request-id': 'trace-cancel-1' });
  expect(cancel.status).toBe(202);
  expect((await stack.waitForEnd(id)).status).toBe('cancelled');
  const events = await stack.store.events(id);
  expect(events.find((e) => e.type === 'created')?.data).toEqual({ principal: 'admin', requestId: 'trace-start-1' });
  expect(events.filter((e) => e.type === 'cancel_requested').map((e) => e.data)).toEqual([
    { principal: 'admin', requestId: 'trace-cancel-1', reason: 'audit' },
  ]);
});

test("labels: in the job view and the DraftsmanLabels search attribute; a label holding a secret's value is refused before anything runs", async () => {
  const labelled = await stack.api<{ id: string }>('POST', '/v1/jobs', {
    repo: repo.url,
    commit: repo.head,
    labels: { pr: `${process.pid}`, team: 'tools' },
    validate: ['true'],
  });
  expect(labelled.status).toBe(202);
  const job = await stack.waitForEnd(labelled.body.id);
  expect(job).toMatchObject({ status: 'succeeded', labels: { pr: `${process.pid}`, team: 'tools' } });
  const found: string[] = [];
  for await (const w of stack.client.workflow.list({ query: `DraftsmanLabels = "pr=${process.pid}"` })) found.push(w.workflowId);
  expect(found).toEqual([labelled.body.id]);
  const listed = await stack.api<{ jobs: { id: string }[] }>('GET', `/v1/jobs?label=pr=${process.pid}`);
  expect(listed.body.jobs.map((j) => j.id)).toEqual([labelled.body.id]);

  const leaking = await stack.api<{ id: string }>('POST', '/v1/jobs', {
    repo: repo.url,
    commit: repo.head,
    secrets: { T: 'git-token' },
    labels: { note: 'git-token-value-123' },
    validate: ['true'],
  });
  const refused = await stack.waitForEnd(leaking.body.id);
  expect(refused).toMatchObject({ status: 'failed', error: "labels.note: holds the value of one of the job's secrets", steps: [] });
  const attributes = JSON.stringify((await stack.client.workflow.getHandle(leaking.body.id).describe()).searchAttributes);
  expect(attributes).not.toContain('git-token-value-123');
});
