/**
 * Warm starts: the time from a job's creation to its first loop step, for a Node project
 * whose setup is `npm ci` against the registry stand-in (bench/registry.ts: a stated
 * latency per request, a bandwidth all requests share). Four ways: cold (no cache, no
 * kept workspace); npm cache warm (the npm cache restored, `npm ci` offline); modules cache
 * warm (node_modules a cache in the workspace keyed by the lock, `npm ci` skipped on an
 * exact hit, as GitHub Actions users do with `cache-hit`); snapshot warm (the workspace
 * kept after the same setup: no clone, no setup).
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { JobSpec } from '../common/spec';
import type { Measure } from './guarantees';
import { type BenchStack, benchWorker } from './harness';
import type { Registry } from './registry';
import { summarize } from './stats';

export const NODE_IMAGE = 'draftsman-bench-node:latest';
const STANDIN_NODE = 'draftsman-standin/node:22';

/** The fixture's dependencies: a service's usual runtime set and a compiler (with theirs, 7.7 MiB packed). */
export const DEPENDENCIES = ['express', 'pino', 'zod', 'yaml', 'commander', 'ws', 'pg', 'prom-client', 'typescript'];
const SETUP = 'npm ci --ignore-scripts --no-audit --no-fund --prefer-offline';
/** With node_modules a cache: installed only when the lock's own entry was not restored. */
const MODULES_SETUP = `[ "$DRAFTSMAN_CACHE_MODULES_HIT" = exact ] || ${SETUP}`;
const WAYS = ['cold', 'cache', 'modules', 'snapshot'] as const;
type Way = (typeof WAYS)[number];

const has = (image: string) => {
  try {
    execFileSync('docker', ['image', 'inspect', image], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

/** The node step image, built from local images (the stand-in node image first, when it is missing). */
export function ensureNodeImage(): void {
  if (has(NODE_IMAGE)) return;
  if (!has(STANDIN_NODE)) execFileSync('bash', ['infra/standins/build.sh'], { stdio: 'inherit' });
  execFileSync('docker', ['build', '-q', '-t', NODE_IMAGE, 'infra/bench-node'], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** A repository with package.json and a package-lock.json resolved against the stand-in, served by the bench's git server. */
async function nodeFixture(registry: Registry, dependencies: readonly string[]): Promise<{ url: string; commit: string }> {
  const root = process.env.DRAFTSMAN_TEST_GIT_ROOT!;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'draftsman-warm-'));
  try {
    // The versions this project has installed (each package's own manifest, whatever its exports allow).
    const version = (d: string) => (JSON.parse(fs.readFileSync(path.resolve('node_modules', d, 'package.json'), 'utf8')) as { version: string }).version;
    const versions = Object.fromEntries(dependencies.map((d) => [d, `^${version(d)}`]));
    fs.writeFileSync(
      path.join(work, 'package.json'),
      `${JSON.stringify({ name: 'warm-fixture', version: '1.0.0', private: true, dependencies: versions }, null, 2)}\n`,
    );
    // The lock, resolved against the stand-in: the proxies of the machine are not in the way of a loopback address.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(https?_proxy|npm_config_)/i.test(k)));
    // Not a synchronous child: the stand-in answers from this process's event loop.
    await promisify(execFile)(
      'npm',
      [
        'install',
        '--package-lock-only',
        '--ignore-scripts',
        '--no-audit',
        '--no-fund',
        `--registry=${registry.url}`,
        `--cache=${path.join(work, '.npm-cache')}`,
      ],
      {
        cwd: work,
        env,
        timeout: 300_000,
      },
    );
    fs.rmSync(path.join(work, '.npm-cache'), { recursive: true, force: true });
    const git = (...args: string[]) => execFileSync('git', args, { cwd: work, encoding: 'utf8' }).trim();
    git('init', '-q', '-b', 'main');
    git('add', 'package.json', 'package-lock.json');
    git('-c', 'user.name=bench', '-c', 'user.email=bench@localhost', 'commit', '-q', '-m', 'fixture');
    const commit = git('rev-parse', 'HEAD');
    const name = `warm-${process.pid}-${Date.now().toString(36)}.git`;
    execFileSync('git', ['clone', '-q', '--bare', work, path.join(root, name)]);
    execFileSync('git', ['config', 'uploadpack.allowReachableSHA1InWant', 'true'], { cwd: path.join(root, name) });
    return { url: `http://127.0.0.2:${process.env.DRAFTSMAN_TEST_GIT_PORT}/${name}`, commit };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

export async function warmStarts(
  stack: BenchStack,
  registry: Registry,
  opts: { runs: number; dependencies: readonly string[]; link: { latencyMs: number; bytesPerSecond: number } },
): Promise<Measure[]> {
  const { runs, link } = opts;
  const fixture = await nodeFixture(registry, opts.dependencies);
  const base: JobSpec = {
    repo: fixture.url,
    commit: fixture.commit,
    image: NODE_IMAGE,
    env: { npm_config_registry: registry.url, npm_config_update_notifier: 'false' },
    egress: { allow: [registry.hostPort] },
    setup: [SETUP],
    loop: { command: `node -e "require('express'); require('typescript')"`, maxIterations: 1 },
    timeouts: { stepSeconds: 600 },
  };
  const ways = {
    cold: base,
    cache: { ...base, caches: [{ name: 'npm', key: "npm-{{ hashFiles('package-lock.json') }}" }] },
    modules: { ...base, setup: [MODULES_SETUP], caches: [{ name: 'modules', key: "modules-{{ hashFiles('package-lock.json') }}", path: 'node_modules' }] },
    snapshot: { ...base, snapshot: { after: 'setup' as const } },
  } satisfies Record<Way, JobSpec>;
  const { worker, close } = await benchWorker(stack, { DRAFTSMAN_ALLOWED_IMAGES: [NODE_IMAGE] });
  const times: Record<Way, number[]> = { cold: [], cache: [], modules: [], snapshot: [] };
  const downloaded: Record<Way, number[]> = { cold: [], cache: [], modules: [], snapshot: [] };
  /** Where the time goes: the setup step (npm ci), and Draftsman's own warm-start work (hash and cache restore, workspace restore). */
  const phases = {
    setup: { cold: [] as number[], cache: [] as number[], modules: [] as number[] },
    restore: { cache: [] as number[], modules: [] as number[], snapshot: [] as number[] },
  };
  try {
    await worker.runUntil(async () => {
      const once = async (spec: JobSpec) => {
        registry.reset();
        const { id } = await stack.jobs.start(spec);
        await stack.client.workflow
          .getHandle(id)
          .result()
          .catch(() => undefined);
        const job = await stack.store.getJob(id);
        const loop = job?.steps.find((s) => s.kind === 'loop');
        if (job?.status !== 'succeeded' || !loop?.startedAt) throw new Error(`warm-start job ${id} ended ${job?.status}: ${job?.error}`);
        const at = (t: string | null | undefined) => (t ? Date.parse(t) : NaN);
        const clone = job.steps.find((s) => s.kind === 'clone');
        const setup = job.steps.find((s) => s.kind === 'setup');
        const events = await stack.store.events(id);
        const placed = events.find((e) => e.type === 'placed');
        const restored = events.find((e) => e.type === 'setup_restored');
        return {
          ms: at(loop.startedAt) - at(job.createdAt),
          bytes: registry.stats().bytes,
          setupMs: setup ? at(setup.finishedAt) - at(setup.startedAt) : NaN,
          // Between the clone's end and setup's start: the key's hash and the cache's copy.
          cacheRestoreMs: clone && setup ? at(setup.startedAt) - at(clone.finishedAt) : NaN,
          // From placement to the workspace restored: the volume, the lookup and the copy.
          workspaceRestoreMs: placed && restored ? at(restored.at) - at(placed.at) : NaN,
        };
      };
      for (const way of WAYS) {
        // The cache and the kept workspace are made by a first job, not counted.
        if (way !== 'cold') await once(ways[way]);
        for (let i = 0; i < runs; i++) {
          const r = await once(ways[way]);
          times[way].push(r.ms);
          downloaded[way].push(r.bytes);
          if (way !== 'snapshot') phases.setup[way].push(r.setupMs);
          if (way === 'cache' || way === 'modules') phases.restore[way].push(r.cacheRestoreMs);
          if (way === 'snapshot') phases.restore.snapshot.push(r.workspaceRestoreMs);
        }
      }
    });
  } finally {
    // What the measure kept (its caches and workspaces) goes with it.
    for (const k of await stack.runner.listKept().catch(() => [])) await stack.runner.removeKept(k.id).catch(() => undefined);
    await close();
  }
  const cold = summarize(times.cold);
  const linkText = `registry stand-in: ${link.latencyMs} ms per request, ${(link.bytesPerSecond / 2 ** 20).toFixed(0)} MiB/s shared`;
  const mib = (b: number[]) => (summarize(b).median / 2 ** 20).toFixed(1);
  const how = (way: Way, what: string) =>
    `${what}; job created to its first loop step, ${runs} runs; ${mib(downloaded[way])} MiB downloaded per job (median); ${linkText}`;
  const ratio = (way: Exclude<Way, 'cold'>) => summarize(times[way].map((t) => t / cold.median));
  return [
    { name: 'warm start: cold', summary: cold, how: how('cold', `npm ci of ${opts.dependencies.length} dependencies (and theirs) after a clone`) },
    { name: 'warm start: dependency cache warm', summary: summarize(times.cache), how: how('cache', 'the npm cache restored before setup, npm ci offline') },
    {
      name: 'warm start: node_modules cache warm',
      summary: summarize(times.modules),
      how: how('modules', 'node_modules a cache keyed by the lock, restored into the workspace; npm ci skipped on the exact hit'),
    },
    {
      name: 'warm start: setup snapshot warm',
      summary: summarize(times.snapshot),
      how: how('snapshot', 'the workspace kept after the same setup: no clone, no setup'),
    },
    { name: 'warm start, cold: the setup step (npm ci, downloading)', summary: summarize(phases.setup.cold), how: `the setup step's run time; ${linkText}` },
    {
      name: 'warm start, cache warm: the setup step (npm ci offline)',
      summary: summarize(phases.setup.cache),
      how: "the setup step's run time with the cache restored",
    },
    {
      name: 'warm start, cache warm: hash and cache restore',
      summary: summarize(phases.restore.cache),
      how: "from the clone's end to setup's start: hashFiles (a helper container) and the cache layered on the kept one",
    },
    {
      name: 'warm start, node_modules warm: the setup step (install skipped)',
      summary: summarize(phases.setup.modules),
      how: "the setup step's run time on the exact hit",
    },
    {
      name: 'warm start, snapshot warm: workspace restore',
      summary: summarize(phases.restore.snapshot),
      how: 'from placement to setup_restored: the volume, the image id, the lookup, the workspace layered on the kept one',
    },
    {
      name: 'warm start: cache warm / cold',
      unit: 'ratio',
      target: '<= 0.40x',
      summary: ratio('cache'),
      how: 'each npm-cache-warm run over the median cold run',
    },
    {
      name: 'warm start: node_modules cache warm / cold',
      unit: 'ratio',
      target: '<= 0.40x',
      summary: ratio('modules'),
      how: 'each node_modules-cache-warm run over the median cold run',
    },
    {
      name: 'warm start: snapshot warm / cold',
      unit: 'ratio',
      target: '<= 0.15x',
      summary: ratio('snapshot'),
      how: 'each snapshot-warm run over the median cold run',
    },
  ];
}
