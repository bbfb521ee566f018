/**
 * How fast the guarantees act: cancel request to SIGTERM inside the step, and a
 * worker's death to its step being followed again by another worker.
 */
import fs from 'node:fs';
import path from 'node:path';
import { volumeName } from '../runner/docker/convert';
import { JobsClient } from '../client/jobs';
import type { BenchStack } from './harness';
import { benchWorker } from './harness';
import { summarize, type Summary } from './stats';
import { startGitFixture } from '../testing/git-fixture';
import { sleep, waitFor, waitForContainer } from '../testing/helpers';
import { startWorkerProcess, type WorkerProcess } from '../testing/worker-process';

export interface Measure {
  name: string;
  how: string;
  target?: string;
  summary: Summary;
  /** Samples are milliseconds unless said otherwise (`count` is a plain number, e.g. jobs per second). */
  unit?: 'ms' | 'ratio' | 'count' | 'MiB';
}

/**
 * When the step's SIGTERM trap ran: it writes the time (ns since the epoch, the host's
 * clock) into a file of its workspace, which the benchmark reads through the volume's
 * folder on the engine's host. The step has no network, so nothing is reported over one.
 */
async function trapTime(stack: BenchStack, jobId: string): Promise<number | null> {
  const volume = await stack.docker.getVolume(volumeName(jobId, stack.config.DRAFTSMAN_DEPLOYMENT_ID!)).inspect();
  try {
    const ns = fs.readFileSync(path.join(volume.Mountpoint, '.sigterm-at'), 'utf8').trim();
    return /^\d+$/.test(ns) ? Number(BigInt(ns) / 1000n) / 1000 : null;
  } catch {
    return null;
  }
}

// Benchmarks poll tightly: the poll interval is part of what they would measure.
const until = (check: () => boolean | Promise<boolean>, timeoutMs: number, what: string) => waitFor(check, what, { timeoutMs, everyMs: 5 });

export async function cancelLatency(stack: BenchStack, runs: number): Promise<Measure> {
  const repo = await startGitFixture(1);
  const { worker, close } = await benchWorker(stack);
  // On SIGTERM the step writes the time into its workspace (written whole, then renamed).
  const step = `trap 'date +%s%N > .sigterm-at.tmp && mv .sigterm-at.tmp .sigterm-at; exit 42' TERM; sleep 300 & wait`;
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
        const t0 = Date.now();
        const cancel = await fetch(`${stack.apiUrl}/v1/jobs/${id}/cancel`, {
          method: 'POST',
          headers: { ...stack.authHeader, 'content-type': 'application/json' },
          body: '{}',
        });
        if (cancel.status !== 202) throw new Error(`cancel answered ${cancel.status}`);
        let at: number | null = null;
        await until(async () => (at = await trapTime(stack, id)) !== null, 30_000, `SIGTERM in ${id}`);
        samples.push(at! - t0);
        await until(async () => Boolean((await stack.store.getJob(id))?.finishedAt), 60_000, `end of ${id}`);
      }
    });
  } finally {
    await Promise.allSettled([close(), repo.stop()]);
  }
  return {
    name: 'cancel latency',
    how: "POST /v1/jobs/:id/cancel to the step's SIGTERM trap writing the time into its workspace (host clock; includes starting date in the trap)",
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
    DRAFTSMAN_EGRESS_SOCKET_DIR: stack.config.DRAFTSMAN_EGRESS_SOCKET_DIR!,
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
    how: "SIGKILL of the worker running a step to the step's next attempt started (and re-attached) on the other worker",
    target: 'within seconds (heartbeat timeout 5 s)',
    summary: summarize(samples),
  };
}
