/**
 * What Draftsman adds on top of Docker: a job of N trivial steps against the same
 * containers run directly with dockerode, alternating, and the time from
 * POST /v1/jobs to the job's first container started.
 */
import { startGitFixture } from '../testing/git-fixture';
import { sleep } from '../testing/helpers';
import type { Measure } from './guarantees';
import { type BenchStack, benchWorker } from './harness';
import { rawJob } from './raw';
import { summarize } from './stats';

async function submit(stack: BenchStack, spec: unknown): Promise<string> {
  const res = await fetch(`${stack.apiUrl}/v1/jobs`, {
    method: 'POST',
    headers: { ...stack.authHeader, 'content-type': 'application/json' },
    body: JSON.stringify(spec),
  });
  if (res.status !== 202) throw new Error(`submit answered ${res.status}`);
  return ((await res.json()) as { id: string }).id;
}

async function finished(stack: BenchStack, id: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const job = await stack.store.getJob(id);
    if (job?.finishedAt) {
      if (job.status !== 'succeeded') throw new Error(`job ${id} ${job.status}: ${job.error}`);
      return;
    }
    if (Date.now() > deadline) throw new Error(`job ${id} did not end`);
    await sleep(10);
  }
}

export async function stepOverhead(stack: BenchStack, rounds: number, steps = 20): Promise<Measure[]> {
  const repo = await startGitFixture(1);
  const { worker, close } = await benchWorker(stack);
  const draftsman: number[] = [];
  const raw: number[] = [];

  /** The same containers (a clone, then N steps), same options, one after another, with dockerode alone. */
  async function rawRound(round: number): Promise<number> {
    const jobId = `bench-raw-${process.pid}-${round}`;
    const t0 = performance.now();
    await rawJob(
      stack.docker,
      stack.config,
      stack.store,
      jobId,
      repo,
      Array.from({ length: steps }, () => 'true'),
    );
    return performance.now() - t0;
  }

  try {
    await worker.runUntil(async () => {
      for (let r = 0; r < rounds; r++) {
        // Alternating, so that drift on a shared machine hits both sides alike.
        const t0 = performance.now();
        const id = await submit(stack, { repo: repo.url, commit: repo.head, setup: Array.from({ length: steps }, () => 'true') });
        await finished(stack, id);
        draftsman.push(performance.now() - t0);
        raw.push(await rawRound(r));
      }
    });
  } finally {
    await Promise.allSettled([close(), repo.stop()]);
  }
  const ratio = draftsman.map((d, i) => d / raw[i]!);
  const ratioSummary = summarize(ratio);
  return [
    {
      name: `job of ${steps} trivial steps (Draftsman)`,
      how: 'POST /v1/jobs to the job recorded finished: clone + steps + cleanup',
      summary: summarize(draftsman),
    },
    { name: `same ${steps + 1} containers (raw dockerode)`, how: 'create, start, wait, remove each, plus the workspace volume', summary: summarize(raw) },
    {
      name: 'overhead ratio (Draftsman / raw)',
      how: 'per round, the two sides of one round side by side; 1.00 = no overhead',
      target: 'p95 <= 1.10',
      summary: ratioSummary,
      unit: 'ratio',
    },
  ];
}

/** `runs` samples of one-job rounds against a one-commit fixture and an in-process worker. */
async function sampled(stack: BenchStack, runs: number, sample: (repo: { url: string; head: string }, i: number) => Promise<number>): Promise<number[]> {
  const repo = await startGitFixture(1);
  const { worker, close } = await benchWorker(stack);
  const samples: number[] = [];
  try {
    await worker.runUntil(async () => {
      for (let i = 0; i < runs; i++) samples.push(await sample(repo, i));
    });
  } finally {
    await Promise.allSettled([close(), repo.stop()]);
  }
  return samples;
}

export async function pickupLatency(stack: BenchStack, runs: number): Promise<Measure> {
  const samples = await sampled(stack, runs, async (repo) => {
    const t0 = Date.now();
    const id = await submit(stack, { repo: repo.url, commit: repo.head, setup: ['true'] });
    await finished(stack, id);
    const clone = (await stack.store.getJob(id))!.steps.find((s) => s.kind === 'clone')!;
    // The engine's own start time of the first container, against the wall clock at submit.
    return Date.parse(clone.startedAt!) - t0;
  });
  return {
    name: 'pickup latency',
    how: 'POST /v1/jobs to the first container started (engine StartedAt), free capacity',
    target: 'p50 <= 150 ms, p95 <= 300 ms',
    summary: summarize(samples),
  };
}

/**
 * As the cross-provider sandbox benchmarks measure (the API call to the first command's
 * output): POST /v1/jobs to the first line of the job's first own command read from the
 * public follow stream (GET /v1/jobs/:id/logs?follow=true, Server-Sent Events). Draftsman's
 * clone of a one-commit repository comes before that command, and is counted.
 */
export async function firstOutput(stack: BenchStack, runs: number): Promise<Measure> {
  const samples = await sampled(stack, runs, async (repo, i) => {
    const marker = `first-output-${i}-${process.pid}`;
    const t0 = performance.now();
    const id = await submit(stack, { repo: repo.url, commit: repo.head, setup: [`echo ${marker}`] });
    const res = await fetch(`${stack.apiUrl}/v1/jobs/${id}/logs?follow=true`, { headers: stack.authHeader });
    if (!res.ok || !res.body) throw new Error(`follow answered ${res.status}`);
    const decoder = new TextDecoder();
    let text = '';
    let seenAt: number | null = null;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true });
      if (text.includes(marker)) {
        seenAt = performance.now() - t0;
        break;
      }
    }
    if (seenAt === null) throw new Error(`job ${id}: its output never reached the follow stream`);
    await finished(stack, id);
    return seenAt;
  });
  return {
    name: 'API call to the first command output',
    how: "POST /v1/jobs to the first line of the job's first command (after its clone) read from GET /v1/jobs/:id/logs?follow=true; free capacity",
    summary: summarize(samples),
  };
}
