/**
 * Failures that heal and failures that cannot: while an activity of a job is being tried
 * again, the job's view and the CLI say so (which, its attempt, the last error, the next
 * try); once it heals the job goes on and the note is gone.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { JobView } from '../../common/job';
import { projectRoot } from '../../common/paths';
import { launchChromium } from '../../testing/browser';
import { TEST_DATA_DIR } from '../../testing/env';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { waitFor } from '../../testing/helpers';
import { probed } from '../../testing/faults';
import { startTestStack, TEST_TOKENS, type TestStack } from '../../testing/stack';

let stack: TestStack;
let repo: GitFixture;
/** Jobs whose loop-1 fails to start while they are in here. */
const failing = new Set<string>();

beforeAll(async () => {
  [stack, repo] = await Promise.all([
    startTestStack(
      {},
      {
        wrap: probed(async (boundary, at) => {
          if (boundary === 'before-create' && at.step === 'loop-1' && failing.has(at.jobId)) throw new Error('the engine refused the create (test probe)');
        }),
      },
    ),
    startGitFixture(1),
  ]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
});

test('an activity being retried shows in the job view and the CLI with its attempt, last error and next try; healed, the job ends and the note is gone', async () => {
  const id = await stack.submit({ repo: repo.url, commit: repo.head, loop: { command: 'echo looped', maxIterations: 1 } });
  failing.add(id);
  let seen!: JobView;
  await waitFor(
    async () => {
      seen = (await stack.api<JobView>('GET', `/v1/jobs/${id}`)).body;
      return (seen.retrying?.attempt ?? 0) >= 2;
    },
    'the job view to show the retry',
    { timeoutMs: 30_000, everyMs: 200 },
  );
  expect(seen.status).toBe('running');
  expect(seen.retrying).toEqual({
    activity: 'runStep',
    attempt: expect.any(Number),
    lastError: 'the engine refused the create (test probe)',
    nextAttemptAt: expect.any(String),
  });
  expect(Date.parse(seen.retrying!.nextAttemptAt!)).toBeGreaterThan(Date.now() - 60_000);

  const { stdout } = await promisify(execFile)(process.execPath, [path.join(projectRoot(), 'dist/cli/main.js'), 'status', id], {
    cwd: TEST_DATA_DIR,
    env: { ...process.env, DRAFTSMAN_URL: stack.apiUrl, DRAFTSMAN_TOKEN: TEST_TOKENS.admin },
  });
  expect(stdout).toMatch(/retrying runStep, attempt \d+(, next try at \S+| \(running\)); last error: the engine refused the create \(test probe\)/);

  // The dashboard's job page says it too, as a person signed in sees it.
  const browser = await launchChromium();
  try {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    await page.goto(`${stack.apiUrl}/login?next=${encodeURIComponent(`/ui/jobs/${id}`)}`);
    await page.getByLabel('API token').fill(TEST_TOKENS.admin);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${stack.apiUrl}/ui/jobs/${id}`);
    const note = page.locator('dd.retrying');
    await note.waitFor({ timeout: 20_000 });
    expect(await note.innerText()).toMatch(/^runStep, attempt \d+.*: the engine refused the create \(test probe\)$/);
    const artifacts = path.join(projectRoot(), 'test-artifacts');
    fs.mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: path.join(artifacts, 'dashboard-job-retrying.png'), fullPage: true });
  } finally {
    await browser.close();
  }

  failing.delete(id);
  const ended = await stack.waitForEnd(id);
  expect(ended.status).toBe('succeeded');
  expect((await stack.api<JobView>('GET', `/v1/jobs/${id}`)).body.retrying).toBeUndefined();
});
