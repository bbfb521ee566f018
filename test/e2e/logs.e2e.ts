import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createApp } from '../../api/app';
import { Authenticator, parseTokens } from '../../api/auth';
import type { JobView } from '../../common/job';
import { fakeSpec } from '../../testing/fake-spec';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { listen, waitForContainer } from '../../testing/helpers';
import { startTestStack, TEST_TOKENS, type TestStack } from '../../testing/stack';
import { startWorkerProcess } from '../../testing/worker-process';

interface Line {
  step: string;
  stream: string;
  time: string;
  text: string;
}

// A small per-step cap, so that the truncation test stays small.
const CAP = 4096;
let stack: TestStack;
let repo: GitFixture;
beforeAll(async () => {
  [stack, repo] = await Promise.all([startTestStack({ DRAFTSMAN_STEP_LOG_MAX_BYTES: String(CAP) }), startGitFixture(2)]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
});

const submit = (spec: Record<string, unknown>) => stack.submit({ repo: repo.url, commit: repo.head, ...spec });

async function storedLines(id: string, query = ''): Promise<Line[]> {
  const res = await fetch(`${stack.apiUrl}/v1/jobs/${id}/logs${query}`, { headers: stack.authHeader });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('application/x-ndjson');
  const text = await res.text();
  return text
    ? text
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as Line)
    : [];
}

/** Reads an SSE follow to its end, noting when each line arrived. */
async function follow(
  id: string,
  headers: Record<string, string> = {},
  query = '',
): Promise<{ lines: (Line & { at: number; eventId: string })[]; end: { status: string } }> {
  const res = await fetch(`${stack.apiUrl}/v1/jobs/${id}/logs?follow=true${query}`, { headers: { ...stack.authHeader, ...headers } });
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const lines: (Line & { at: number; eventId: string })[] = [];
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let split;
    while ((split = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, split);
      buffer = buffer.slice(split + 2);
      const type = /^event: (\w+)/m.exec(event)?.[1];
      const data = /^data: (.*)$/m.exec(event)?.[1];
      if (type === 'line') lines.push({ ...(JSON.parse(data!) as Line), at: Date.now(), eventId: /^id: (.*)$/m.exec(event)?.[1] ?? '' });
      if (type === 'end') return { lines, end: JSON.parse(data!) as { status: string } };
    }
  }
  throw new Error('the stream ended without an end event');
}

test('following a job streams lines while its step runs, in order, tagged with the step, and ends with the job', async () => {
  const id = await submit({
    setup: ['for i in 1 2 3 4 5; do echo "line-$i"; sleep 1; done; echo oops >&2'],
    validate: ['echo validated'],
  });
  const { lines, end } = await follow(id);
  const job = (await stack.api<JobView>('GET', `/v1/jobs/${id}`)).body;
  expect(end.status).toBe('succeeded');
  expect(lines.map((l) => `${l.step} ${l.stream} ${l.text}`)).toEqual([
    'setup-0 stdout line-1',
    'setup-0 stdout line-2',
    'setup-0 stdout line-3',
    'setup-0 stdout line-4',
    'setup-0 stdout line-5',
    'setup-0 stderr oops',
    'validate-0 stdout validated',
  ]);
  const setup = job.steps.find((s) => s.kind === 'setup')!;
  // The first line reached the client seconds before the step ended.
  expect(lines[0]!.at).toBeLessThan(Date.parse(setup.finishedAt!) - 2000);
  expect(Date.parse(lines[1]!.time) - Date.parse(lines[0]!.time)).toBeGreaterThanOrEqual(900);

  // A client that comes late gets the backlog; one step can be asked for alone.
  expect((await storedLines(id)).map((l) => l.text)).toEqual(lines.map((l) => l.text));
  expect((await storedLines(id, '?step=validate-0')).map((l) => l.text)).toEqual(['validated']);
  const late = await follow(id);
  expect(late.lines.map((l) => l.text)).toEqual(lines.map((l) => l.text));

  expect(setup).toMatchObject({ exitCode: 0, oomKilled: false, logTruncated: false });
  expect(setup.durationMs).toBeGreaterThanOrEqual(5000);
  expect((await stack.api('GET', `/v1/jobs/${id}/logs?step=bogus`)).status).toBe(400);
  expect((await stack.api('GET', '/v1/jobs/job-nope/logs')).status).toBe(404);
});

test('a stream resumes after the last line event it got (Last-Event-ID, or ?lastEventId=): nothing lost, nothing repeated', async () => {
  const id = await submit({ setup: ['for i in 1 2 3 4 5 6; do echo "a-$i"; echo "b-$i" >&2; sleep 0.3; done'], validate: ['echo done'] });
  const whole = await follow(id);
  expect(whole.end.status).toBe('succeeded');
  const texts = whole.lines.map((l) => l.text);
  expect(texts).toHaveLength(13);
  // Every line event has its own id, in the order sent.
  expect(new Set(whole.lines.map((l) => l.eventId)).size).toBe(13);
  for (const l of whole.lines) expect(l.eventId).toMatch(/^\d+\.\d+$/);
  for (const k of [0, 1, 5, 11, 12]) {
    const resumed = await follow(id, { 'last-event-id': whole.lines[k]!.eventId });
    expect([k, resumed.lines.map((l) => l.text)]).toEqual([k, texts.slice(k + 1)]);
    expect(resumed.end.status).toBe('succeeded');
  }
  const byQuery = await follow(id, {}, `&lastEventId=${whole.lines[6]!.eventId}`);
  expect(byQuery.lines.map((l) => l.text)).toEqual(texts.slice(7));
  const bad = await fetch(`${stack.apiUrl}/v1/jobs/${id}/logs?follow=true`, { headers: { ...stack.authHeader, 'last-event-id': 'yesterday' } });
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as { code: string }).code).toBe('invalid_query');
});

test('output past the per-step cap is cut with a marker, the step runs to its end, and the job view says so', async () => {
  const id = await submit({ setup: ['seq 1 20000; echo done > finished'], validate: ['test -f finished'] });
  const job = await stack.waitForEnd(id);
  expect(job.status).toBe('succeeded');
  const setup = job.steps.find((s) => s.kind === 'setup')!;
  expect(setup.logTruncated).toBe(true);
  expect(setup.logBytes).toBeLessThanOrEqual(CAP);
  const lines = await storedLines(id, '?step=setup-0');
  expect(lines[0]!.text).toBe('1');
  expect(lines.at(-1)!.text).toMatch(/output truncated: this step printed more than the 4096-byte cap/);
  expect(lines.length).toBeLessThan(2000);
});

test('logs survive a worker killed mid-step: no line lost, none repeated', async () => {
  const taskQueue = `${stack.config.DRAFTSMAN_TASK_QUEUE}-logs`;
  const env = {
    TEMPORAL_ADDRESS: stack.config.TEMPORAL_ADDRESS,
    DATABASE_URL: stack.config.DATABASE_URL!,
    DRAFTSMAN_TASK_QUEUE: taskQueue,
    ...stack.workerEnv,
  };
  const first = await startWorkerProcess(env);
  const { JobsClient } = await import('../../client/jobs');
  const jobs = new JobsClient(stack.client, { taskQueue });
  const { id } = await jobs.start({
    repo: repo.url,
    commit: repo.head,
    setup: ['for i in $(seq 1 12); do echo "n-$i"; sleep 0.5; done'],
  });
  await waitForContainer(stack.runner, { jobId: id, kind: 'setup', index: 0 });
  // Kill once some lines are stored and more are still to come.
  for (let i = 0; i < 100 && (await storedLines(id)).length < 3; i++) await new Promise((r) => setTimeout(r, 100));
  first.child.kill('SIGKILL');
  await first.exited;
  const second = await startWorkerProcess(env);
  try {
    const job = await stack.waitForEnd(id);
    expect(job.status).toBe('succeeded');
    expect((await storedLines(id)).map((l) => l.text)).toEqual(Array.from({ length: 12 }, (_, i) => `n-${i + 1}`));
  } finally {
    second.child.kill('SIGTERM');
    await second.exited;
  }
});

test('the patch of a loop that edits files is stored, binary-safe, and applies to the commit', async () => {
  const id = await submit({
    commit: repo.commits[0],
    loop: {
      command: "echo edited >> marker; printf 'a\\000b\\377' > blob.bin; echo new > added.txt",
      maxIterations: 1,
    },
    validate: ['git status --porcelain | grep -q marker'],
  });
  const job = await stack.waitForEnd(id);
  expect(job.status).toBe('succeeded');
  expect(job.patch?.truncated).toBe(false);
  const res = await fetch(`${stack.apiUrl}/v1/jobs/${id}/patch`, { headers: stack.authHeader });
  expect(res.status).toBe(200);
  expect(res.headers.get('x-draftsman-patch-truncated')).toBe('false');
  const patch = Buffer.from(await res.arrayBuffer());
  expect(patch.length).toBe(job.patch!.bytes);
  expect(patch.toString()).toContain('+edited');
  expect(patch.toString()).toContain('GIT binary patch');

  // Applied to a fresh checkout of the commit, it reproduces the loop's files.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'draftsman-patch-'));
  try {
    execFileSync('git', ['clone', '-q', repo.path, dir]);
    execFileSync('git', ['checkout', '-q', repo.commits[0]!], { cwd: dir });
    execFileSync('git', ['apply', '--binary', '-'], { cwd: dir, input: patch });
    expect(fs.readFileSync(path.join(dir, 'marker'), 'utf8')).toBe('commit-1\nedited\n');
    expect(fs.readFileSync(path.join(dir, 'blob.bin'))).toEqual(Buffer.from([0x61, 0, 0x62, 0xff]));
    expect(fs.readFileSync(path.join(dir, 'added.txt'), 'utf8')).toBe('new\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }

  const noLoop = await submit({ validate: ['true'] });
  await stack.waitForEnd(noLoop);
  expect((await stack.api('GET', `/v1/jobs/${noLoop}/patch`)).status).toBe(404);
});

test('log streams past DRAFTSMAN_MAX_FOLLOW_STREAMS get 429 with Retry-After; one closing makes room, and reads without follow are not counted', async () => {
  // A job that stays queued (no worker serves it): its streams stay open.
  const jobId = `follow-ceiling-${process.pid}`;
  await stack.store.recordAccepted(jobId, `run-${jobId}`, fakeSpec());
  const app = createApp({
    store: stack.store,
    jobs: stack.jobs,
    config: { ...stack.config, DRAFTSMAN_MAX_FOLLOW_STREAMS: 2 },
    auth: new Authenticator(parseTokens(`a:read:${TEST_TOKENS.admin}`, 'test'), 10_000),
  });
  const server = await listen(app);
  const url = `${server.url}/v1/jobs/${jobId}/logs`;
  const open: AbortController[] = [];
  const follow = async () => {
    const stop = new AbortController();
    const res = await fetch(`${url}?follow=true`, { headers: { authorization: `Bearer ${TEST_TOKENS.admin}` }, signal: stop.signal });
    if (res.status === 200) open.push(stop);
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: res.status === 200 ? null : await res.text() };
  };
  try {
    expect((await follow()).status).toBe(200);
    expect((await follow()).status).toBe(200);
    const refused = await follow();
    expect(refused.status).toBe(429);
    expect(refused.retryAfter).toBe('5');
    expect((JSON.parse(refused.body!) as { code: string }).code).toBe('too_many_streams');
    expect((await fetch(url, { headers: { authorization: `Bearer ${TEST_TOKENS.admin}` } })).status).toBe(200);
    open.shift()!.abort();
    // The server sees the close at its next poll.
    const deadline = Date.now() + 5_000;
    let again = await follow();
    while (again.status === 429 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      again = await follow();
    }
    expect(again.status).toBe(200);
  } finally {
    for (const c of open) c.abort();
    await server.close();
  }
});
