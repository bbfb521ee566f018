import { Context } from '@temporalio/activity';
import type { Shared } from './deps';
import { type JobLiveness, planSweep } from './janitor-plan';

/** The janitor's activity. */
export function createJanitorActivities(sh: Shared, describeJob: (jobId: string) => Promise<{ running: boolean } | null>) {
  /**
   * A job whose workflow ended without its end recorded (terminated, or reset past it)
   * would hold its host's room, or its place in the queue, for ever: it is recorded
   * failed, which frees both.
   */
  async function releaseAbandoned(): Promise<void> {
    for (const id of await sh.hosts.holders()) {
      const wf = await describeJob(id);
      if (wf?.running) continue;
      await sh.store.jobFinished(id, { status: 'failed', loop: null, error: 'its workflow ended without recording an end (terminated or reset); its host is freed' });
      sh.logger.info({ jobId: id }, 'janitor: a job whose workflow ended without its end frees its host');
    }
  }

  return {
    /** The host queues of the hosts heard from lately: the janitor sweeps each on its own engine. */
    async liveHostQueues(): Promise<string[]> {
      return sh.hosts.liveQueues();
    },

    /**
     * The janitor's pass over this deployment's resources (the runner lists only
     * those): removes what ended or unknown jobs left behind and stops steps past
     * their deadline, recording each action.
     */
    async sweep(): Promise<{ removed: string[]; stopped: string[] }> {
      const resources = await sh.runner.listManaged();
      const ids = [...new Set(resources.map((r) => r.jobId))];
      const ended = await sh.store.endedJobs(ids);
      const moved = sh.host ? await sh.store.movedJobs(ids, sh.host.taskQueue) : new Set<string>();
      const liveness = new Map<string, JobLiveness>();
      for (const id of ids) {
        if (ended.has(id)) liveness.set(id, 'ended');
        else if (moved.has(id)) liveness.set(id, 'moved');
        else {
          const wf = id ? await describeJob(id) : null;
          liveness.set(id, wf === null ? 'unknown' : wf.running ? 'running' : 'ended');
        }
      }
      const removed: string[] = [];
      const stopped: string[] = [];
      for (const a of planSweep(resources, liveness, Date.now() / 1000, sh.grace + 5)) {
        if (a.action === 'stop') {
          await sh.runner.stopManaged(a.resource, sh.grace);
          stopped.push(a.resource.name);
        } else {
          await sh.runner.removeManaged(a.resource);
          removed.push(a.resource.name);
        }
        await sh.store.recordJanitorAction({ action: a.action, type: a.resource.type, name: a.resource.name, jobId: a.resource.jobId, reason: a.reason });
        sh.metrics.orphansReaped.inc({ type: a.resource.type, action: a.action });
        sh.logger.info({ jobId: a.resource.jobId, resource: a.resource.name, action: a.action, reason: a.reason }, 'janitor');
        Context.current().heartbeat();
      }
      await releaseAbandoned();
      return { removed, stopped };
    },
  };
}
