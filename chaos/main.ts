/**
 * `npm run chaos -- --seed N --jobs K [--seeds N,M,...] [--fault-switches a,b]`: seeded
 * campaigns against the real stack; prints the table and writes every violating seed to
 * data/chaos-violations.json so that it can be replayed. `--fault-switches` turns boundary
 * fixes off in the worker (`cancel-listener-after-create`, `engine-stop-as-own-exit`), to show the campaign sees them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { report, runCampaign, type CampaignResult } from './campaign';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const seeds = (arg('seeds') ?? arg('seed') ?? '1').split(',').map((s) => Number(s.trim()));
  const jobs = Number(arg('jobs') ?? '20');
  if (seeds.some((s) => !Number.isInteger(s) || s < 0) || !Number.isInteger(jobs) || jobs < 1 || jobs > 5000) {
    console.error('usage: npm run chaos -- --seed N (or --seeds N,M,...) --jobs K (1..5000)');
    process.exit(2);
  }
  // Ctrl-C or SIGTERM ends the campaign with its clean-up: its stack, private engine and mounts.
  const stop = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.log(`[chaos] ${sig}: stopping after clean-up`);
      stop.abort();
    });
  }
  const results: CampaignResult[] = [];
  for (const seed of seeds) {
    if (stop.signal.aborted) break;
    const faultSwitches = arg('fault-switches')?.split(',').filter(Boolean);
    const r = await runCampaign({
      seed,
      jobs,
      faultSwitches,
      signal: stop.signal,
      verbose: process.argv.includes('--verbose'),
      log: (l) => console.log(`[chaos] ${l}`),
    }).catch((err: unknown) => {
      if (stop.signal.aborted) return null;
      throw err;
    });
    if (!r) break;
    console.log(
      `[chaos] seed ${seed}: ${r.jobs} jobs, ${Object.values(r.faults).reduce((a, n) => a + n, 0)} faults, ${r.violations.length} violations, ${r.seconds} s`,
    );
    for (const v of r.violations) console.log(`[chaos]   ${v.job}: ${v.invariant}: ${v.detail}`);
    results.push(r);
  }
  console.log(report(results));
  const violating = results.filter((r) => r.violations.length > 0);
  const file = path.resolve('data', 'chaos-violations.json');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(
    file,
    JSON.stringify(
      violating.map((r) => ({ seed: r.seed, jobs, violations: r.violations })),
      null,
      2,
    ),
  );
  process.exit(violating.length ? 1 : 0);
}

void main();
