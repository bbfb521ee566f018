/**
 * Draftsman's own processes as a user runs them (node dist/api/main.js and
 * dist/worker/main.js), for measures that need their memory apart from the benchmark's.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import { projectRoot } from '../common/paths';
import { killOnExit } from '../stack/temporal';
import { freePort, TEST_PAYLOAD_KEYS } from '../testing/env';
import { waitFor } from '../testing/helpers';
import type { BenchStack } from './harness';

export const BENCH_TOKEN = 'bench-process-token-0123456789';

export interface Service {
  child: ChildProcess;
  pid: number;
  output(): string;
  stop(): Promise<void>;
}

/**
 * The Node options the image and `npm start` run with, so that what is measured is
 * what ships; BENCH_NODE_FLAGS adds more (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile).
 */
export const NODE_FLAGS = ['--max-semi-space-size=2', ...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean)];
/** The environment the image and `npm start` give them (glibc's malloc arenas). */
export const NODE_ENV = { MALLOC_ARENA_MAX: '2' };

/** Starts `node <script>` and resolves once its output contains `ready`. */
export async function startService(script: string, env: Record<string, string>, ready: string): Promise<Service> {
  const child = spawn(process.execPath, [...NODE_FLAGS, script], {
    cwd: projectRoot(),
    env: { ...process.env, ...NODE_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killOnExit(child, 'SIGKILL');
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  child.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitFor(() => output.includes(ready) || child.exitCode !== null, `${script} to start`, { timeoutMs: 60_000 });
    if (child.exitCode !== null) throw new Error(`${script} exited (${child.exitCode}):\n${output}`);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    child,
    pid: child.pid!,
    output: () => output,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Resident set size of a process, in MiB (Linux /proc). */
export function rssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}

/** The process and all its descendants (Linux /proc), for the memory of a whole stack. */
export function processTree(root: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4 (ppid) follows the command name in parentheses, which may hold spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
    } catch {
      // The process ended while we looked.
    }
  }
  const out: number[] = [];
  const visit = (pid: number) => {
    out.push(pid);
    for (const child of parents.get(pid) ?? []) visit(child);
  };
  visit(root);
  return out;
}

let ticksPerSecond: number | undefined;

/**
 * CPU time (user and system, with that of reaped children) of the processes and
 * all their descendants, in ms (Linux /proc). Counters only grow, so the difference
 * of two readings is the CPU spent between them.
 */
export function cpuMs(roots: readonly number[]): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  let ticks = 0;
  for (const pid of new Set(roots.flatMap((r) => processTree(r)))) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      // utime, stime, cutime, cstime are fields 14-17; the text after the command name starts at field 3.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {
      // The process ended while we looked; its time went to its parent.
    }
  }
  return (ticks / ticksPerSecond) * 1000;
}

/** The Docker engine's long-lived processes (dockerd, containerd); per-container shims come and go and are not counted. */
export function enginePids(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((pid) => {
      try {
        return ['dockerd', 'containerd'].includes(fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim());
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Samples `read` every `everyMs` until stopped; returns the peak. */
export function sampler(read: () => number, everyMs = 100): { stop(): number } {
  let peak = read();
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, read());
    } catch {
      // The process ended.
    }
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

/** An API and a worker process on the benchmark's Temporal server and PostgreSQL. */
export async function startDraftsmanProcesses(
  stack: BenchStack,
  taskQueue: string,
  extra: Record<string, string> = {},
): Promise<{ api: Service; worker: Service; apiUrl: string; authHeader: Record<string, string>; stop(): Promise<void> }> {
  const env = {
    TEMPORAL_ADDRESS: stack.config.TEMPORAL_ADDRESS,
    DATABASE_URL: stack.config.DATABASE_URL!,
    DRAFTSMAN_TASK_QUEUE: taskQueue,
    DRAFTSMAN_EGRESS_SOCKET_DIR: stack.config.DRAFTSMAN_EGRESS_SOCKET_DIR!,
    // The egress service serves the jobs of its own deployment only.
    DRAFTSMAN_DEPLOYMENT_ID: stack.config.DRAFTSMAN_DEPLOYMENT_ID!,
    DRAFTSMAN_EGRESS_EXCEPTIONS: stack.config.DRAFTSMAN_EGRESS_EXCEPTIONS.join(','),
    DRAFTSMAN_PAYLOAD_KEYS: TEST_PAYLOAD_KEYS,
    DRAFTSMAN_LOG_LEVEL: 'WARN',
    ...extra,
  };
  const port = await freePort();
  const worker = await startService(
    'dist/worker/main.js',
    {
      ...env,
      DRAFTSMAN_WORKFLOW_BUNDLE: stack.bundlePath,
      DRAFTSMAN_JANITOR_INTERVAL_SECONDS: '0',
      DRAFTSMAN_WORKER_METRICS_PORT: '0',
      DRAFTSMAN_LOG_LEVEL: 'INFO',
    },
    'polling task queue',
  );
  let api: Service;
  try {
    api = await startService(
      'dist/api/main.js',
      {
        ...env,
        PORT: String(port),
        DRAFTSMAN_API_TOKENS: `bench:read+write:${BENCH_TOKEN}`,
        DRAFTSMAN_API_RATE_PER_MINUTE: '1000000',
        DRAFTSMAN_LOG_LEVEL: 'INFO',
      },
      'draftsman API listening',
    );
  } catch (err) {
    await worker.stop();
    throw err;
  }
  return {
    api,
    worker,
    apiUrl: `http://127.0.0.1:${port}`,
    authHeader: { authorization: `Bearer ${BENCH_TOKEN}` },
    stop: async () => {
      await Promise.allSettled([api.stop(), worker.stop()]);
    },
  };
}
