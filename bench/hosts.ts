/**
 * Many hosts: jobs per minute with one host and with two (the second a worker on a private
 * Docker engine on the same machine: on 2 cores a second host adds overhead and
 * correctness, not speed), and the pickup of a job waiting in line for a host: from the
 * end of the job whose room it takes to its own placement (the wake an ended job sends).
 */
import path from 'node:path';
import { NativeConnection } from '@temporalio/worker';
import { JobsClient } from '../client/jobs';
import type { JobSpec } from '../common/spec';
import { DockerRunner } from '../runner/docker/docker-runner';
import { type GitFixture, startGitFixture } from '../testing/git-fixture';
import { waitFor } from '../testing/helpers';
import { type PrivateEngine, removeEngineFolder, startPrivateEngine } from '../testing/private-engine';
import { createWorker, type HostWorker, stepPolicy } from '../worker/worker';
import type { Measure } from './guarantees';
import type { BenchStack } from './harness';
import { summarize } from './stats';

/** Two trivial steps after the clone: what is measured is the orchestration, not the work. */
const SETUP = ['true', 'true'];

let queues = 0;

/** Workers of one fresh task queue, one per engine given (the first the stack's own), `capacity` jobs each. */
async function hostsOn(stack: BenchStack, engines: (PrivateEngine | null)[], capacity: number) {
  const taskQueue = `bench-hosts-${process.pid}-${++queues}`;
  const config = { ...stack.config, DRAFTSMAN_TASK_QUEUE: taskQueue, DRAFTSMAN_MAX_CONCURRENT_STEPS: capacity };
  const workers: HostWorker[] = [];
  // A connection each: the SDK takes one worker per task queue and connection (two hosts of one machine are two processes in production).
  const connections: NativeConnection[] = [];
  for (const [i, engine] of engines.entries()) {
    const connection = await NativeConnection.connect({ address: stack.config.TEMPORAL_ADDRESS });
    connections.push(connection);
    workers.push(
      await createWorker({
        config: { ...config, DRAFTSMAN_HOST_ID: `bench-${i}` },
        store: stack.store,
        runner: engine ? new DockerRunner(engine.docker, stepPolicy(config)) : stack.runner,
        connection,
        workflowBundle: { codePath: stack.bundlePath },
      }),
    );
  }
  const jobs = new JobsClient(stack.client, { taskQueue });
  return {
    jobs,
    /** Runs the workers while `fn` runs, then stops them. */
    async during<T>(fn: () => Promise<T>): Promise<T> {
      const done = fn();
      try {
        await Promise.all(workers.map((w) => w.runUntil(done.catch(() => undefined))));
        return await done;
      } finally {
        for (const c of connections) await c.close();
      }
    },
  };
}

async function allEnded(stack: BenchStack, ids: string[]): Promise<void> {
  await waitFor(
    async () => (await stack.store.endedJobs(ids)).size === ids.length,
    () => `${ids.length} jobs to end`,
    { timeoutMs: 20 * 60_000, everyMs: 100 },
  );
  for (const id of ids) {
    const job = (await stack.store.getJob(id))!;
    if (job.status !== 'succeeded') throw new Error(`job ${id} ${job.status}: ${job.error}`);
  }
}

/** Jobs per minute: `jobs` submitted at once, to the end of the last, `rounds` times. */
async function jobsPerMinute(stack: BenchStack, repo: GitFixture, engines: (PrivateEngine | null)[], jobs: number, rounds: number): Promise<number[]> {
  const hosts = await hostsOn(stack, engines, 2);
  const spec: JobSpec = { repo: repo.url, commit: repo.head, setup: SETUP };
  return hosts.during(async () => {
    const perMinute: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      const ids = await Promise.all(Array.from({ length: jobs }, async () => (await hosts.jobs.start(spec)).id));
      await allEnded(stack, ids);
      perMinute.push(jobs / ((performance.now() - t0) / 60_000));
    }
    return perMinute;
  });
}

/**
 * A line of `waiting` jobs behind one host with room for one: for each job after the
 * first, its placement after the end of the one before it (the store's times).
 */
async function pickupFromLine(stack: BenchStack, repo: GitFixture, waiting: number): Promise<number[]> {
  const hosts = await hostsOn(stack, [null], 1);
  const spec: JobSpec = { repo: repo.url, commit: repo.head, setup: ['sleep 1'] };
  return hosts.during(async () => {
    const ids: string[] = [];
    // One after another, so that the line's order is the submission order.
    for (let i = 0; i <= waiting; i++) ids.push((await hosts.jobs.start(spec)).id);
    await allEnded(stack, ids);
    const { rows } = await stack.store.pool.query<{ id: string; placed_at: Date; finished_at: Date }>(
      'SELECT id, placed_at, finished_at FROM jobs WHERE id = ANY($1::text[]) ORDER BY placed_at',
      [ids],
    );
    return rows.slice(1).map((r, k) => r.placed_at.getTime() - rows[k]!.finished_at.getTime());
  });
}

export async function hostsMeasures(stack: BenchStack, opts: { jobs: number; rounds: number; waiting: number }): Promise<Measure[]> {
  const repo = await startGitFixture(1);
  const dir = path.join(stack.dir, 'host-b');
  const engine = await startPrivateEngine({ dataRoot: path.join(dir, 'engine'), images: ['draftsman-runner:latest'], log: () => undefined });
  try {
    const one = await jobsPerMinute(stack, repo, [null], opts.jobs, opts.rounds);
    const two = await jobsPerMinute(stack, repo, [null, engine], opts.jobs, opts.rounds);
    const pickup = await pickupFromLine(stack, repo, opts.waiting);
    const how = (n: number) =>
      `${opts.jobs} jobs (clone and 2 trivial steps) at once, ${n} host${n > 1 ? 's' : ''} with room for 2 each${n > 1 ? ' (the second a private engine on the same 2 cores)' : ''}; jobs per minute`;
    return [
      { name: 'throughput, 1 host', how: how(1), summary: summarize(one), unit: 'count' },
      { name: 'throughput, 2 hosts', how: how(2), summary: summarize(two), unit: 'count' },
      {
        name: 'pickup from the line for a host',
        how: `${opts.waiting} jobs waiting behind a host with room for one: a job's placement after the end of the one before it`,
        target: 'p95 < 1 s',
        summary: summarize(pickup),
      },
    ];
  } finally {
    await repo.stop();
    await engine.stop();
    await removeEngineFolder(dir);
  }
}
