/**
 * The worker process of the chaos campaign: the production worker, with its runner and
 * store wrapped by the chaos probe (a job whose id ends in `-at-<boundary>` pauses
 * there once and says so on stdout, so the campaign can cancel it in that window), and
 * the fixed defects named in DRAFTSMAN_TEST_FAULTS put back (testing/faults.ts).
 */
import '../common/memory';
import { runWorkerProcess } from '../worker/main';
import { chaosProbe } from './chaos-probe';
import { testWorkerWrap } from './faults';

const switches = (process.env.DRAFTSMAN_TEST_FAULTS ?? '').split(',').filter(Boolean);
runWorkerProcess(testWorkerWrap(switches, chaosProbe())).catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
