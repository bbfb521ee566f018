/**
 * The dashboard in Debian's Chromium against the real stack: signed in through the form,
 * a job's log growing while its step runs, cancel by keyboard alone, hostile logs and
 * file names shown as text, the diff, filters and cursor pages over 200 jobs, approval
 * from the page and rejection from the CLI, axe-core, and a phone-sized page.
 */
import fs from 'node:fs';
import path from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { newJobId } from '../../client/jobs';
import type { JobView } from '../../common/job';
import { projectRoot } from '../../common/paths';
import { launchChromium } from '../../testing/browser';
import { TEST_DATA_DIR } from '../../testing/env';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { runTool, waitFor } from '../../testing/helpers';
import { startTestStack, TEST_TOKENS, type TestStack } from '../../testing/stack';

const ARTIFACTS = path.join(projectRoot(), 'test-artifacts');
let stack: TestStack;
let repo: GitFixture;
let browser: Browser;
let context: BrowserContext;
/** A finished job with a log and a patch, for the pages that only read. */
let hostileJob = '';

/** Problems a page reports: dialogs (a script that ran), errors, and policy refusals. */
function watch(page: Page): string[] {
  const seen: string[] = [];
  page.on('dialog', (d) => {
    seen.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  page.on('pageerror', (e) => seen.push(`page error: ${e.message}`));
  page.on('console', (m) => void (m.type() === 'error' && seen.push(`console: ${m.text()}`)));
  page.on('response', (r) => void (r.status() >= 400 && seen.push(`${r.status()} ${r.request().method()} ${r.url()}`)));
  return seen;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

const status = async (id: string) => (await stack.api<JobView>('GET', `/v1/jobs/${id}`)).body.status;

beforeAll(async () => {
  [stack, repo] = await Promise.all([startTestStack(), startGitFixture(1)]);
  browser = await launchChromium();
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // Signed in once through the form, as a person would: sent there from the dashboard, and back.
  const page = await context.newPage();
  await page.goto(`${stack.apiUrl}/`);
  await page.waitForURL(/\/login\?next=%2Fui%2F$/);
  await page.getByLabel('API token').fill(TEST_TOKENS.admin);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${stack.apiUrl}/ui/`);
  await page.close();
});
afterAll(async () => {
  await browser?.close();
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
});

test('a new job appears in the list by itself; its log grows while its step runs, without navigation; a keyboard alone cancels it', async () => {
  const page = await context.newPage();
  const problems = watch(page);
  const run = `live-${Date.now()}`;
  await page.goto(`${stack.apiUrl}/ui/?label=run%3D${run}`);
  await page.getByText('No jobs match these filters.').waitFor();
  const id = await stack.submit({
    repo: repo.url,
    commit: repo.head,
    labels: { run },
    setup: [`printf '\\033[31mred-marker\\033[0m\\n'; for i in $(seq 1 150); do echo "tick $i"; sleep 1; done`],
  });
  try {
    // The list refreshes itself: the row comes without a reload.
    await page.evaluate('window.stillThisPage = true');
    const row = page.locator(`tr[data-job="${id}"]`);
    await row.waitFor({ timeout: 20_000 });
    await row.getByRole('link', { name: id }).click();
    await page.waitForURL(`${stack.apiUrl}/ui/jobs/${id}`);

    const log = page.getByRole('log');
    await log
      .getByText(/^setup-0tick \d+$/)
      .first()
      .waitFor({ timeout: 60_000 });
    const ticks = async () => Math.max(...(await log.locator('.line').allInnerTexts()).map((t) => Number(/tick (\d+)/.exec(t)?.[1] ?? 0)));
    const first = await ticks();
    await waitFor(
      async () => (await ticks()) >= first + 2,
      () => `a tick after ${first} on the page`,
      { timeoutMs: 20_000 },
    );
    // The same document all along: the links and the stream changed nothing but the address.
    expect(await page.evaluate('window.stillThisPage')).toBe(true);
    // The colour is a class, and the text is text.
    await expect(log.locator('span.fg-red').first().innerText()).resolves.toBe('red-marker');
    expect(await page.getByRole('listitem').filter({ hasText: 'setup 1' }).innerText()).toMatch(/running/);
    await shot(page, 'dashboard-job-live');

    // Cancel by keyboard alone: Tab to the button, Enter, the reason, Enter.
    await page.locator('body').focus();
    let reached = false;
    for (let i = 0; i < 60 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = (await page.evaluate('document.activeElement?.textContent')) === 'Cancel job…';
    }
    expect(reached).toBe(true);
    await page.keyboard.press('Enter');
    // The reason's field takes the focus as it opens.
    await page.locator('input[name="reason"]:focus').waitFor({ timeout: 5_000 });
    await page.keyboard.type('stopped from the keyboard');
    await page.keyboard.press('Enter');
    expect((await stack.waitForEnd(id, 60_000)).status).toBe('cancelled');
    await page.locator('h1 .status-cancelled').waitFor({ timeout: 15_000 });
    const events = (await stack.api<{ events: { type: string; data: Record<string, unknown> }[] }>('GET', `/v1/jobs/${id}/events`)).body.events;
    expect(events.find((e) => e.type === 'cancel_requested')?.data).toMatchObject({ principal: 'admin', reason: 'stopped from the keyboard' });
    expect(problems).toEqual([]);
  } finally {
    await page.close();
    if ((await status(id)) === 'running') await stack.api('POST', `/v1/jobs/${id}/cancel`);
  }
});

test('hostile log lines and file names are shown as text and nothing runs; the patch shows as a diff with its files', async () => {
  hostileJob = await stack.submit({
    repo: repo.url,
    commit: repo.head,
    setup: [`echo '<script>alert("log")</script>'; echo '<img src=x onerror=alert("img")>'`],
    loop: {
      command: `printf '<script>alert("content")</script>\\n' > '<img src=x onerror=alert("name")>.html' && echo 'more' >> notes.txt`,
      until: 'true',
      maxIterations: 1,
    },
  });
  expect((await stack.waitForEnd(hostileJob)).status).toBe('succeeded');
  const page = await context.newPage();
  const problems = watch(page);
  try {
    await page.goto(`${stack.apiUrl}/ui/jobs/${hostileJob}`);
    const files = page.getByRole('list', { name: 'Changed files' });
    await files.waitFor({ timeout: 15_000 });
    expect(await files.getByRole('listitem').allInnerTexts()).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^<img src=x onerror=alert\("name"\)>\.html added \+1 −0$/),
        expect.stringMatching(/^notes\.txt added \+1 −0$/),
      ]),
    );
    await page.getByRole('region', { name: 'Changes to <img src=x onerror=alert("name")>.html' }).getByText('<script>alert("content")</script>').waitFor();
    const log = page.getByRole('log');
    await log.getByText('<script>alert("log")</script>').waitFor();
    await log.getByText('<img src=x onerror=alert("img")>').waitFor();
    // Nothing of the job became markup: no image, and no script but the dashboard's own.
    expect(await page.evaluate('[document.images.length, document.scripts.length]')).toEqual([0, 1]);
    await page.getByText('Loop: 1 iteration, converged').waitFor();
    await shot(page, 'dashboard-job-diff');
    // Give any handler that might have been planted a moment to fire.
    await page.waitForTimeout(500);
    expect(problems).toEqual([]);
  } finally {
    await page.close();
  }
});

test('filters and cursor pages over 200 jobs: repository, status with a label, free text', async () => {
  const seedRepo = `http://127.0.0.1:9/seeded-${Date.now()}.git`;
  const ids: string[] = [];
  for (let i = 0; i < 200; i++) {
    const id = newJobId();
    ids.push(id);
    await stack.store.recordQueued(id, `run-${i}`, seedRepo, 'a'.repeat(40), { labels: { group: i % 4 < 2 ? 'a' : 'b' } }, { principal: 'seeder' });
  }
  await stack.store.pool.query(
    `UPDATE jobs SET status = CASE WHEN (run_id ~ '[13579]$') THEN 'failed' ELSE 'succeeded' END,
       started_at = created_at, finished_at = created_at + INTERVAL '3 seconds' WHERE repo = $1`,
    [seedRepo],
  );
  const page = await context.newPage();
  const problems = watch(page);
  try {
    await page.goto(`${stack.apiUrl}/ui/?repo=${encodeURIComponent(seedRepo)}`);
    const seen = new Set<string>();
    for (let p = 1; p <= 4; p++) {
      const rows = page.locator('tr[data-job]');
      await waitFor(
        async () => (await rows.count()) === 50 && !seen.has((await rows.first().getAttribute('data-job'))!),
        () => `page ${p} of 50 new rows`,
        { timeoutMs: 10_000 },
      );
      for (const id of await rows.evaluateAll((rs) => rs.map((r) => r.getAttribute('data-job')!))) seen.add(id);
      if (p === 1) await shot(page, 'dashboard-jobs');
      if (p < 4) await page.getByRole('link', { name: 'Next page' }).click();
    }
    expect([...seen].sort()).toEqual([...ids].sort());
    expect(await page.getByRole('link', { name: 'Next page' }).count()).toBe(0);

    // Status and label through the form: odd runs fail, and group a is i % 4 < 2, so i % 4 == 1.
    await page.getByRole('link', { name: 'First page' }).click();
    await page.getByLabel('Status').selectOption('failed');
    await page.getByLabel('Label').fill('group=a');
    // The list refreshes every 5 s: what is being typed stays.
    await page.waitForTimeout(5_500);
    expect(await page.getByLabel('Label').inputValue()).toBe('group=a');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/status=failed/);
    const rows = page.locator('tr[data-job]');
    await waitFor(
      async () => (await rows.count()) === 50 && (await page.locator('tr[data-job] .status-failed').count()) === 50,
      'the 50 failed jobs of group a',
    );
    expect((await rows.evaluateAll((rs) => rs.map((r) => r.getAttribute('data-job')!))).sort()).toEqual(ids.filter((_, i) => i % 4 === 1).sort());
    expect(await page.getByRole('link', { name: 'Next page' }).count()).toBe(0);

    // Free text: a job id's start finds that job alone.
    await page.getByRole('button', { name: 'Clear' }).click();
    await page.getByLabel('Search').fill(ids[137]!.slice(0, 16));
    await page.getByLabel('Search').press('Enter');
    await waitFor(async () => (await rows.count()) === 1 && (await rows.first().getAttribute('data-job')) === ids[137], 'the one job');
    expect(problems).toEqual([]);
    // The same text through the API: part of the repository (any case), the principal, and LIKE's characters as themselves.
    const count = async (q: string) =>
      (await stack.api<{ jobs: unknown[] }>('GET', `/v1/jobs?limit=200&repo=${encodeURIComponent(seedRepo)}&q=${encodeURIComponent(q)}`)).body.jobs.length;
    expect(await Promise.all(['SEEDED-', 'seeder', ids[5]!.slice(0, 16), '%', '_', 'seeded\\'].map(count))).toEqual([200, 200, 1, 0, 0, 0]);
  } finally {
    await page.close();
    await stack.store.pool.query('DELETE FROM events WHERE job_id = ANY($1::text[])', [ids]);
    await stack.store.pool.query('DELETE FROM jobs WHERE repo = $1', [seedRepo]);
  }
});

test('an approval approved from the page, another rejected from the CLI', async () => {
  const gated = { repo: repo.url, commit: repo.head, validate: ['echo validated'], approval: { before: 'validate', timeoutSeconds: 300 } };
  const [approved, rejected] = await Promise.all([stack.submit(gated), stack.submit(gated)]);
  const page = await context.newPage();
  const problems = watch(page);
  try {
    await waitFor(async () => (await status(approved)) === 'awaiting_approval' && (await status(rejected)) === 'awaiting_approval', 'both jobs at the gate', {
      timeoutMs: 60_000,
    });
    await page.goto(`${stack.apiUrl}/ui/jobs/${approved}`);
    const form = page.getByRole('form', { name: 'Approval' });
    await form.getByLabel('Comment (optional)').fill('looks right');
    await shot(page, 'dashboard-approval');
    await form.getByRole('button', { name: 'Approve' }).click();
    expect((await stack.waitForEnd(approved, 60_000)).status).toBe('succeeded');
    await page.locator('h1 .status-succeeded').waitFor({ timeout: 15_000 });
    const events = (await stack.api<{ events: { type: string; data: Record<string, unknown> }[] }>('GET', `/v1/jobs/${approved}/events`)).body.events;
    expect(events.find((e) => e.type === 'approved')?.data).toMatchObject({ by: 'admin', comment: 'looks right' });

    const { DRAFTSMAN_TOKEN: _inherited, ...env } = process.env;
    const cli = await runTool(process.execPath, [path.join(projectRoot(), 'dist/cli/main.js'), 'reject', rejected, '--comment', 'not this one'], {
      cwd: TEST_DATA_DIR,
      env: { ...env, DRAFTSMAN_URL: stack.apiUrl, DRAFTSMAN_TOKEN: TEST_TOKENS.admin },
      timeout: 60_000,
    });
    expect(cli.code).toBe(0);
    expect((await stack.waitForEnd(rejected, 60_000)).status).toBe('rejected');
    await page.goto(`${stack.apiUrl}/ui/jobs/${rejected}`);
    await page.locator('h1 .status-rejected').waitFor({ timeout: 15_000 });
    await page.getByRole('cell', { name: 'rejected', exact: true }).first().waitFor();
    expect(problems).toEqual([]);
  } finally {
    await page.close();
    for (const id of [approved, rejected]) if ((await status(id)) === 'awaiting_approval') await stack.api('POST', `/v1/jobs/${id}/cancel`);
  }
});

test('axe-core finds no serious violation on the list, a job and the health page; a phone-sized job page', async () => {
  expect(hostileJob).not.toBe('');
  const page = await context.newPage();
  try {
    for (const [name, address, ready] of [
      ['jobs', '/ui/', 'tr[data-job]'],
      ['job', `/ui/jobs/${hostileJob}`, '.diff-files'],
      ['health', '/ui/health', '.health-ok'],
    ] as const) {
      await page.goto(`${stack.apiUrl}${address}`);
      await page.locator(ready).first().waitFor({ timeout: 15_000 });
      const { violations } = await new AxeBuilder({ page }).analyze();
      const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${name}: ${v.id} (${v.nodes.length})`);
      expect(serious).toEqual([]);
      if (name === 'health') await shot(page, 'dashboard-health');
    }
  } finally {
    await page.close();
  }
  const phone = await browser.newContext({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    storageState: await context.storageState(),
  });
  try {
    const page = await phone.newPage();
    await page.goto(`${stack.apiUrl}/ui/jobs/${hostileJob}`);
    await page.locator('.diff-files').waitFor({ timeout: 15_000 });
    // Nothing wider than the screen but the boxes that scroll on their own.
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await shot(page, 'dashboard-phone');
  } finally {
    await phone.close();
  }
});
