/**
 * The Temporal Web UI as `npm start` serves it, with payloads encrypted: under the API's
 * /temporal, behind its sign-in, decoding through the API's codec with the session's
 * cookie. A person who signed in reads a job's decrypted input; nobody else decodes.
 */
import fs from 'node:fs';
import type { Server } from 'node:http';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Browser } from 'playwright-core';
import { createApp } from '../../api/app';
import { Authenticator, parseTokens } from '../../api/auth';
import { TEMPORAL_UI_PATH } from '../../api/temporal-ui';
import { dataConverterFor } from '../../common/codec';
import { projectRoot } from '../../common/paths';
import { type DevServer, startTemporalDevServer, temporalCliPath } from '../../stack/temporal';
import { launchChromium } from '../../testing/browser';
import { freePort, TEST_DATA_DIR } from '../../testing/env';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { waitFor } from '../../testing/helpers';
import { startTestStack, TEST_TOKENS, type TestStack } from '../../testing/stack';

const ARTIFACTS = path.join(projectRoot(), 'test-artifacts');
let temporal: DevServer;
let stack: TestStack;
let repo: GitFixture;
let browser: Browser;
let api: Server;
let apiUrl: string;

beforeAll(async () => {
  // The API's port first: the UI server is told its codec endpoint when it starts.
  const apiPort = await freePort();
  apiUrl = `http://127.0.0.1:${apiPort}`;
  temporal = await startTemporalDevServer({
    cli: temporalCliPath(path.join(projectRoot(), 'data')),
    ui: { publicPath: TEMPORAL_UI_PATH, codecEndpoint: `${apiUrl}/codec` },
    logFile: path.join(TEST_DATA_DIR, `web-ui-codec-${process.pid}.log`),
  });
  // Payloads encrypted with the tests' keys, as every stack of the tests has them.
  [stack, repo] = await Promise.all([startTestStack({ TEMPORAL_ADDRESS: temporal.address }), startGitFixture(1)]);
  expect(stack.config.DRAFTSMAN_PAYLOAD_KEYS).toBeTruthy();
  const app = createApp({
    store: stack.store,
    jobs: stack.jobs,
    codec: dataConverterFor(stack.config)?.payloadCodecs[0],
    config: { ...stack.config, DRAFTSMAN_TEMPORAL_UI_PROXY: temporal.uiUrl },
    auth: new Authenticator(parseTokens(`admin:read+write+approve+admin:${TEST_TOKENS.admin}`, 'test'), 1_000_000),
  });
  api = await new Promise<Server>((resolve) => {
    const s = app.listen(apiPort, '127.0.0.1', () => resolve(s));
  });
  browser = await launchChromium();
  fs.mkdirSync(ARTIFACTS, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await new Promise((r) => (api ? api.close(r) : r(undefined)));
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
  await temporal?.stop();
});

test("a signed-in operator reads a job's decrypted input in the Web UI; without a session neither the UI nor the codec answers", async () => {
  const marker = `only-in-the-input-${randomUUID()}`;
  const id = await stack.submit({ repo: repo.url, commit: repo.head, setup: [`echo ${marker}`] });
  expect((await stack.waitForEnd(id)).status).toBe('succeeded');

  // Without a session: the codec refuses, and the UI sends the browser to sign in.
  const decode = await fetch(`${apiUrl}/codec/decode`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"payloads":[]}' });
  expect(decode.status).toBe(401);
  const anonymous = await fetch(`${apiUrl}${TEMPORAL_UI_PATH}/`, { headers: { accept: 'text/html' }, redirect: 'manual' });
  expect([anonymous.status, anonymous.headers.get('location')]).toEqual([303, `/login?next=${encodeURIComponent(`${TEMPORAL_UI_PATH}/`)}`]);
  // The history itself holds no plain text of the input.
  const raw = JSON.stringify(await stack.client.workflowService.getWorkflowExecutionHistory({ namespace: 'default', execution: { workflowId: id } }));
  expect(raw).not.toContain(marker);

  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  try {
    const refused: string[] = [];
    page.on('response', (r) => void (r.status() >= 400 && refused.push(`${r.status()} ${r.request().method()} ${r.url()}`)));
    await page.goto(`${apiUrl}${TEMPORAL_UI_PATH}/namespaces/default/workflows/${id}`);
    // Sent to the sign-in form, then back.
    await page.getByLabel('API token').fill(TEST_TOKENS.admin);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(new RegExp(`${TEMPORAL_UI_PATH}/namespaces/default/workflows/${id}`));
    const cookie = (await page.context().cookies()).find((c) => c.name === 'draftsman_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    await page.getByText(marker).first().waitFor({ timeout: 45_000 });
    // In the Input panel (the step summaries of the timeline are decoded too).
    const input = page.getByRole('heading', { name: 'Input', exact: true }).locator('xpath=..');
    expect(await input.innerText()).toContain(`echo ${marker}`);
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-ui-decrypted-input.png'), fullPage: true });
    // Not from a search attribute: the marker is in no attribute of the job.
    const described = await stack.client.workflow.getHandle(id).describe();
    expect(JSON.stringify(described.searchAttributes)).not.toContain(marker);
    // The job's user metadata names its repository and commit, and its phases.
    expect(await described.staticSummary()).toBe(`${repo.url} @ ${repo.head.slice(0, 12)}`);
    expect(await described.staticDetails()).toBe('- setup: 1 step');
    await page
      .getByRole('tab', { name: 'User Metadata' })
      .or(page.getByText('User Metadata', { exact: true }))
      .first()
      .click();
    // The UI decoded the summary and details (through the codec) and hands them to its
    // markdown frames, whose addresses carry them.
    const summary = `${repo.url} @ ${repo.head.slice(0, 12)}`;
    const framed = () => page.frames().map((f) => (URL.canParse(f.url()) ? new URL(f.url()).searchParams.get('content') : null));
    await waitFor(
      () => [summary, '- setup: 1 step'].every((c) => framed().includes(c)),
      () => `the summary and details in frames (${framed().join(', ')})`,
      {
        timeoutMs: 15_000,
      },
    );
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-ui-user-metadata.png'), fullPage: true });
    // Every request the UI made through the API was answered (its queries are POSTs of its own origin).
    expect(refused).toEqual([]);
  } finally {
    await page.close();
  }
});

test('a session: opened with a token into an HttpOnly SameSite=Strict cookie, its changes need its CSRF token, and signing out ends it', async () => {
  const call = (method: string, p: string, headers: Record<string, string> = {}, body?: unknown) =>
    fetch(`${apiUrl}${p}`, {
      method,
      headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body ? JSON.stringify(body) : undefined,
    });
  expect((await call('POST', '/v1/session', {}, { token: 'not-a-token-0123456789' })).status).toBe(401);
  const opened = await call('POST', '/v1/session', {}, { token: TEST_TOKENS.admin });
  expect(opened.status).toBe(201);
  const setCookie = opened.headers.get('set-cookie') ?? '';
  expect(setCookie).toMatch(/^draftsman_session=[\w-]{43}; Max-Age=\d+; Path=\/; Expires=[^;]+; HttpOnly; SameSite=Strict$/);
  const { csrfToken, principal } = (await opened.json()) as { csrfToken: string; principal: string };
  expect(principal).toBe('admin');
  const cookie = { cookie: setCookie.split(';')[0]! };

  expect((await call('GET', '/v1/jobs?limit=1', cookie)).status).toBe(200);
  const spec = { repo: repo.url, commit: repo.head, setup: ['sleep 30'] };
  const forged = await call('POST', '/v1/jobs', cookie, spec);
  expect([forged.status, ((await forged.json()) as { code: string }).code]).toEqual([403, 'forbidden']);
  const started = await call('POST', '/v1/jobs', { ...cookie, 'x-csrf-token': csrfToken }, spec);
  expect(started.status).toBe(202);
  const { id } = (await started.json()) as { id: string };
  expect((await call('POST', `/v1/jobs/${id}/cancel`, { ...cookie, 'x-csrf-token': csrfToken })).status).toBe(202);
  expect((await stack.waitForEnd(id)).status).toBe('cancelled');

  expect((await call('DELETE', '/v1/session', cookie)).status).toBe(403);
  expect((await call('DELETE', '/v1/session', { ...cookie, 'x-csrf-token': csrfToken })).status).toBe(204);
  expect((await call('GET', '/v1/session', cookie)).status).toBe(401);
  expect((await call('GET', '/v1/jobs?limit=1', cookie)).status).toBe(401);
});
