/**
 * How Draftsman scales with the size of a job: loops of 10, 100 and 1,000 iterations
 * (time per iteration and history per workflow run), and one step printing 50 MB
 * (stored, streamed, and the worker's memory meanwhile); and how long the run
 * command takes to come up.
 */
import fs from 'node:fs';
import path from 'node:path';
import { freePort } from '../testing/env';
import { startGitFixture } from '../testing/git-fixture';
import { waitFor } from '../testing/helpers';
import type { Measure } from './guarantees';
import type { BenchStack } from './harness';
import { processTree, rssMiB, sampler, startDraftsmanProcesses, startService } from './processes';
import { summarize } from './stats';

async function submit(apiUrl: string, authHeader: Record<string, string>, spec: unknown): Promise<string> {
  const res = await fetch(`${apiUrl}/v1/jobs`, { method: 'POST', headers: { ...authHeader, 'content-type': 'application/json' }, body: JSON.stringify(spec) });
  if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

async function ended(stack: BenchStack, id: string, timeoutMs: number): Promise<void> {
  await waitFor(async () => Boolean((await stack.store.getJob(id))?.finishedAt), `job ${id} to end`, { timeoutMs, everyMs: 100 });
  const job = (await stack.store.getJob(id))!;
  if (job.status !== 'succeeded') throw new Error(`job ${id} ${job.status}: ${job.error}`);
}

export async function longLoops(stack: BenchStack, lengths: number[]): Promise<Measure[]> {
  const repo = await startGitFixture(1);
  const procs = await startDraftsmanProcesses(stack, 'bench-loops');
  const measures: Measure[] = [];
  try {
    for (const n of lengths) {
      // One container per iteration: a loop command that never converges, no `until`.
      const id = await submit(procs.apiUrl, procs.authHeader, { repo: repo.url, commit: repo.head, loop: { command: 'false', maxIterations: n } });
      await ended(stack, id, 60 * 60_000);
      const loops = (await stack.store.getJob(id))!.steps.filter((s) => s.kind === 'loop');
      if (loops.length !== n) throw new Error(`expected ${n} loop steps, found ${loops.length}`);
      const starts = loops.map((s) => Date.parse(s.startedAt!));
      const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
      const tenth = Math.max(1, Math.floor(gaps.length / 10));
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const runs: number[] = [];
      for await (const w of stack.client.workflow.list({ query: `WorkflowId = "${id}"` })) {
        runs.push((await stack.client.workflow.getHandle(id, w.runId).fetchHistory()).events?.length ?? 0);
      }
      measures.push({
        name: `loop of ${n} iterations: time per iteration`,
        how: `start to start of consecutive loop containers; mean of the first tenth ${mean(gaps.slice(0, tenth)).toFixed(0)} ms, of the last tenth ${mean(gaps.slice(-tenth)).toFixed(0)} ms`,
        target: 'flat',
        summary: summarize(gaps),
      });
      measures.push({
        name: `loop of ${n} iterations: history events per workflow run`,
        how: `${runs.length} run(s) (continue-as-new every DRAFTSMAN_LOOP_ITERATIONS_PER_RUN = ${stack.config.DRAFTSMAN_LOOP_ITERATIONS_PER_RUN}); median and largest run`,
        target: 'bounded',
        summary: { ...summarize(runs), p95: Math.max(...runs) },
        unit: 'count',
      });
    }
  } finally {
    await Promise.allSettled([procs.stop(), repo.stop()]);
  }
  return measures;
}

export async function logVolume(stack: BenchStack, megabytes: number): Promise<Measure[]> {
  const repo = await startGitFixture(1);
  const bytes = megabytes * 2 ** 20;
  // The stored cap is raised above the volume so that all of it is kept.
  const procs = await startDraftsmanProcesses(stack, 'bench-logs', { DRAFTSMAN_STEP_LOG_MAX_BYTES: String(bytes + 2 ** 20) });
  try {
    const idle = rssMiB(procs.worker.pid);
    const workerPeak = sampler(() => rssMiB(procs.worker.pid));
    const t0 = performance.now();
    // Lines of 100 bytes.
    const id = await submit(procs.apiUrl, procs.authHeader, {
      repo: repo.url,
      commit: repo.head,
      setup: [`yes 'draftsman log volume benchmark: a line of one hundred bytes, repeated until the total is reached.' | head -c ${bytes}`],
    });
    await ended(stack, id, 10 * 60_000);
    const jobMs = performance.now() - t0;
    const peak = workerPeak.stop();
    const job = (await stack.store.getJob(id))!;
    const step = job.steps.find((s) => s.kind === 'setup')!;
    // Where the job's time went: before the step started (pickup, holder, clone), the step, and after it (patch, clean-up).
    const at = (iso: string | null) => Date.parse(iso ?? '');
    const phases = [at(step.startedAt) - at(job.createdAt), at(step.finishedAt) - at(step.startedAt), at(job.finishedAt) - at(step.finishedAt)].map((ms) =>
      (ms / 1000).toFixed(2),
    );
    // The last line, cut by head -c, is stored with a newline of its own.
    if ((step.logBytes ?? 0) < bytes || step.logTruncated) throw new Error(`stored ${step.logBytes} bytes of ${bytes} (truncated: ${step.logTruncated})`);

    const apiPeak = sampler(() => rssMiB(procs.api.pid));
    const s0 = performance.now();
    const res = await fetch(`${procs.apiUrl}/v1/jobs/${id}/logs?step=setup-0`, { headers: procs.authHeader });
    let received = 0;
    for await (const chunk of res.body!) received += (chunk as Uint8Array).byteLength;
    const streamMs = performance.now() - s0;
    const apiMax = apiPeak.stop();
    if (received < bytes) throw new Error(`streamed ${received} bytes, fewer than the ${bytes} stored`);
    return [
      {
        name: `one step printing ${megabytes} MiB: job time`,
        how: `POST to the job recorded finished; every byte stored; ${phases[0]} s before the step, ${phases[1]} s in it, ${phases[2]} s after`,
        summary: summarize([jobMs]),
      },
      {
        name: `${megabytes} MiB log streamed from the API`,
        how: `GET /v1/jobs/:id/logs (NDJSON, ${(received / 2 ** 20).toFixed(0)} MiB on the wire)`,
        summary: summarize([streamMs]),
      },
      {
        name: 'worker RSS while the step prints',
        how: `idle ${idle.toFixed(0)} MiB, peak sampled every 100 ms`,
        target: 'flat',
        summary: summarize([peak]),
        unit: 'MiB',
      },
      { name: 'API RSS while it streams the log', how: 'peak sampled every 100 ms', summary: summarize([apiMax]), unit: 'MiB' },
    ];
  } finally {
    await Promise.allSettled([procs.stop(), repo.stop()]);
  }
}

/** `npm start`'s program (dist/stack/main.js), installed and built: to ready, and its whole process tree's memory. */
export async function startUp(runs: number): Promise<Measure[]> {
  const dir = path.resolve('data', `bench-start-${process.pid}`);
  const fresh: number[] = [];
  const again: number[] = [];
  let stackRss = 0;
  try {
    for (let i = 0; i < runs; i++) {
      fs.rmSync(dir, { recursive: true, force: true });
      for (const [samples, label] of [
        [fresh, 'fresh'],
        [again, 'again'],
      ] as const) {
        const [temporalPort, uiPort, pgPort] = [await freePort(), await freePort(), await freePort()];
        const t0 = performance.now();
        const svc = await startService(
          'dist/stack/main.js',
          {
            PORT: '0',
            TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
            DRAFTSMAN_TEMPORAL_UI_PORT: String(uiPort),
            DRAFTSMAN_EMBEDDED_PG_PORT: String(pgPort),
            DRAFTSMAN_DATA_DIR: dir,
            DRAFTSMAN_LOG_LEVEL: 'WARN',
            DATABASE_URL: '',
          },
          'press Ctrl-C to stop',
        );
        samples.push(performance.now() - t0);
        if (label === 'again' && i === runs - 1) {
          // Idle, a few seconds after start-up: the stack process, the Temporal dev server and PostgreSQL's processes.
          await new Promise((r) => setTimeout(r, 3000));
          stackRss = processTree(svc.pid).reduce(
            (sum, pid) =>
              sum +
              (() => {
                try {
                  return rssMiB(pid);
                } catch {
                  return 0;
                }
              })(),
            0,
          );
        }
        await svc.stop();
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return [
    {
      name: 'start-up, new data folder',
      how: 'dist/stack/main.js to its ready line (PostgreSQL initdb, dev server, worker, API)',
      target: '< 15 s',
      summary: summarize(fresh),
    },
    { name: 'start-up, existing data folder', how: 'the same, restarted on the data of the previous start', target: '< 15 s', summary: summarize(again) },
    {
      name: 'whole embedded stack RSS, idle',
      how: 'sum of VmRSS over the run command and its process tree (dev server, PostgreSQL)',
      target: '< 1 GB (954 MiB)',
      summary: summarize([stackRss]),
      unit: 'MiB',
    },
  ];
}
