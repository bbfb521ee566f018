import { Context } from '@temporalio/activity';
import type { Shared } from './deps';
import { evictions } from '../common/warm';
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
      await sh.store.jobFinished(id, {
        status: 'failed',
        loop: null,
        error: 'its workflow ended without recording an end (terminated or reset); its host is freed',
      });
      sh.logger.info({ jobId: id }, 'janitor: a job whose workflow ended without its end frees its host');
    }
  }

  /**
   * Kept volumes on this host: the least recently used past the budget (per scope, then
   * the host's total) are forgotten and removed; a volume no row names (a save cut short,
   * an entry deleted through the API) is removed once it is older than a save takes.
   */
  async function sweepKept(): Promise<string[]> {
    const hostQueue = sh.host?.taskQueue ?? sh.config.DRAFTSMAN_TASK_QUEUE;
    const rows = await sh.kept.list({ hostQueue });
    const mb = 2 ** 20;
    const over = evictions(
      rows.map((r) => ({ id: r.id, scope: r.scope, bytes: r.bytes, lastUsedAt: new Date(r.lastUsedAt) })),
      { scopeBytes: sh.config.DRAFTSMAN_CACHE_SCOPE_BUDGET_MB * mb, totalBytes: sh.config.DRAFTSMAN_CACHE_BUDGET_MB * mb },
    );
    const removed: string[] = [];
    const record = async (id: string, reason: string, why: 'budget' | 'orphan') => {
      await sh.store.recordJanitorAction({ action: 'remove', type: 'kept', name: id, jobId: '', reason });
      sh.metrics.keptEvicted.inc({ why });
      sh.logger.info({ kept: id, reason }, 'janitor');
      removed.push(`kept:${id}`);
      Context.current().heartbeat();
    };
    for (const e of over) {
      // The row first: no job restores it from then on.
      if (!(await sh.kept.remove(e.id))) continue;
      // The row is gone, so a volume still in use is an orphan a later sweep removes.
      const gone = await sh.runner.removeKept(e.id).catch((err: unknown) => {
        sh.logger.warn({ kept: e.id, err: String(err) }, 'janitor: removing a kept volume failed; a later sweep removes it');
        return false;
      });
      if (!gone) sh.logger.info({ kept: e.id }, 'janitor: an evicted kept volume is in use; a later sweep removes it');
      await record(e.id, 'over the cache budget: least recently used', 'budget');
    }
    const named = await sh.kept.idsOn(hostQueue);
    const cutoff = Date.now() - sh.keptOrphanSeconds * 1000;
    for (const v of await sh.runner.listKept()) {
      if (named.has(v.id) || v.createdAt.getTime() > cutoff) continue;
      if (!(await sh.runner.removeKept(v.id))) continue;
      await record(v.id, 'no record names it (a save cut short, or an entry deleted)', 'orphan');
    }
    const left = rows.filter((r) => !over.some((e) => e.id === r.id));
    for (const kind of ['cache', 'snapshot'] as const)
      sh.metrics.keptBytes.set(
        { kind },
        left.filter((r) => r.kind === kind).reduce((n, r) => n + r.bytes, 0),
      );
    return removed;
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
      removed.push(...(await sweepKept()));
      return { removed, stopped };
    },
  };
}
