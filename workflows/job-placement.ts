/**
 * Where a job runs: placed on a host with room (waiting `queued` in line while there is
 * none), and placed again on another when its host is lost under it.
 */
import { type ActivityOptions, ApplicationFailure, condition, defineSignal, proxyActivities, proxyLocalActivities, setHandler } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { LostHost } from '../common/hosts';
import type { Placement, ResolvedJobSpec } from '../common/job';
import { FailureType, WAKE_SIGNAL } from '../common/names';
import type { JobRun } from './job-run';

export const wakeSignal = defineSignal(WAKE_SIGNAL);

export const BOOKKEEPING: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '200ms', maximumInterval: '10s', nonRetryableErrorTypes: [FailureType.InvalidJobSpec] },
};
export const bookkeeping = proxyActivities<Activities>(BOOKKEEPING);
/**
 * Placement touches only PostgreSQL: as a local activity it runs inside the workflow
 * task that accepted the job, with no round trip through the server (a job's pickup
 * no longer waits for an activity task and a second workflow task).
 */
const localBookkeeping = proxyLocalActivities<Activities>(BOOKKEEPING);

/** The longest wait between two placement attempts of a job that waits for a host (it is woken sooner when a job ends). */
const PLACEMENT_RECHECK_MAX_SECONDS = 30;

/** What placement prefers for a job with caches or a kept workspace: hosts that hold its scope's (and the workspace it starts from). */
export const warmPlacement = (spec: ResolvedJobSpec, scope: string | undefined) =>
  scope ? { scope, ...(spec.from ? { from: spec.from.job } : {}) } : undefined;

/**
 * Places the job on a host with room. While there is none it waits `queued`, saying
 * why and its place in the queue, until woken (a job ended: room may have freed) or
 * its next look, backing off from 1 s to 30 s. A cancel ends the wait: the job then
 * ends with no host (null).
 */
export async function placeWhenRoom(
  run: JobRun,
  placement: number,
  lost: LostHost[] = [],
  warm?: { scope: string; from?: string },
  local = false,
): Promise<Placement | null> {
  const place = local ? localBookkeeping.placeJob : bookkeeping.placeJob;
  let woken = false;
  setHandler(wakeSignal, () => void (woken = true));
  for (let wait = 1; ; wait = Math.min(wait * 2, PLACEMENT_RECHECK_MAX_SECONDS)) {
    // Reset before asking: a wake that comes while the answer is on its way counts.
    woken = false;
    const answer = await place({ jobId: run.jobId, placement, ...(lost.length ? { lost } : {}), ...(warm ? { warm } : {}) });
    if (answer === null || !('wait' in answer)) return answer;
    run.view.waiting = answer.wait;
    run.show('queued', answer.wait);
    await condition(() => woken || run.ending !== null, `${wait}s`);
    if (run.ending) return null;
  }
}

/**
 * The job's host was lost (its worker did not take a step in time): recorded, and the job
 * moves to another host as its next placement, to run again from the clone, unless it has
 * moved as often as the operator allows (then it fails, saying so). Waits for a host with
 * room as a new job does; a cancel meanwhile ends it with no host (`to` null).
 */
export async function moveJob(
  run: JobRun,
  spec: ResolvedJobSpec,
  from: Placement,
  lost: LostHost[],
  warm?: { scope: string; from?: string },
  local = false,
): Promise<{ to: Placement | null; failure?: Error }> {
  const moving = from.placement <= (from.moves ?? 0);
  const running = [...run.view.steps].reverse().find((s) => s.status === 'running' || s.status === 'failed');
  const step = running ? `${running.kind}-${running.index}` : null;
  await bookkeeping.recordHostLost({ jobId: run.jobId, placement: from.placement, host: from.host, step, moving });
  if (!moving) {
    const why =
      from.placement === 1
        ? 'jobs do not move to another host (DRAFTSMAN_HOST_LOST_MOVES is 0)'
        : `it was placed ${from.placement} times, as often as DRAFTSMAN_HOST_LOST_MOVES allows`;
    return {
      to: null,
      failure: ApplicationFailure.nonRetryable(`its host ${from.host} was lost${step ? ` during ${step}` : ''}, and ${why}`, FailureType.JobFailed),
    };
  }
  lost.push({ taskQueue: from.taskQueue, at: Date.now() });
  // The view starts over with the new placement: its steps run again from the clone.
  const next = from.placement + 1;
  run.view.steps = [];
  delete run.view.stepsOmitted;
  delete run.view.patch;
  run.view.loop = spec.loop ? { iterations: 0, converged: false } : null;
  run.view.placement = next;
  run.show('queued', `its host ${from.host} was lost${step ? ` during ${step}` : ''}; placing it again (placement ${next})`);
  return { to: await placeWhenRoom(run, next, lost, warm, local) };
}
