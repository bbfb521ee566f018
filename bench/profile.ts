/**
 * Where the control plane's CPU goes per job: `node dist/bench/profile.js [jobs]` runs
 * jobs of three trivial steps (as the throughput measure does, K=4) against an
 * in-process worker and API, profiles that window with V8's sampling profiler, and
 * prints the CPU per job of each process (this one, the Temporal server, PostgreSQL,
 * the engine) and this process's JavaScript time by the code it ran in. The Temporal
 * SDK's core (Rust threads) is the process time V8 did not sample. The profile is
 * written to data/profile-<pid>.cpuprofile for a closer look (Chrome DevTools).
 */
import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { startGitFixture } from '../testing/git-fixture';
import { waitFor } from '../testing/helpers';
import { benchWorker, startBenchStack } from './harness';
import { cpuMs, enginePids } from './processes';

const STEPS = ['true', 'true', 'true'];

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

/** Which part of the code a sample's frame belongs to. */
function bucket(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native or builtin)';
  if (url.includes('workflow-bundle')) return 'workflow code (sandbox)';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1]!;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const own = /dist\/([^/]+)\//.exec(url);
  return own ? `draftsman ${own[1]}/` : url;
}

async function main() {
  const jobs = Number(process.argv[2] ?? 40);
  const stack = await startBenchStack();
  const repo = await startGitFixture(1);
  const { worker, close } = await benchWorker(stack, { DRAFTSMAN_MAX_CONCURRENT_STEPS: 4 });
  const session = new Session();
  session.connect();
  const submit = async () => {
    const res = await fetch(`${stack.apiUrl}/v1/jobs`, {
      method: 'POST',
      headers: { ...stack.authHeader, 'content-type': 'application/json' },
      body: JSON.stringify({ repo: repo.url, commit: repo.head, setup: STEPS }),
    });
    if (res.status !== 202) throw new Error(`submit answered ${res.status}`);
    return ((await res.json()) as { id: string }).id;
  };
  const round = async (n: number) => {
    const ids = await Promise.all(Array.from({ length: n }, submit));
    await waitFor(async () => (await stack.store.endedJobs(ids)).size === ids.length, 'jobs to end', { timeoutMs: 600_000, everyMs: 100 });
  };
  const engine = enginePids();
  try {
    await worker.runUntil(async () => {
      await round(8);
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 200 });
      const before = {
        self: process.cpuUsage(),
        temporal: cpuMs([stack.pids.temporal]),
        postgres: cpuMs([stack.pids.postgres]),
        engine: cpuMs(engine),
      };
      await session.post('Profiler.start');
      const t0 = performance.now();
      await round(jobs);
      const wall = performance.now() - t0;
      const { profile } = await session.post('Profiler.stop');
      const self = process.cpuUsage(before.self);
      const per = (ms: number) => (ms / jobs).toFixed(0).padStart(5);
      console.log(`${jobs} jobs in ${(wall / 1000).toFixed(1)} s; CPU per job (ms):`);
      console.log(`${per((self.user + self.system) / 1000)}  this process (worker, API, benchmark)`);
      console.log(`${per(cpuMs([stack.pids.temporal]) - before.temporal)}  Temporal server`);
      console.log(`${per(cpuMs([stack.pids.postgres]) - before.postgres)}  PostgreSQL`);
      console.log(`${per(cpuMs(engine) - before.engine)}  engine (dockerd, containerd)`);

      // Self time by bucket (samples are taken every `interval` µs of this thread's time).
      const nodes = new Map<number, ProfileNode>((profile.nodes as ProfileNode[]).map((n) => [n.id, n]));
      const deltas = profile.timeDeltas ?? [];
      const byBucket = new Map<string, number>();
      const byFunction = new Map<string, number>();
      (profile.samples ?? []).forEach((id, i) => {
        const n = nodes.get(id)!;
        const us = deltas[i + 1] ?? 0;
        const b = bucket(n.callFrame.url, n.callFrame.functionName);
        byBucket.set(b, (byBucket.get(b) ?? 0) + us);
        const f = `${n.callFrame.functionName || '(anonymous)'} ${path.basename(n.callFrame.url)}`;
        byFunction.set(f, (byFunction.get(f) ?? 0) + us);
      });
      const top = (m: Map<string, number>, k: number) =>
        [...m]
          .filter(([name]) => name !== '(idle)')
          .sort((a, b) => b[1] - a[1])
          .slice(0, k)
          .map(([name, us]) => `${per(us / 1000)}  ${name}`)
          .join('\n');
      console.log(`\nthis process's JavaScript, per job (ms), by code:\n${top(byBucket, 25)}`);
      console.log(`\nby function:\n${top(byFunction, 30)}`);
      const file = path.resolve('data', `profile-${process.pid}.cpuprofile`);
      fs.writeFileSync(file, JSON.stringify(profile));
      console.log(`\nprofile: ${file}`);
    });
  } finally {
    session.disconnect();
    await Promise.allSettled([close(), repo.stop()]);
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
