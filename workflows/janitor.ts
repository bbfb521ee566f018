import { type ActivityOptions, patched, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';

const SWEEP: ActivityOptions = {
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: { maximumAttempts: 3 },
};
const { sweep } = proxyActivities<Activities>(SWEEP);
const { liveHostQueues } = proxyActivities<Activities>({ startToCloseTimeout: '1 minute' });

/** Runs from before each host was swept on its own engine swept the engine of whichever worker took the activity. */
const PER_HOST_PATCH = 'janitor-per-host';

type Swept = { removed: string[]; stopped: string[] };

/**
 * One janitor pass, started by the janitor schedule (or by hand to clean up now): a sweep
 * on each host heard from lately, on its own queue, so that every engine is swept; or on
 * the given host queues only (a host's worker asks for its own when it starts: what jobs
 * moved away left there). A host that does not take its sweep within a minute is left
 * for the next pass.
 */
export async function janitorWorkflow(input?: { hosts?: string[] }): Promise<Swept> {
  if (!patched(PER_HOST_PATCH)) return sweep();
  const queues = input?.hosts ?? (await liveHostQueues());
  if (queues.length === 0) return sweep();
  const passes = await Promise.allSettled(
    queues.map((taskQueue) => proxyActivities<Activities>({ ...SWEEP, taskQueue, scheduleToStartTimeout: '1 minute' }).sweep()),
  );
  const done = passes.flatMap((p) => (p.status === 'fulfilled' ? [p.value] : []));
  if (done.length === 0 && passes[0]?.status === 'rejected') throw passes[0].reason;
  return { removed: done.flatMap((d) => d.removed), stopped: done.flatMap((d) => d.stopped) };
}
