/**
 * Live-log fanout: 1 and then N followers (SSE) of one job on an API process, while lines
 * are stored at a steady rate. What the database does (its transactions per second, the
 * benchmark's own writes taken out), how long a line takes from its storage to each
 * follower, and the API's memory meanwhile. The job has no worker: its chunks are written
 * here, as a worker's activity writes them, so that only the fanout is measured.
 */
import { fakeSpec } from '../testing/fake-spec';
import type { Measure } from './guarantees';
import type { BenchStack } from './harness';
import { BENCH_TOKEN, rssMiB, sampler, startService } from './processes';
import { summarize } from './stats';
import { freePort } from '../testing/env';

/** Committed transactions of the benchmark's database: each statement outside a transaction is one. */
async function transactions(stack: BenchStack): Promise<number> {
  const { rows } = await stack.store.pool.query<{ n: string }>(
    'SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()',
  );
  return Number(rows[0]!.n);
}

interface Round {
  queriesPerSecond: number;
  lagMs: number[];
  rssMiB: number;
  delivered: number;
  expected: number;
}

async function round(
  stack: BenchStack,
  apiUrl: string,
  apiPid: number,
  followers: number,
  opts: { lines: number; everyMs: number; settleMs: number },
): Promise<Round> {
  const jobId = `bench-fanout-${followers}-${Date.now()}`;
  await stack.store.recordAccepted(jobId, `run-${jobId}`, fakeSpec());
  const storedAt: number[] = [];
  const lags: number[] = [];
  let delivered = 0;
  const stops: AbortController[] = [];
  let connected = 0;
  const streams = Array.from({ length: followers }, async () => {
    const stop = new AbortController();
    stops.push(stop);
    const res = await fetch(`${apiUrl}/v1/jobs/${jobId}/logs?follow=true`, { headers: { authorization: `Bearer ${BENCH_TOKEN}` }, signal: stop.signal });
    if (res.status !== 200) throw new Error(`follow answered ${res.status}: ${await res.text()}`);
    let buffer = '';
    let counted = false;
    try {
      for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += Buffer.from(c).toString();
        if (!counted && buffer.includes('event: status')) {
          counted = true;
          connected++;
        }
        for (const m of buffer.matchAll(/"text":"L(\d+)"/g)) {
          const at = storedAt[Number(m[1])];
          if (at !== undefined) lags.push(Date.now() - at);
          delivered++;
        }
        buffer = buffer.slice(buffer.lastIndexOf('\n\n') + 2);
      }
    } catch {
      // aborted at the end of the round
    }
  });
  const connectDeadline = Date.now() + 30_000;
  while (connected < followers && Date.now() < connectDeadline) await new Promise((r) => setTimeout(r, 50));
  if (connected < followers) throw new Error(`only ${connected} of ${followers} followers connected in 30 s`);
  // A backend reports its counts when it goes idle, at most once a second, else within
  // 10 s: the followers' connecting must not be counted in the round, nor its own reads missed.
  await new Promise((r) => setTimeout(r, opts.settleMs));

  const rss = sampler(() => rssMiB(apiPid));
  const before = await transactions(stack);
  const started = Date.now();
  for (let i = 0; i < opts.lines; i++) {
    await stack.store.logs.append(jobId, {
      kind: 'setup',
      index: 0,
      chunk: i,
      firstLine: i,
      lines: [{ t: new Date().toISOString(), s: 'o', x: `L${i}` }],
      bytes: 8,
      truncated: false,
    });
    storedAt[i] = Date.now();
    await new Promise((r) => setTimeout(r, opts.everyMs));
  }
  const deadline = Date.now() + 10_000;
  while (delivered < followers * opts.lines && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, opts.settleMs));
  const seconds = (Date.now() - started) / 1000;
  // Taken out: the benchmark's writes and its two readings of the counter.
  const queries = (await transactions(stack)) - before - opts.lines - 1;
  const peak = rss.stop();
  for (const s of stops) s.abort();
  await Promise.all(streams);
  return { queriesPerSecond: queries / seconds, lagMs: lags, rssMiB: peak, delivered, expected: followers * opts.lines };
}

/**
 * `settleMs`: how long to wait before and after a round's counted part, since a backend
 * reports its counts within 10 s of going idle (11 s for a true count; a smoke run takes less).
 */
export async function fanout(stack: BenchStack, { followers, lines, settleMs }: { followers: number; lines: number; settleMs: number }): Promise<Measure[]> {
  const port = await freePort();
  const api = await startService(
    'dist/api/main.js',
    {
      TEMPORAL_ADDRESS: stack.config.TEMPORAL_ADDRESS,
      DATABASE_URL: stack.config.DATABASE_URL!,
      PORT: String(port),
      DRAFTSMAN_API_TOKENS: `bench:read+write:${BENCH_TOKEN}`,
      DRAFTSMAN_API_RATE_PER_MINUTE: '1000000',
      DRAFTSMAN_MAX_FOLLOW_STREAMS: String(followers + 10),
      // INFO: the line that says it listens.
      DRAFTSMAN_LOG_LEVEL: 'INFO',
    },
    'draftsman API listening',
  );
  try {
    const apiUrl = `http://127.0.0.1:${port}`;
    const everyMs = 100;
    const one = await round(stack, apiUrl, api.pid, 1, { lines, everyMs, settleMs });
    const many = await round(stack, apiUrl, api.pid, followers, { lines, everyMs, settleMs });
    for (const r of [one, many]) if (r.delivered !== r.expected) throw new Error(`fanout delivered ${r.delivered} of ${r.expected} lines`);
    const ratio = many.queriesPerSecond / Math.max(one.queriesPerSecond, 0.001);
    const how = (r: Round) => `${r.lagMs.length} deliveries; database ${r.queriesPerSecond.toFixed(1)} statements/s; API RSS peak ${r.rssMiB.toFixed(0)} MiB`;
    return [
      {
        name: 'log fanout, 1 follower: storage to delivery',
        how: `${lines} lines stored ${everyMs} ms apart, one SSE follower; ${how(one)}`,
        target: '< 250 ms p95',
        summary: summarize(one.lagMs),
      },
      {
        name: `log fanout, ${followers} followers: storage to delivery`,
        how: `the same lines, ${followers} SSE followers of the job; ${how(many)}`,
        target: '< 250 ms p95',
        summary: summarize(many.lagMs),
      },
      {
        name: `log fanout: database statements/s, ${followers} followers vs 1`,
        how: `pg_stat_database transactions from the first write to ${(settleMs / 1000).toFixed(0)} s after the last delivery (backends report within 10 s), the benchmark's writes taken out: ${many.queriesPerSecond.toFixed(1)}/s vs ${one.queriesPerSecond.toFixed(1)}/s`,
        target: '<= 2x',
        summary: summarize([ratio]),
        unit: 'ratio',
      },
      {
        name: `log fanout: API RSS with ${followers} followers`,
        how: `peak resident memory of the API process during the round (1 follower: ${one.rssMiB.toFixed(0)} MiB)`,
        summary: summarize([many.rssMiB]),
        unit: 'MiB',
      },
    ];
  } finally {
    await api.stop();
  }
}
