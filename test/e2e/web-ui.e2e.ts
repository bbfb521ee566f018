import fs from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { projectRoot } from '../../common/paths';
import { type DevServer, startTemporalDevServer, temporalCliPath } from '../../stack/temporal';
import { launchChromium } from '../../testing/browser';
import { TEST_DATA_DIR } from '../../testing/env';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { startTestStack, type TestStack } from '../../testing/stack';

// A dev server of this file's own, with its Web UI (the shared one is headless).
const ARTIFACTS = path.join(projectRoot(), 'test-artifacts');
let temporal: DevServer;
let stack: TestStack;
let repo: GitFixture;
let browser: Browser;

beforeAll(async () => {
  temporal = await startTemporalDevServer({
    cli: temporalCliPath(path.join(projectRoot(), 'data')),
    ui: true,
    logFile: path.join(TEST_DATA_DIR, `web-ui-${process.pid}.log`),
  });
  [stack, repo] = await Promise.all([
    // Without payload encryption: the summaries are payloads too, and this UI has no codec
    // server it could pass a token to (encrypted history is covered by encryption.e2e.ts, the
    // UI behind the API's sign-in, decoding, by web-ui-codec.e2e.ts).
    startTestStack({ TEMPORAL_ADDRESS: temporal.address, DRAFTSMAN_PAYLOAD_KEYS: '' }),
    startGitFixture(1),
  ]);
  browser = await launchChromium();
  fs.mkdirSync(ARTIFACTS, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
  await temporal?.stop();
});

test('the Temporal Web UI lists the finished job by its status attribute and shows its step activities', async () => {
  const res = await stack.api<{ id: string }>('POST', '/v1/jobs', {
    repo: repo.url,
    commit: repo.head,
    setup: ['echo set up'],
    validate: ['true'],
  });
  const id = res.body.id;
  expect((await stack.waitForEnd(id)).status).toBe('succeeded');

  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  try {
    // The workflow list, filtered by the custom search attribute the workflow keeps current.
    const query = encodeURIComponent(`DraftsmanStatus="succeeded"`);
    await page.goto(`${temporal.uiUrl}/namespaces/default/workflows?query=${query}`);
    const row = page.getByRole('link', { name: id });
    await row.waitFor({ timeout: 30_000 });
    expect(await page.getByText('DraftsmanStatus').first().isVisible()).toBe(true);
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-ui-workflows.png'), fullPage: true });

    await row.click();
    await page.getByText('runSteps').first().waitFor({ timeout: 30_000 });
    const text = await page.locator('body').innerText();
    // The timeline names each activity, and its summary names the steps it ran.
    expect(text).toContain(`clone ${repo.head.slice(0, 12)} of`);
    expect(text).toContain('setup-0: echo set up');
    expect(text).toContain('validate-0: true');
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-ui-job.png'), fullPage: true });

    await page
      .getByRole('tab', { name: 'Search Attributes' })
      .or(page.getByText('Search Attributes', { exact: true }))
      .first()
      .click();
    await page.getByText('DraftsmanStatus').first().waitFor({ timeout: 10_000 });
    const attributes = await page.locator('body').innerText();
    expect(attributes).toMatch(/DraftsmanStatus[\s\S]{0,80}succeeded/);
    expect(attributes).toContain(repo.url);
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-ui-search-attributes.png'), fullPage: true });
  } finally {
    await page.close();
  }
});
