/**
 * Throughput and memory: N jobs of three trivial steps submitted at once to an API
 * and a worker process running K steps at a time, against the same containers run
 * by K raw dockerode loops; the processes' resident memory idle and under that load.
 */
import { startGitFixture } from '../testing/git-fixture';
import { waitFor } from '../testing/helpers';
import type { Measure } from './guarantees';
import type { BenchStack } from './harness';
import { cpuMs, enginePids, rssMiB, sampler, startDraftsmanProcesses } from './processes';
import { rawJob } from './raw';
import { summarize } from './stats';

const STEPS = ['true', 'true', 'true'];
/** The processes that are Draftsman's own, apart from the engine they drive. */
const CONTROL_PLANE = ['Temporal server', 'worker', 'API', 'PostgreSQL'];

export async function throughput(stack: BenchStack, { jobs, concurrency, rounds }: { jobs: number; concurrency: number; rounds: number }): Promise<Measure[]> {
  const repo = await startGitFixture(1);
  const procs = await startDraftsmanProcesses(stack, 'bench-throughput', { DRAFTSMAN_MAX_CONCURRENT_STEPS: String(concurrency) });
  const draftsman: number[] = [];
  const raw: number[] = [];
  const idle = { api: rssMiB(procs.api.pid), worker: rssMiB(procs.worker.pid) };
  const peak = { api: 0, worker: 0 };
  // Where the CPU goes, per job: on 2 cores a millisecond taken by orchestration is one the containers do not get.
  const engine = enginePids();
  const groups: Record<string, () => number> = {
    'Temporal server': () => cpuMs([stack.pids.temporal]),
    worker: () => cpuMs([procs.worker.pid]),
    API: () => cpuMs([procs.api.pid]),
    PostgreSQL: () => cpuMs([stack.pids.postgres]),
    'engine (dockerd, containerd)': () => cpuMs(engine),
    benchmark: () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    },
  };
  const cpu = { draftsman: [] as Record<string, number>[], raw: [] as Record<string, number>[] };
  async function counted(into: Record<string, number>[], round: () => Promise<number>): Promise<number> {
    const before = Object.fromEntries(Object.entries(groups).map(([k, read]) => [k, read()]));
    const elapsed = await round();
    into.push(Object.fromEntries(Object.entries(groups).map(([k, read]) => [k, (read() - before[k]!) / jobs])));
    return elapsed;
  }

  async function draftsmanRound(n: number): Promise<number> {
    const apiPeak = sampler(() => rssMiB(procs.api.pid));
    const workerPeak = sampler(() => rssMiB(procs.worker.pid));
    const t0 = performance.now();
    const ids = await Promise.all(
      Array.from({ length: n }, async () => {
        const res = await fetch(`${procs.apiUrl}/v1/jobs`, {
          method: 'POST',
          headers: { ...procs.authHeader, 'content-type': 'application/json' },
          body: JSON.stringify({ repo: repo.url, commit: repo.head, setup: STEPS }),
        });
        if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${await res.text()}`);
        return ((await res.json()) as { id: string }).id;
      }),
    );
    // One query per poll for all of them, so that the benchmark's own polling takes
    // little of the CPU the jobs compete for.
    let done = 0;
    await waitFor(
      async () => (done = (await stack.store.endedJobs(ids)).size) === ids.length,
      () => `${ids.length - done} of ${n} jobs to end`,
      { timeoutMs: 30 * 60_000, everyMs: 100 },
    );
    const elapsed = performance.now() - t0;
    for (const id of ids) {
      const job = (await stack.store.getJob(id))!;
      if (job.status !== 'succeeded') throw new Error(`job ${id} ${job.status}: ${job.error}`);
    }
    peak.api = Math.max(peak.api, apiPeak.stop());
    peak.worker = Math.max(peak.worker, workerPeak.stop());
    return elapsed;
  }

  /** The same containers per job (clone, three steps, in order, on a volume), K jobs at a time. */
  async function rawRound(round: number, n: number): Promise<number> {
    const t0 = performance.now();
    let next = 0;
    const loop = async () => {
      for (let j = next++; j < n; j = next++) {
        const jobId = `bench-tp-raw-${process.pid}-${round}-${j}`;
        await rawJob(stack.docker, stack.config, stack.store, jobId, repo, STEPS);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, loop));
    return performance.now() - t0;
  }

  try {
    // One small untimed round of each side first, so that neither is measured cold (JIT, engine caches).
    await draftsmanRound(Math.min(jobs, 10));
    await rawRound(-1, Math.min(jobs, 10));
    for (let r = 0; r < rounds; r++) {
      draftsman.push(await counted(cpu.draftsman, () => draftsmanRound(jobs)));
      raw.push(await counted(cpu.raw, () => rawRound(r, jobs)));
    }
  } finally {
    await Promise.allSettled([procs.stop(), repo.stop()]);
  }
  // Throughput is jobs per second; the ratio of throughputs is the inverse ratio of times.
  const ratio = draftsman.map((d, i) => raw[i]! / d);
  const perSecond = (ms: number[]) => ms.map((m) => (jobs / m) * 1000);
  /** Total CPU per job of each round, and the breakdown of the round with the median total. */
  const cpuMeasure = (side: 'Draftsman' | 'raw dockerode', rows: Record<string, number>[]): Measure => {
    const totals = rows.map((row) => Object.values(row).reduce((a, b) => a + b, 0));
    const mid = rows[totals.indexOf(summarize(totals).median)]!;
    const parts = Object.entries(mid)
      .filter(([, ms]) => ms >= 0.5)
      .map(([k, ms]) => `${k} ${ms.toFixed(0)}`);
    return {
      name: `CPU per job, ${side} round`,
      how: `user + system time of the processes over the round, per job (ms): ${parts.join(', ')}; the per-container shims are not counted`,
      summary: summarize(totals),
    };
  };
  return [
    {
      name: `throughput, ${jobs} jobs of ${STEPS.length} steps at K=${concurrency} (Draftsman)`,
      how: 'all submitted at once to the API process; until all recorded finished; jobs per second',
      summary: summarize(perSecond(draftsman)),
      unit: 'count',
    },
    {
      name: `throughput, same containers at K=${concurrency} (raw dockerode)`,
      how: `${concurrency} loops, each running a job's clone and steps in order on its volume; jobs per second`,
      summary: summarize(perSecond(raw)),
      unit: 'count',
    },
    {
      name: 'throughput ratio (Draftsman / raw)',
      how: 'per round, side by side; 1.00 = as fast as raw',
      target: '>= 0.95',
      summary: summarize(ratio),
      unit: 'ratio',
    },
    cpuMeasure('Draftsman', cpu.draftsman),
    cpuMeasure('raw dockerode', cpu.raw),
    {
      name: 'control-plane CPU per job',
      how: 'the Draftsman rounds: Temporal server + worker + API + PostgreSQL, per job (the engine and the benchmark not counted)',
      target: '<= 100 ms',
      summary: summarize(cpu.draftsman.map((row) => CONTROL_PLANE.reduce((sum, k) => sum + (row[k] ?? 0), 0))),
    },
    { name: 'API process RSS, idle', how: 'VmRSS after start-up, before any job', summary: summarize([idle.api]), unit: 'MiB' },
    { name: 'worker process RSS, idle', how: 'VmRSS after start-up, before any job', summary: summarize([idle.worker]), unit: 'MiB' },
    {
      name: 'API + worker RSS, peak under the throughput run',
      how: `peak VmRSS of each, sampled every 100 ms over the Draftsman rounds, summed (API ${peak.api.toFixed(0)} MiB, worker ${peak.worker.toFixed(0)} MiB)`,
      target: '< 300 MB (286 MiB)',
      summary: summarize([peak.api + peak.worker]),
      unit: 'MiB',
    },
  ];
}
