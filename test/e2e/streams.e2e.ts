/**
 * Live streams on the real stack: SSE and WebSocket followers that lose their connection
 * mid-stream, the notices between lines, one shared reader per followed job (PostgreSQL
 * LISTEN/NOTIFY), the long poll and the rerun.
 */
import type { Pool, PoolClient, QueryConfig } from 'pg';
import WebSocket from 'ws';
import { createApp } from '../../api/app';
import { Authenticator, parseTokens } from '../../api/auth';
import type { JobView } from '../../common/job';
import { JobStore } from '../../db/store';
import { fakeSpec } from '../../testing/fake-spec';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { listen } from '../../testing/helpers';
import { startTestStack, TEST_TOKENS, type TestStack } from '../../testing/stack';

interface Wire {
  event: string;
  id?: string;
  data: Record<string, unknown>;
}

let stack: TestStack;
let repo: GitFixture;
beforeAll(async () => {
  [stack, repo] = await Promise.all([startTestStack(), startGitFixture(2)]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
});

const submit = (spec: Record<string, unknown>) => stack.submit({ repo: repo.url, commit: repo.head, ...spec });

/** Parses an SSE body as it arrives; `onEvent` may return true to cut the connection. */
async function sse(url: string, headers: Record<string, string>, onEvent: (e: Wire & { retry?: number }) => boolean | void): Promise<'end' | 'cut'> {
  const stop = new AbortController();
  const res = await fetch(url, { headers: { ...stack.authHeader, ...headers }, signal: stop.signal });
  expect(res.status).toBe(200);
  let buffer = '';
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let split;
      while ((split = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, split);
        buffer = buffer.slice(split + 2);
        if (block.startsWith(':')) continue;
        const retry = /^retry: (\d+)$/m.exec(block)?.[1];
        const event = /^event: (\w+)$/m.exec(block)?.[1] ?? '';
        const id = /^id: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        const e = { event, ...(id ? { id } : {}), data: data ? (JSON.parse(data) as Record<string, unknown>) : {}, ...(retry ? { retry: Number(retry) } : {}) };
        if (onEvent(e)) {
          stop.abort();
          return 'cut';
        }
        if (event === 'end') return 'end';
      }
    }
  } catch (err) {
    if (stop.signal.aborted) return 'cut';
    throw err;
  }
  throw new Error('the stream closed without an end event');
}

/** Reads a WebSocket stream; `onEvent` may return true to cut the connection (terminate, no close frame). */
function ws(url: string, onEvent: (e: Wire) => boolean | void): Promise<'end' | 'cut'> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url.replace(/^http/, 'ws'), { headers: stack.authHeader });
    let ended = false;
    socket.on('message', (raw) => {
      const e = JSON.parse(String(raw)) as Wire;
      if (onEvent(e)) {
        socket.terminate();
        return resolve('cut');
      }
      if (e.event === 'end') ended = true;
    });
    socket.on('close', (code) => (ended && code === 1000 ? resolve('end') : reject(new Error(`closed with ${code} before the end`))));
    socket.on('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    socket.on('error', reject);
  });
}

type Transport = 'sse' | 'ws';

/** Follows a job to its end, cutting the connection after each count of lines in `cuts` and resuming after the last line id. */
async function followWithCuts(transport: Transport, jobId: string, cuts: number[]): Promise<{ lines: string[]; events: Wire[]; connections: number }> {
  const lines: string[] = [];
  const events: Wire[] = [];
  let lastId: string | undefined;
  let connections = 0;
  const pending = [...cuts];
  for (;;) {
    connections++;
    const onEvent = (e: Wire) => {
      events.push(e);
      if (e.event !== 'line') return false;
      lines.push(String(e.data.text));
      lastId = e.id;
      if (pending.length && lines.length >= pending[0]!) {
        pending.shift();
        return true;
      }
      return false;
    };
    const base = `${stack.apiUrl}/v1/jobs/${jobId}/logs`;
    const outcome =
      transport === 'sse'
        ? await sse(`${base}?follow=true`, lastId ? { 'last-event-id': lastId } : {}, onEvent)
        : await ws(`${base}/ws${lastId ? `?lastEventId=${lastId}` : ''}`, onEvent);
    if (outcome === 'end') return { lines, events, connections };
  }
}

const N = 40;
const numbered = `for i in $(seq 1 ${N}); do echo "n-$i"; sleep 0.1; done`;

test.each<Transport>(['sse', 'ws'])(
  'a %s follower cut 3 times mid-stream gets exactly 1..N in order, with step and status notices and an end',
  async (transport) => {
    const id = await submit({ setup: [numbered], validate: ['echo checked'] });
    const { lines, events, connections } = await followWithCuts(transport, id, [5, 15, 30]);
    expect(connections).toBe(4);
    expect(lines).toEqual([...Array.from({ length: N }, (_, i) => `n-${i + 1}`), 'checked']);
    // The notices: each connection says the status it finds, steps start and finish around their lines, the end names the outcome.
    const finished = events.filter((e) => e.event === 'step' && e.data.type === 'step_finished').map((e) => `${String(e.data.kind)}-${String(e.data.index)}`);
    expect(finished).toContain('validate-0');
    const validateStart = events.findIndex((e) => e.event === 'step' && e.data.type === 'step_started' && e.data.kind === 'validate');
    const checked = events.findIndex((e) => e.event === 'line' && e.data.text === 'checked');
    expect(validateStart).toBeGreaterThanOrEqual(0);
    expect(validateStart).toBeLessThan(checked);
    expect(events.filter((e) => e.event === 'status').length).toBeGreaterThanOrEqual(connections);
    expect(events[events.length - 1]).toEqual({ event: 'end', data: { status: 'succeeded' } });
    for (const e of events) expect(e.event === 'line' ? typeof e.id : 'none').toBe(e.event === 'line' ? 'string' : 'none');
  },
);

test('an SSE stream opens with a retry hint', async () => {
  const id = await submit({ validate: ['echo one'] });
  await stack.waitForEnd(id);
  const seen: (Wire & { retry?: number })[] = [];
  await sse(`${stack.apiUrl}/v1/jobs/${id}/logs?follow=true`, {}, (e) => void seen.push(e));
  expect(seen[0]?.retry).toBeGreaterThan(0);
  expect(seen.map((e) => e.event).filter(Boolean)).toEqual(['line', 'status', 'end']);
});

test('WebSocket refusals are problem documents: no token 401, bad resume point 400, unknown job 404, plain GET 426', async () => {
  const refused = (url: string, headers: Record<string, string>) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const socket = new WebSocket(url, { headers });
      socket.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += String(c)));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      socket.on('open', () => reject(new Error('upgraded')));
      socket.on('error', () => undefined);
    });
  const id = await submit({ validate: ['true'] });
  const base = `${stack.apiUrl.replace(/^http/, 'ws')}/v1/jobs/${id}/logs/ws`;
  const noToken = await refused(base, {});
  expect([noToken.status, (JSON.parse(noToken.body) as { code: string }).code]).toEqual([401, 'unauthorized']);
  const badResume = await refused(`${base}?lastEventId=nope`, stack.authHeader);
  expect([badResume.status, (JSON.parse(badResume.body) as { field: string }).field]).toEqual([400, 'lastEventId']);
  const unknownParam = await refused(`${base}?follow=true`, stack.authHeader);
  expect(unknownParam.status).toBe(400);
  const noJob = await refused(`${stack.apiUrl.replace(/^http/, 'ws')}/v1/jobs/job-nope/logs/ws`, stack.authHeader);
  expect(noJob.status).toBe(404);
  const plain = await stack.api('GET', `/v1/jobs/${id}/logs/ws`);
  expect(plain.status).toBe(426);
  await stack.waitForEnd(id);
});

/** A store whose pool counts the queries sent through it. */
function countingStore(pool: Pool): { store: JobStore; queries: () => number } {
  let n = 0;
  const counted = new Proxy(pool, {
    get(target, prop, receiver) {
      if (prop === 'query') {
        return (...args: [QueryConfig]) => {
          n++;
          return (target.query as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      if (prop === 'connect') {
        return async () => {
          const client: PoolClient = await target.connect();
          return new Proxy(client, {
            get(c, p) {
              if (p === 'query') return (...a: unknown[]) => (n++, (c.query as (...x: unknown[]) => unknown).apply(c, a));
              const v = Reflect.get(c, p) as unknown;
              return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(c) : v;
            },
          });
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { store: new JobStore(counted), queries: () => n };
}

test('one reader per followed job: 50 followers cost the database what one does, and every line reaches each of them at once', async () => {
  // A job no worker serves; its chunks are written here, as a worker's activity writes them.
  const jobId = `fanout-${process.pid}`;
  await stack.store.recordAccepted(jobId, `run-${jobId}`, fakeSpec());
  const { store, queries } = countingStore(stack.store.pool);
  const app = createApp({
    store,
    jobs: stack.jobs,
    config: { ...stack.config, DRAFTSMAN_MAX_FOLLOW_STREAMS: 100 },
    auth: new Authenticator(parseTokens(`a:read:${TEST_TOKENS.admin}`, 'test'), 100_000),
  });
  const server = await listen(app);
  let chunk = 0;
  try {
    const round = async (followers: number) => {
      const received = Array.from({ length: followers }, () => [] as { text: string; at: number }[]);
      const stops: AbortController[] = [];
      const streams = received.map(async (mine) => {
        const stop = new AbortController();
        stops.push(stop);
        const res = await fetch(`${server.url}/v1/jobs/${jobId}/logs?follow=true`, {
          headers: { authorization: `Bearer ${TEST_TOKENS.admin}` },
          signal: stop.signal,
        });
        let buffer = '';
        try {
          for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) {
            buffer += Buffer.from(c).toString();
            for (const m of buffer.matchAll(/event: line\ndata: (.*)\n\n/g))
              mine.push({ text: String((JSON.parse(m[1]!) as { text: string }).text), at: Date.now() });
            buffer = buffer.slice(buffer.lastIndexOf('\n\n') + 2);
          }
        } catch {
          // aborted below
        }
      });
      // Everyone has caught up with the backlog before the counted part starts.
      const backlog = chunk;
      const deadline = Date.now() + 20_000;
      while (received.some((r) => r.length < backlog) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 300));
      const before = queries();
      const written: number[] = [];
      for (let i = 0; i < 5; i++) {
        chunk++;
        await stack.store.logs.append(jobId, {
          kind: 'setup',
          index: 0,
          chunk,
          firstLine: chunk,
          lines: [{ t: new Date().toISOString(), s: 'o', x: `c${chunk}` }],
          bytes: 3,
          truncated: false,
        });
        written.push(Date.now());
        await new Promise((r) => setTimeout(r, 200));
      }
      await new Promise((r) => setTimeout(r, 500));
      const used = queries() - before;
      for (const s of stops) s.abort();
      await Promise.all(streams);
      const lag = received.flatMap((r) => r.slice(backlog).map((l, i) => l.at - written[i]!));
      return { used, texts: received.map((r) => r.map((l) => l.text)), lag };
    };
    const one = await round(1);
    const fifty = await round(50);
    expect(one.texts[0]).toEqual(['c1', 'c2', 'c3', 'c4', 'c5']);
    for (const t of fifty.texts) expect(t).toEqual(['c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9', 'c10']);
    // Per written chunk the reader reads state, events and chunks once, for all followers.
    expect(fifty.used).toBeLessThanOrEqual(2 * one.used + 3);
    expect(fifty.used).toBeLessThan(50);
    // Woken by the notification, not by a poll.
    expect(Math.max(...fifty.lag)).toBeLessThan(1000);
  } finally {
    await server.close();
  }
});

test('a reader keeps its followers going when its notification connection dies, and listens again', async () => {
  const jobId = `deaf-${process.pid}`;
  await stack.store.recordAccepted(jobId, `run-${jobId}`, fakeSpec());
  const stop = new AbortController();
  const got: string[] = [];
  const res = await fetch(`${stack.apiUrl}/v1/jobs/${jobId}/logs?follow=true`, { headers: stack.authHeader, signal: stop.signal });
  const reading = (async () => {
    try {
      for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) {
        for (const m of Buffer.from(c)
          .toString()
          .matchAll(/"text":"([^"]*)"/g))
          got.push(m[1]!);
      }
    } catch {
      // aborted at the end
    }
  })();
  const write = (chunk: number) =>
    stack.store.logs.append(jobId, {
      kind: 'setup',
      index: 0,
      chunk,
      firstLine: chunk,
      lines: [{ t: new Date().toISOString(), s: 'o', x: `d${chunk}` }],
      bytes: 3,
      truncated: false,
    });
  const until = async (n: number) => {
    const deadline = Date.now() + 10_000;
    while (got.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  };
  const listeners = async () =>
    Number((await stack.store.pool.query<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_activity WHERE query = 'LISTEN draftsman_jobs'`)).rows[0]!.n);
  try {
    await new Promise((r) => setTimeout(r, 300));
    await write(1);
    await until(1);
    expect(await listeners()).toBeGreaterThan(0);
    await stack.store.pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN draftsman_jobs'`);
    await write(2);
    await until(2);
    await write(3);
    await until(3);
    expect(got).toEqual(['d1', 'd2', 'd3']);
    const deadline = Date.now() + 10_000;
    while ((await listeners()) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await listeners()).toBeGreaterThan(0);
  } finally {
    stop.abort();
    await reading;
  }
});

test('GET /wait answers when the job ends, or with the job as it is after the timeout', async () => {
  const id = await submit({ setup: ['sleep 3'], validate: ['true'] });
  const early = await stack.api<JobView>('GET', `/v1/jobs/${id}/wait?timeout=1`);
  expect(early.status).toBe(200);
  expect(early.headers.get('x-draftsman-job-ended')).toBe('false');
  expect(early.body.finishedAt).toBeNull();
  const asked = Date.now();
  const done = await stack.api<JobView>('GET', `/v1/jobs/${id}/wait?timeout=60`);
  const answered = Date.now();
  expect(done.headers.get('x-draftsman-job-ended')).toBe('true');
  expect(done.body.status).toBe('succeeded');
  // It answered once the job ended, not at the timeout.
  expect(answered - asked).toBeLessThan(30_000);
  expect(answered - Date.parse(done.body.finishedAt!)).toBeLessThan(1_500);
  expect((await stack.api('GET', `/v1/jobs/${id}/wait?timeout=121`)).status).toBe(400);
  expect((await stack.api('GET', `/v1/jobs/${id}/wait?soon=1`)).status).toBe(400);
  expect((await stack.api('GET', '/v1/jobs/job-nope/wait?timeout=1')).status).toBe(404);
});

test('POST /rerun starts the spec again as a new job of the caller, linked both ways; its Idempotency-Key holds', async () => {
  const first = await submit({ validate: ['echo again'], labels: { pr: '7' } });
  await stack.waitForEnd(first);
  const rerun = await stack.api<{ id: string; rerunOf: string }>('POST', `/v1/jobs/${first}/rerun`);
  expect(rerun.status).toBe(202);
  expect(rerun.body.rerunOf).toBe(first);
  expect(rerun.body.id).not.toBe(first);
  const second = await stack.waitForEnd(rerun.body.id);
  const original = (await stack.api<JobView>('GET', `/v1/jobs/${first}`)).body;
  expect(second).toMatchObject({ status: 'succeeded', repo: original.repo, commit: original.commit, labels: { pr: '7' } });
  const created = (await stack.api<{ events: { type: string; data: Record<string, unknown> }[] }>('GET', `/v1/jobs/${rerun.body.id}/events`)).body.events.find(
    (e) => e.type === 'created',
  );
  expect(created?.data).toMatchObject({ rerunOf: first, principal: 'admin' });
  const linked = (await stack.api<{ events: { type: string; data: Record<string, unknown> }[] }>('GET', `/v1/jobs/${first}/events`)).body.events.filter(
    (e) => e.type === 'rerun',
  );
  expect(linked.map((e) => e.data.jobId)).toEqual([rerun.body.id]);

  const key = { 'idempotency-key': `rerun-${process.pid}` };
  const [a, b] = await Promise.all([
    stack.api<{ id: string }>('POST', `/v1/jobs/${first}/rerun`, {}, key),
    stack.api<{ id: string }>('POST', `/v1/jobs/${first}/rerun`, {}, key),
  ]);
  expect([a.status, b.status]).toEqual([202, 202]);
  expect(a.body.id).toBe(b.body.id);
  await stack.waitForEnd(a.body.id);

  expect((await stack.api('POST', `/v1/jobs/${first}/rerun`, undefined, { authorization: `Bearer ${TEST_TOKENS.reader}` })).status).toBe(403);
  expect((await stack.api('POST', `/v1/jobs/${first}/rerun`, { spec: {} })).status).toBe(400);
  expect((await stack.api('POST', '/v1/jobs/job-nope/rerun')).status).toBe(404);
  // Cancel, like rerun, takes no body at all.
  const long = await submit({ setup: ['sleep 30'] });
  expect((await stack.api('POST', `/v1/jobs/${long}/cancel`)).status).toBe(202);
  expect((await stack.waitForEnd(long)).status).toBe('cancelled');
});
