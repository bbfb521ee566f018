import fs from 'node:fs';
import path from 'node:path';
import { TEST_DATA_DIR } from './env';
import { type GitFixture, startGitFixture } from './git-fixture';
import { startTestStack, type TestStack } from './stack';

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
  [stack, repo] = await Promise.all([
    startTestStack({ DRAFTSMAN_STEP_NETWORK: 'host', DRAFTSMAN_SECRETS_DIR: secretsDir }),
    startGitFixture(1),
  ]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
  fs.rmSync(secretsDir, { recursive: true, force: true });
});

const forms = (v: string) => [
  v,
  Buffer.from(v).toString('base64'),
  encodeURIComponent(v),
  ...v.split('\n'),
];

test('secrets by reference reach the step, and their values appear nowhere: not in history, audit, API or logs', async () => {
  const res = await stack.api<{ id: string }>('POST', '/v1/jobs', {
    repo: repo.url,
    commit: repo.head,
    secrets: { NPM_TOKEN: 'npm-token', DEPLOY_KEY: 'deploy-key' },
    gitTokenSecret: 'git-token',
    setup: [
      'echo "plain $NPM_TOKEN"',
      'printf %s "$NPM_TOKEN" | base64',
      "printf %s \"$NPM_TOKEN\" | sed 's#/#%2F#g; s#+#%2B#g; s#&#%26#g'",
      'echo "$DEPLOY_KEY"',
    ],
    // The token for git never lands in the workspace's git config.
    validate: ['test -n "$NPM_TOKEN"', '! grep -rqs token .git/config'],
  });
  expect(res.status).toBe(202);
  const id = res.body.id;
  const job = await stack.waitForEnd(id);
  expect(job.status).toBe('succeeded');

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
