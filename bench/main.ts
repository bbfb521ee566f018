/**
 * `npm run bench`: runs every measure against the real stack, prints a table and
 * writes docs/benchmarks.md. BENCH_QUICK=1 runs each measure a few times only
 * (a smoke run that keeps the harness from rotting; its figures mean little);
 * BENCH_ONLY picks measures by name (overhead, pickup (and the first output), cancel, recovery, throughput,
 * loops, logs, startup, fanout, dashboard, hosts, warm, credentials).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { cancelLatency, type Measure, recoveryLatency } from './guarantees';
import { startBenchStack } from './harness';
import { firstOutput, pickupLatency, stepOverhead } from './overhead';
import { logVolume, longLoops, startUp } from './scale';
import { throughput } from './throughput';
import { fanout } from './fanout';
import { dashboard } from './dashboard';
import { hostsMeasures } from './hosts';
import { type Registry, startRegistry } from './registry';
import { DEPENDENCIES, ensureNodeImage, warmStarts } from './warm';
import { credentialFixture, credentialLatency, type CredentialFixture } from './credentials';

const quick = process.env.BENCH_QUICK === '1';
/** BENCH_ONLY=throughput,loops runs those measures only (and leaves docs/benchmarks.md alone). */
const only = (process.env.BENCH_ONLY ?? '')
  .split(',')
  .map((m) => m.trim())
  .filter(Boolean);
const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : Math.abs(ms) < 10 ? `${ms.toFixed(1)} ms` : `${ms.toFixed(0)} ms`);

function versions(): Record<string, string> {
  const pkg = (name: string) => (JSON.parse(fs.readFileSync(require.resolve(`${name}/package.json`), 'utf8')) as { version: string }).version;
  const cmd = (file: string, args: string[]) => {
    try {
      return execFileSync(file, args, { encoding: 'utf8' }).trim().split('\n')[0]!;
    } catch {
      return 'unknown';
    }
  };
  return {
    node: process.version,
    '@temporalio/worker': pkg('@temporalio/worker'),
    dockerode: pkg('dockerode'),
    'Docker engine': cmd('docker', ['version', '--format', '{{.Server.Version}}']),
  };
}

function render(measures: Measure[]): string {
  const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`;
  const v = versions();
  const show = (m: Measure, x: number) =>
    m.unit === 'ratio' ? `${x.toFixed(2)}x` : m.unit === 'MiB' ? `${x.toFixed(0)} MiB` : m.unit === 'count' ? x.toFixed(2) : fmt(x);
  const rows = measures.map(
    (m) => `| ${m.name} | ${show(m, m.summary.median)} | ${show(m, m.summary.p95)} | ${m.summary.runs} | ${m.target ?? ''} | ${m.how} |`,
  );
  return [
    '# Benchmarks',
    '',
    'Written by `npm run bench` (bench/main.ts) against the real stack: Temporal dev server,',
    'Docker engine, PostgreSQL, all on this machine. Figures are medians and p95 (nearest rank)',
    'of the runs given; absolute times drift on a shared machine.',
    '',
    `- date: ${new Date().toISOString()}`,
    `- machine: ${machine}, ${os.platform()} ${os.release()}`,
    `- versions: ${Object.entries(v)
      .map(([k, x]) => `${k} ${x}`)
      .join(', ')}`,
    '',
    '| measure | median | p95 | runs | target | how |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

/** The warm-start measure's registry link: a stated latency per request and a shared bandwidth (BENCH_REGISTRY_LATENCY_MS, BENCH_REGISTRY_MIB_PER_S). */
const LINK = { latencyMs: Number(process.env.BENCH_REGISTRY_LATENCY_MS ?? 100), bytesPerSecond: Number(process.env.BENCH_REGISTRY_MIB_PER_S ?? 4) * 2 ** 20 };

async function main(): Promise<void> {
  const want = (name: string) => only.length === 0 || only.includes(name);
  // The warm-start measure's registry stand-in: steps reach it through the egress proxy, by an exception the stack is started with.
  let registry: Registry | null = null;
  if (want('warm')) {
    ensureNodeImage();
    registry = await startRegistry({ root: process.cwd(), cacheDir: path.resolve('data', 'bench-registry'), ...LINK });
  }
  // The credential measure's servers: HTTPS with a CA of their own, the operator's bundle, a secret.
  let credentials: CredentialFixture | null = null;
  if (want('credentials')) {
    ensureNodeImage();
    credentials = await credentialFixture(fs.mkdtempSync(path.join(os.tmpdir(), 'draftsman-bench-credentials-')));
  }
  const stack = await startBenchStack(credentials?.env ?? {}, [...(registry ? [registry.hostPort] : []), ...(credentials?.exceptions ?? [])]);
  const measures: Measure[] = [];
  try {
    if (want('overhead')) measures.push(...(await stepOverhead(stack, quick ? 1 : 5)));
    if (want('pickup')) measures.push(await pickupLatency(stack, quick ? 2 : 50), await firstOutput(stack, quick ? 2 : 30));
    if (want('cancel')) measures.push(await cancelLatency(stack, quick ? 2 : 20));
    if (want('recovery')) measures.push(await recoveryLatency(stack, quick ? 1 : 5));
    if (want('throughput')) {
      measures.push(...(await throughput(stack, quick ? { jobs: 4, concurrency: 2, rounds: 1 } : { jobs: 100, concurrency: 4, rounds: 3 })));
    }
    if (want('loops')) measures.push(...(await longLoops(stack, quick ? [3] : [10, 100, 1000])));
    if (want('logs')) measures.push(...(await logVolume(stack, quick ? 1 : Number(process.env.BENCH_LOG_MIB ?? 50))));
    if (want('startup')) measures.push(...(await startUp(quick ? 1 : 3)));
    if (want('fanout'))
      measures.push(...(await fanout(stack, quick ? { followers: 20, lines: 10, settleMs: 1_000 } : { followers: 500, lines: 100, settleMs: 11_000 })));
    if (want('hosts')) measures.push(...(await hostsMeasures(stack, quick ? { jobs: 4, rounds: 1, waiting: 2 } : { jobs: 40, rounds: 3, waiting: 20 })));
    // The quick pass installs one small dependency tree (its figures mean little), the full run the fixture's whole set.
    if (registry) measures.push(...(await warmStarts(stack, registry, { runs: quick ? 1 : 10, dependencies: quick ? ['express'] : DEPENDENCIES, link: LINK })));
    if (want('dashboard')) measures.push(...(await dashboard(stack, quick ? { jobs: 100, runs: 2 } : { jobs: 1000, runs: 10 })));
    if (credentials) measures.push(...(await credentialLatency(stack, credentials, quick ? 10 : 100)));
  } finally {
    await stack.stop();
    await registry?.stop();
    await credentials?.stop();
  }
  const text = render(measures);
  console.log(text);
  if (!quick && only.length === 0) fs.writeFileSync(path.resolve('docs', 'benchmarks.md'), text);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
