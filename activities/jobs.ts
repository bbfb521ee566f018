import { ApplicationFailure } from '@temporalio/common';
import { type BudgetName, budgetUnderCeiling, type OnExceed } from '../common/budget';
import { diskRoom } from '../common/disk';
import { InvalidJobSpecError, isInvalidJobSpecError } from '../common/errors';
import { warmScope } from '../common/warm';
import { firstUngranted, specSecretRefs, ungrantedMessage } from '../common/grants';
import type { LostHost } from '../common/hosts';
import {
  type AcceptedJob,
  type Approval,
  type ApprovalGate,
  JOB_ID_PATTERN,
  type JobStatus,
  type Placement,
  type ResolvedJobSpec,
  type StepOutcome,
} from '../common/job';
import { FailureType } from '../common/names';
import { resolveJobSpec, specPolicy } from '../common/spec';
import { type BudgetGateEvent, DuplicateJobIdError, type Submitter } from '../db/store';
import type { Shared } from './deps';
import { UnknownSecretError } from './secrets';

/** The key of a label whose value holds one of the secret values (of at least 4 characters), if any. */
export function labelHoldingSecret(labels: Record<string, string>, secretValues: readonly string[]): string | null {
  const secrets = secretValues.filter((v) => v.length >= 4);
  return Object.entries(labels).find(([, v]) => secrets.some((s) => v.includes(s)))?.[0] ?? null;
}

/** How many of the jobs waiting for a host an ended job wakes: the first few, who take the room in order. */
const WAKE_AT_ONCE = 4;

/** The activities of a job's own life: accepted, started, ended. */
export function createJobActivities(sh: Shared) {
  const { store, runner, config } = sh;

  /** A spec refused before anything started: recorded, and not retried. */
  async function refuse(jobId: string, runId: string, message: string, field: string, by?: Submitter): Promise<never> {
    await store.recordRejected(jobId, runId, message, by);
    throw ApplicationFailure.nonRetryable(message, FailureType.InvalidJobSpec, { field });
  }

  /**
   * A step still recorded as running when its job ends (its activity was cancelled
   * between two attempts, or never came back): SIGTERM to its process group, the
   * grace period, and its end recorded with the job's.
   */
  async function stopUnfinished(jobId: string, jobStatus: JobStatus): Promise<void> {
    const status: StepOutcome['status'] = jobStatus === 'cancelled' || jobStatus === 'timed_out' ? jobStatus : 'failed';
    await Promise.all(
      (await store.steps.running(jobId)).map(async (step) => {
        const ref = { jobId, kind: step.kind, index: step.index, ...(step.placement > 1 ? { placement: step.placement } : {}) };
        await runner.cancel(ref, sh.grace);
        const state = await runner.status(ref);
        const exit = state.state === 'exited' ? state.exit : null;
        await store.steps.record(jobId, {
          ...step,
          status,
          exitCode: exit?.exitCode ?? null,
          oomKilled: exit?.oomKilled ?? false,
          startedAt: exit?.startedAt?.toISOString() ?? null,
          finishedAt: exit?.finishedAt?.toISOString() ?? null,
          ...(state.state === 'missing' && status === 'failed' ? { reason: 'container_lost' as const } : {}),
        });
      }),
    );
  }

  /**
   * Room may have freed on a host: the first jobs in line for one look again now rather
   * than at their next timer. Best effort: a job that misses it looks at its timer.
   */
  async function wakeWaiting(): Promise<void> {
    if (!sh.wakeJob) return;
    const first = await sh.hosts.firstWaiting(WAKE_AT_ONCE).catch(() => []);
    await Promise.all(first.map((id) => sh.wakeJob!(id).catch(() => undefined)));
  }

  return {
    /**
     * Validates the spec (jobs started through the SDK skip the API's check),
     * applies the operator's defaults and records the job as queued.
     */
    async acceptJob(input: { jobId: string; runId: string; spec: unknown; principal?: string; requestId?: string }): Promise<AcceptedJob> {
      // The id names containers and volumes: an SDK caller may have chosen any string.
      if (!JOB_ID_PATTERN.test(input.jobId)) {
        return refuse(input.jobId, input.runId, `job id ${JSON.stringify(input.jobId.slice(0, 120))} must match ${JOB_ID_PATTERN.source}`, 'id');
      }
      const principal = input.principal ?? `sdk:${(await sh.starterIdentity?.(input.jobId, input.runId)) ?? 'unknown'}`;
      const by: Submitter = { principal, ...(input.requestId ? { requestId: input.requestId } : {}) };
      let spec: ResolvedJobSpec;
      try {
        spec = resolveJobSpec(input.spec, specPolicy(config));
        // The principal's ceiling: a budget over it is refused; one the spec leaves out comes from it.
        const budget = budgetUnderCeiling(spec.budget, config.DRAFTSMAN_BUDGET_CEILINGS, principal);
        if (budget) spec = { ...spec, budget };
        const unmeasured = budget?.cpuSeconds !== undefined ? runner.accountingProblem?.() : null;
        if (unmeasured) throw new InvalidJobSpecError(`budget.cpuSeconds: steps here have no CPU accounting (${unmeasured})`, 'budget.cpuSeconds');
      } catch (err) {
        if (!isInvalidJobSpecError(err)) throw err;
        return refuse(input.jobId, input.runId, err.message, err.field, by);
      }
      // The API checked the grants of its jobs; those started with the SDK are checked here.
      const ungranted = firstUngranted(config.DRAFTSMAN_SECRET_GRANTS, principal, specSecretRefs(spec));
      if (ungranted) return refuse(input.jobId, input.runId, ungrantedMessage(ungranted, principal), ungranted.field, by);
      // Every reference must resolve before anything starts; values are not kept.
      const values: string[] = [];
      for (const [field, ref] of specSecretRefs(spec)) {
        try {
          values.push(sh.secrets.resolve(ref));
        } catch (err) {
          if (!(err instanceof UnknownSecretError)) throw err;
          return refuse(input.jobId, input.runId, `${field}: ${err.message}`, field, by);
        }
      }
      // Labels become search attributes, which are not encrypted.
      const leaked = labelHoldingSecret(spec.labels ?? {}, values);
      if (leaked) return refuse(input.jobId, input.runId, `labels.${leaked}: holds the value of one of the job's secrets`, `labels.${leaked}`, by);
      try {
        await store.recordAccepted(input.jobId, input.runId, spec, by);
      } catch (err) {
        if (err instanceof DuplicateJobIdError) throw ApplicationFailure.nonRetryable(err.message, err.name);
        throw err;
      }
      // In line for a host from now: jobs are placed in the order they were accepted.
      if (sh.host) await sh.hosts.enqueue(input.jobId, spec.concurrency);
      return {
        spec,
        iterationsPerRun: config.DRAFTSMAN_LOOP_ITERATIONS_PER_RUN,
        ...(spec.caches || spec.snapshot || spec.from ? { warmScope: warmScope(config.DRAFTSMAN_CACHE_SCOPE, spec.repo, principal) } : {}),
      };
    },

    /**
     * Starts the job unless the disk guard holds it back; then it stays queued with
     * the reason recorded, and the workflow asks again later. The workspace is
     * created by the clone, on the engine that runs the job's steps. A placed job's
     * host had its disk checked by placement (its advertised free disk against its
     * floor): this worker's disk, wherever it is, is not the one the job fills.
     */
    async startJob(input: { jobId: string; image: string; placed?: boolean }): Promise<{ started: true } | { started: false; reason: string }> {
      const room = input.placed ? null : await diskRoom(config);
      if (room && !room.enough) {
        const reason = `waiting for disk space: ${room.freeMb} MiB free at ${room.path}, below the floor of ${room.floorMb} MiB`;
        await store.recordWaiting(input.jobId, reason, 'waiting:disk');
        return { started: false, reason };
      }
      await store.recordStarted(input.jobId, input.image);
      return { started: true };
    },

    /** The job reached its approval gate: its status, the audit event (and so the webhook), the metric. */
    async awaitApproval(input: { jobId: string; gate: ApprovalGate | BudgetGateEvent; placement?: number; key?: string }): Promise<void> {
      await store.recordAwaitingApproval(input.jobId, input.gate, input.placement, input.key);
      sh.metrics.approvals.inc({ event: 'waiting', by: 'none' });
    },

    /** The gate's decision, in the audit trail with who made it and when. */
    async recordApproval(input: { jobId: string; approval: Approval; placement?: number; key?: string }): Promise<void> {
      await store.recordApproval(input.jobId, input.approval, input.placement, input.key);
      sh.metrics.approvals.inc({
        event: input.approval.decision === 'approve' ? 'approved' : 'rejected',
        by: input.approval.by === 'timeout' ? 'timeout' : 'person',
      });
    },

    /**
     * Places a job on a host with room (db/host-store.ts): its workspace will live on that
     * host's engine, and every step after this goes to the host's own queue. When no host
     * has room, the job waits `queued` with the reason and its place in the queue, and
     * asks again. Null from a worker that serves no host of its own (activities run alone
     * in tests), which leaves the job on the shared queue.
     */
    async placeJob(input: {
      jobId: string;
      placement: number;
      lost?: LostHost[];
      warm?: { scope: string; from?: string };
    }): Promise<Placement | { wait: string } | null> {
      if (!sh.host) return null;
      // A host that holds the job's caches or the workspace it starts from, when one has room.
      const prefer = input.warm ? await sh.kept.hostsOf(input.warm.scope, input.warm.from) : [];
      const choice = await sh.hosts.place(input.jobId, input.lost ?? [], new Date(), prefer);
      if ('wait' in choice) {
        await store.recordWaiting(input.jobId, choice.wait, 'waiting:host');
        return { wait: choice.wait };
      }
      const placed: Placement = {
        host: choice.host.id,
        taskQueue: choice.host.taskQueue,
        placement: input.placement,
        lostAfterSeconds: sh.host.lostAfterSeconds,
        moves: sh.host.moves,
      };
      await store.event(input.jobId, `placed:${input.placement}`, 'placed', { host: placed.host, placement: placed.placement });
      return placed;
    },

    /**
     * The job's host was lost under it (its worker stopped taking the job's activities):
     * the `host_lost` event, and its steps of that placement still recorded as running
     * ended `failed` with reason `host_lost`. When it moves, it leaves its host and waits
     * in line for another as its next placement. Safe to repeat.
     */
    async recordHostLost(input: { jobId: string; placement: number; host: string; step: string | null; moving: boolean }): Promise<void> {
      await store.hostLost(input.jobId, input.placement, { host: input.host, step: input.step, moving: input.moving });
      sh.metrics.hostsLost.inc({ moved: String(input.moving) });
      sh.logger.warn({ jobId: input.jobId, host: input.host, placement: input.placement, moving: input.moving }, "the job's host was lost");
      // The room it held there frees nothing real (the host is gone), but its leaving may unblock its key.
      if (input.moving) await wakeWaiting();
    },

    /**
     * The end of every job, whatever its outcome: the reason it was stopped (if it
     * was), steps left running stopped with their grace period and recorded, then its
     * containers and workspace removed, then the outcome recorded, so that a job is not
     * finished before its resources are gone. Safe to repeat.
     */
    /** A step stopped at the job's budget: its audit event (the webhook job.budget_exceeded), once per step. */
    async recordBudgetExceeded(input: { jobId: string; step: string; budget: BudgetName; limit: number; used: number; onExceed: OnExceed }): Promise<void> {
      const { jobId, ...data } = input;
      await store.event(jobId, `budget-exceeded:${input.step}`, 'budget_exceeded', data);
    },

    async endJob(input: {
      jobId: string;
      status: JobStatus;
      loop: { iterations: number; converged: boolean } | null;
      error?: string;
      /** Why a cancelled or timed-out job stopped, and the step it stopped in. */
      stopped?: { reason: string | null; step: string | null };
      /** The job kept its workspace only in case it failed (snapshot.when: failed). */
      forgetKept?: boolean;
    }): Promise<void> {
      if (input.stopped) await store.event(input.jobId, input.status, input.status, input.stopped);
      await sh.removals.settled(input.jobId);
      await stopUnfinished(input.jobId, input.status);
      await runner.removeJob(input.jobId);
      await store.event(input.jobId, 'cleaned-up', 'cleaned_up', {});
      await store.jobFinished(input.jobId, { status: input.status, loop: input.loop, error: input.error });
      // A workspace kept only for a resume (snapshot.when: failed) is given up when the job succeeded.
      if (input.status === 'succeeded' && input.forgetKept) {
        const forgotten = await sh.kept.forgetKeptBy(input.jobId);
        if (forgotten)
          await store.event(input.jobId, 'snapshot-forgotten', 'snapshot_forgotten', {
            workspaces: forgotten,
            why: 'the job succeeded (snapshot.when: failed)',
          });
      }
      await wakeWaiting();
      sh.metrics.jobsFinished.inc({ status: input.status });
      sh.logger.info({ jobId: input.jobId, status: input.status, error: input.error }, 'job finished');
    },
  };
}
