/**
 * The bounded chaos campaign of CI: fixed seeds, every named boundary hit, no
 * violation; and the same campaign with one boundary fix switched off, which must
 * report it (the campaign can see). `npm run chaos` runs longer ones (docs/reliability.md).
 */
import { runCampaign } from '../../chaos/campaign';
import { INVARIANTS } from '../../chaos/invariants';

/** Seeds that found defects when they were fixed stay here. */
const SEEDS = [1, 2];
const JOBS = 18;

test.each(SEEDS)(
  'seed %d: every named boundary hit, faults injected, no invariant violated',
  async (seed) => {
    const r = await runCampaign({ seed, jobs: JOBS, verbose: true, log: (l) => console.log(`[chaos] ${l}`) });
    expect(r.violations).toEqual([]);
    expect(
      Object.keys(r.boundaries)
        .filter((b) => !b.startsWith('random'))
        .sort(),
    ).toEqual([
      'after container create (step start)',
      'at a step end',
      'at continue-as-new',
      'before container create',
      'between batch steps',
      'during cleanup',
      'engine restart (SIGKILL) under a running step',
      'engine restart (SIGTERM) under a running step',
      'queued (cancelled on submit)',
    ]);
    expect(Object.values(r.faults).reduce((a, n) => a + n, 0)).toBeGreaterThanOrEqual(JOBS / 2);
  },
  300_000,
);

test('with the abort listener attached after create (a fixed defect switched back on), the campaign reports a violation', async () => {
  const r = await runCampaign({ seed: 1, jobs: 3, faultSwitches: ['cancel-listener-after-create'], log: (l) => console.log(`[chaos] ${l}`) });
  expect(r.violations.map((v) => v.invariant)).toContain(INVARIANTS[7]);
}, 300_000);

test("with an engine stop taken for the step's own exit (a fixed defect switched back on), the campaign reports a violation", async () => {
  // Job 8 is a trapped step under a graceful engine restart; no other fault may excuse it.
  const r = await runCampaign({ seed: 1, jobs: 9, randomFaults: false, faultSwitches: ['engine-stop-as-own-exit'], log: (l) => console.log(`[chaos] ${l}`) });
  expect(r.violations.map((v) => v.invariant)).toContain(INVARIANTS[8]);
}, 300_000);
