/**
 * The admission a workflow test's own activities need: the job's accept, placement and
 * start in one local activity, made of the set's own acceptJob, placeJob and startJob (as
 * the worker's admitJob is made of the same steps), looked up when called so that a test
 * that replaces one of them is heard.
 */
import type { Activities } from '../activities';
import { warmPlacement } from '../common/job';

export function admitVia(set: Partial<Activities>): Activities['admitJob'] {
  return async (input) => {
    const accepted = await set.acceptJob!(input);
    const warm = warmPlacement(accepted.spec, accepted.warmScope);
    const placed = await set.placeJob!({ jobId: input.jobId, placement: 1, ...(warm ? { warm } : {}) });
    if (placed === null || 'wait' in placed) return { accepted, placed, started: false };
    const start = await set.startJob!({ jobId: input.jobId, image: accepted.spec.image, placed: true });
    return { accepted, placed, started: start.started };
  };
}
