/**
 * The bounded chaos campaign of CI: fixed seeds, every named boundary hit, no
 * violation. That each boundary's fix is seen when it is taken out is shown on the
 * in-memory store (activities/step/windows.test.ts); the campaign can show it too
 * (`npm run chaos -- --fault-switches cancel-listener-after-create`), and runs longer
 * campaigns (docs/reliability.md).
 */
import { runCampaign } from '../../chaos/campaign';

/** One seed in CI (each boundary window is a unit test); `npm run chaos` runs many more (docs/reliability.md). */
const SEEDS = [1];
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
