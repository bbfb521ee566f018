import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../../stack/paths';
import { TEST_DATA_DIR } from './env';
import { type GitFixture, startGitFixture } from './git-fixture';
import { startTestStack, TEST_TOKENS, type TestStack } from './stack';

let stack: TestStack;
let repo: GitFixture;
beforeAll(async () => {
  [stack, repo] = await Promise.all([startTestStack(), startGitFixture(1)]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
});

/** Runs the built CLI (stdout is a pipe: plain line output). */
async function draftsman(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['dist/cli/main.js', ...args], {
      cwd: projectRoot(),
      env: { ...process.env, DRAFTSMAN_URL: stack.apiUrl, DRAFTSMAN_TOKEN: TEST_TOKENS.admin },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function specFile(name: string, spec: Record<string, unknown>): string {
  const file = path.join(TEST_DATA_DIR, `cli-${process.pid}-${name}.json`);
  fs.writeFileSync(file, JSON.stringify({ repo: repo.url, commit: repo.head, ...spec }));
  return file;
}

test('run --follow streams progress and logs and exits 0 for a job that succeeds', async () => {
  const file = specFile('ok', { setup: ['echo hello from setup'], validate: ['echo checked'] });
  const r = await draftsman('run', file, '--follow');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^job job-[\w-]+ submitted$/m);
  expect(r.stdout).toMatch(/^setup-0\s+\| hello from setup$/m);
  expect(r.stdout).toMatch(/^validate-0\s+\| checked$/m);
  expect(r.stdout).toMatch(/^\[\d+\.\ds\] running/m);
  expect(r.stdout).toMatch(/ succeeded$/m);
  expect(r.stdout).not.toContain('\x1b['); // no terminal control codes on a pipe
});

test('run --follow exits 1 for a job that fails; status, logs, ls and cancel work', async () => {
  const r = await draftsman('run', specFile('fail', { validate: ['echo broken >&2; exit 4'] }), '--follow');
  expect(r.code).toBe(1);
  expect(r.stdout).toMatch(/^validate-0\s+\| ! broken$/m);
  expect(r.stdout).toMatch(/validate-0\s+failed\s+exit 4/);
  const id = /^job (job-[\w-]+) submitted$/m.exec(r.stdout)![1]!;

  const status = await draftsman('status', id);
  expect(status.code).toBe(0);
  expect(status.stdout).toContain(`${id}  failed`);
  const json = await draftsman('status', id, '--json');
  expect(JSON.parse(json.stdout)).toMatchObject({ id, status: 'failed' });
  const logs = await draftsman('logs', id, '--step', 'validate-0');
  expect(logs.stdout.trim()).toMatch(/^validate-0\s+\| ! broken$/);
  const ls = await draftsman('ls', '--status', 'failed');
  expect(ls.stdout).toContain(id);

  // A job that has ended cannot be cancelled: the API's 409 becomes exit code 1 with its message.
  const cancel = await draftsman('cancel', id, '--reason', 'late');
  expect(cancel.code).toBe(1);
  expect(cancel.stderr).toMatch(/already ended/);
});

test('cancel stops a running job; bad usage exits 2; an unreachable API is a clear error', async () => {
  const submitted = await draftsman('run', specFile('long', { setup: ['sleep 60'] }));
  expect(submitted.code).toBe(0);
  const id = submitted.stdout.trim();
  const cancel = await draftsman('cancel', id, '--reason', 'from the cli');
  expect(cancel.code).toBe(0);
  const job = await stack.waitForEnd(id);
  expect(job.status).toBe('cancelled');
  expect(job.error).toContain('from the cli');

  expect((await draftsman('frobnicate')).code).toBe(2);
  expect((await draftsman('run')).code).toBe(2);
  expect((await draftsman('run', '/nonexistent.json')).stderr).toMatch(/cannot read a JSON spec/);
  const down = await draftsman('ls', '--url', 'http://127.0.0.1:9');
  expect(down.code).toBe(1);
  expect(down.stderr).toMatch(/cannot reach the Draftsman API/);
});
