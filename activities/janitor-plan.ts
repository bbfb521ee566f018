/**
 * What the janitor does with each container and volume Draftsman created, from
 * the state of its job. Pure, so the policy is unit-tested as a table.
 */
import type { ManagedResource } from '../runner/runner';

/**
 * `ended`: the job's workflow is closed; `unknown`: Temporal has no such workflow;
 * `moved`: the job runs on (or waits for) another host after this one was lost under it.
 */
export type JobLiveness = 'running' | 'ended' | 'unknown' | 'moved';

export interface SweepAction {
  action: 'remove' | 'stop';
  resource: ManagedResource;
  reason: string;
}

/**
 * Resources of ended or unknown jobs are removed, steps before holders before
 * workspaces (a volume in use cannot be removed). A step of a running job that is past its
 * deadline by more than `slackSeconds` is stopped but left in place, so that the
 * job's worker, when it comes back, records it as timed out.
 */
export function planSweep(
  resources: readonly ManagedResource[],
  liveness: ReadonlyMap<string, JobLiveness>,
  nowSeconds: number,
  slackSeconds: number,
): SweepAction[] {
  const actions: SweepAction[] = [];
  for (const resource of resources) {
    const state = liveness.get(resource.jobId) ?? 'unknown';
    if (state === 'ended') actions.push({ action: 'remove', resource, reason: 'job ended' });
    else if (state === 'unknown') actions.push({ action: 'remove', resource, reason: 'job unknown to Temporal' });
    else if (state === 'moved') actions.push({ action: 'remove', resource, reason: 'job moved to another host' });
    else if (resource.type === 'step' && resource.running && resource.deadline !== undefined && nowSeconds > resource.deadline + slackSeconds) {
      actions.push({ action: 'stop', resource, reason: 'step past its deadline' });
    }
  }
  // Steps first, then the holder whose network they share, then the volume they mount.
  const rank = (a: SweepAction) => (a.action === 'stop' ? 0 : a.resource.type === 'step' ? 1 : a.resource.type === 'holder' ? 2 : 3);
  return actions.sort((a, b) => rank(a) - rank(b));
}
