/**
 * How fast the guarantees act: cancel request to SIGTERM inside the step, and a
 * worker's death to its step being followed again by another worker.
 */
import net from 'node:net';
import { JobsClient } from '../client/jobs';
import type { BenchStack } from './harness';
import { benchWorker } from './harness';
import { summarize, type Summary } from './stats';
import { startGitFixture } from '../test/e2e/git-fixture';
import { sleep, waitFor, waitForContainer } from '../test/e2e/helpers';
import { startWorkerProcess, type WorkerProcess } from '../test/e2e/worker-process';

export interface Measure {
  name: string;
  how: string;
  target?: string;
  summary: Summary;
  /** Samples are milliseconds unless said otherwise (`count` is a plain number, e.g. jobs per second). */
  unit?: 'ms' | 'ratio' | 'count' | 'MiB';
}

/** A TCP server that records when each step reports (the step sends its job id). */
async function reportServer(): Promise<{ port: number; seen: Map<string, number>; stop(): Promise<void> }> {
  const seen = new Map<string, number>();
  const server = net.createServer((s) => {
    let data = '';
    s.on('data', (d) => (data += d.toString()));
    s.on('end', () => seen.set(data.trim(), performance.now()));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

// Benchmarks poll tightly: the poll interval is part of what they would measure.
const until = (check: () => boolean | Promise<boolean>, timeoutMs: number, what: string) =>
  waitFor(check, what, { timeoutMs, everyMs: 5 });

export async function cancelLatency(stack: BenchStack, runs: number): Promise<Measure> {
  const repo = await startGitFixture(1);
  const reports = await reportServer();
  const { worker, close } = await benchWorker(stack);
  // On SIGTERM the step reports its job id over loopback (perl ships in the runner image).
  const step =
    `trap 'perl -MIO::Socket::INET -e "\\$s = IO::Socket::INET->new(q{127.0.0.1:${reports.port}}) or exit 1; ` +
    `print \\$s \\$ENV{DRAFTSMAN_JOB_ID}"; exit 42' TERM; sleep 300 & wait`;
  const samples: number[] = [];
  try {
    await worker.runUntil(async () => {
      for (let i = 0; i < runs; i++) {
        const res = await fetch(`${stack.apiUrl}/v1/jobs`, {
          method: 'POST',
          headers: { ...stack.authHeader, 'content-type': 'application/json' },
          body: JSON.stringify({ repo: repo.url, commit: repo.head, setup: [step] }),
        });
        const { id } = (await res.json()) as { id: string };
        await waitForContainer(stack.runner, { jobId: id, kind: 'setup', index: 0 });
        await sleep(300); // the trap is installed
        const t0 = performance.now();
        const cancel = await fetch(`${stack.apiUrl}/v1/jobs/${id}/cancel`, {
          method: 'POST',
          headers: { ...stack.authHeader, 'content-type': 'application/json' },
          body: '{}',
        });
        if (cancel.status !== 202) throw new Error(`cancel answered ${cancel.status}`);
        await until(() => reports.seen.has(id), 30_000, `SIGTERM in ${id}`);
        samples.push(reports.seen.get(id)! - t0);
        await until(async () => Boolean((await stack.store.getJob(id))?.finishedAt), 60_000, `end of ${id}`);
      }
    });
  } finally {
    await Promise.allSettled([close(), reports.stop(), repo.stop()]);
  }
  return {
    name: 'cancel latency',
    how: 'POST /v1/jobs/:id/cancel to the step\'s SIGTERM trap reporting over loopback (includes starting perl in the trap)',
    target: 'p95 < 1 s',
    summary: summarize(samples),
  };
}

export async function recoveryLatency(stack: BenchStack, runs: number): Promise<Measure> {
  const repo = await startGitFixture(1);
  const taskQueue = 'bench-recovery';
  const env = {
    TEMPORAL_ADDRESS: stack.config.TEMPORAL_ADDRESS,
    DATABASE_URL: stack.config.DATABASE_URL!,
    DRAFTSMAN_TASK_QUEUE: taskQueue,
    DRAFTSMAN_STEP_NETWORK: 'host',
    DRAFTSMAN_WORKFLOW_BUNDLE: stack.bundlePath,
    DRAFTSMAN_STOP_GRACE_SECONDS: '1',
    DRAFTSMAN_DEPLOYMENT_ID: stack.config.DRAFTSMAN_DEPLOYMENT_ID!,
  };
  const workers: WorkerProcess[] = [];
  const jobs = new JobsClient(stack.client, { taskQueue });
  const samples: number[] = [];
  try {
    workers.push(await startWorkerProcess(env), await startWorkerProcess(env));
    for (let i = 0; i < runs; i++) {
      const { id } = await jobs.start({ repo: repo.url, commit: repo.head, setup: ['sleep 60'] });
      await waitForContainer(stack.runner, { jobId: id, kind: 'setup', index: 0 });
      const handle = stack.client.workflow.getHandle(id);
      const pending = async () => (await handle.describe()).raw.pendingActivities?.[0];
      const first = await pending();
      const pid = Number(String(first?.lastWorkerIdentity).split('@')[0]);
      const victim = workers.find((w) => w.child.pid === pid);
      if (!victim) throw new Error(`no worker process with pid ${pid}`);
      victim.child.kill('SIGKILL');
      const t0 = performance.now();
      await until(
        async () => {
          const p = await pending();
          return (p?.attempt ?? 0) >= 2 && p?.state === 2; // PENDING_ACTIVITY_STATE_STARTED
        },
        60_000,
        'the step to be picked up again',
      );
      samples.push(performance.now() - t0);
      await victim.exited;
      workers.splice(workers.indexOf(victim), 1, await startWorkerProcess(env));
      await jobs.cancel(id, 'benchmark run over');
      await until(async () => Boolean((await stack.store.getJob(id))?.finishedAt), 60_000, `end of ${id}`);
    }
  } finally {
    for (const w of workers) w.child.kill('SIGTERM');
    await Promise.allSettled(workers.map((w) => w.exited));
    await repo.stop();
  }
  return {
    name: 'recovery latency',
    how: 'SIGKILL of the worker running a step to the step\'s next attempt started (and re-attached) on the other worker',
    target: 'within seconds (heartbeat timeout 5 s)',
    summary: summarize(samples),
  };
}
