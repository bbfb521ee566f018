import { randomUUID } from 'node:crypto';
import { Client, WorkflowIdReusePolicy, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { ApprovalRefusedError, DecisionPendingError } from '../common/errors';
import type { Approval, ApprovalDecision, JobView, Retrying } from '../common/job';
import {
  APPROVAL_UPDATE,
  CANCEL_SIGNAL,
  WAKE_SIGNAL,
  DEFAULT_TASK_QUEUE,
  FailureType,
  GROUP_WORKFLOW_TYPE,
  JOB_WORKFLOW_TYPE,
  PRINCIPAL_MEMO,
  REQUEST_ID_MEMO,
  STATUS_QUERY,
} from '../common/names';
import type { BudgetLimits } from '../common/budget';
import type { GroupInput } from '../common/group';
import type { JobSpec } from '../common/spec';

export interface JobsClientOptions {
  taskQueue?: string;
}

/**
 * The workflow's user metadata: a summary naming the repository and commit, and details
 * listing the phases. Read from the spec as given (the worker validates it), so anything
 * unexpected is left out rather than refused here.
 */
export function jobMetadata(spec: unknown): { staticSummary?: string; staticDetails?: string } {
  if (!spec || typeof spec !== 'object') return {};
  const s = spec as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === 'string' ? v : null);
  const count = (v: unknown) => (Array.isArray(v) ? v.length : 0);
  const repo = text(s.repo);
  const commit = text(s.commit);
  if (!repo || !commit) return {};
  const loop = s.loop && typeof s.loop === 'object' ? (s.loop as Record<string, unknown>) : null;
  const approval = s.approval && typeof s.approval === 'object' ? text((s.approval as Record<string, unknown>).before) : null;
  const phases = [
    count(s.setup) && `setup: ${count(s.setup)} step${count(s.setup) > 1 ? 's' : ''}`,
    loop && `loop: up to ${typeof loop.maxIterations === 'number' ? loop.maxIterations : '?'} iterations of \`${text(loop.command)?.slice(0, 80) ?? ''}\``,
    count(s.validate) && `validate: ${count(s.validate)} step${count(s.validate) > 1 ? 's' : ''}`,
    count(s.publish) && `publish: ${count(s.publish)} step${count(s.publish) > 1 ? 's' : ''}`,
    approval && `approval before ${approval}`,
  ].filter(Boolean);
  return {
    staticSummary: `${repo.slice(0, 200)} @ ${commit.slice(0, 12)}`,
    staticDetails: phases.length ? phases.map((p) => `- ${p}`).join('\n') : '- clone only',
  };
}

export function newJobId(): string {
  return `job-${randomUUID()}`;
}

/**
 * Starts, queries and cancels jobs through Temporal alone, without the API. A job
 * started here is recorded in the audit trail exactly like one started through
 * the API, because the workflow's own activities write it.
 */
export class JobsClient {
  /** The task queue its jobs are started on. */
  readonly taskQueue: string;

  constructor(
    readonly client: Client,
    options: JobsClientOptions = {},
  ) {
    this.taskQueue = options.taskQueue ?? DEFAULT_TASK_QUEUE;
  }

  /**
   * Starts a job; the spec is validated by the worker (the API validates it before).
   * `principal` names who starts it (the API passes the token's name); without it the job's
   * principal is `sdk:` and this client's identity. `requestId` (the API's) goes into the
   * job's `created` event. Returns ids.
   */
  async start(spec: JobSpec, jobId: string = newJobId(), opts: { principal?: string; requestId?: string } = {}): Promise<{ id: string; runId: string }> {
    const memo = { ...(opts.principal ? { [PRINCIPAL_MEMO]: opts.principal } : {}), ...(opts.requestId ? { [REQUEST_ID_MEMO]: opts.requestId } : {}) };
    const handle = await this.client.workflow.start(JOB_WORKFLOW_TYPE, {
      taskQueue: this.taskQueue,
      workflowId: jobId,
      args: [spec],
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      ...(Object.keys(memo).length ? { memo } : {}),
      // What the Web UI's list and page show of the job at a glance (encrypted like any payload).
      ...jobMetadata(spec),
    });
    return { id: jobId, runId: handle.firstExecutionRunId };
  }

  /**
   * Starts a group of attempts (best-of-N) as one workflow, which starts each attempt as a
   * job of its own: accepted all or none. The API validates every attempt's spec before.
   */
  async startGroup(input: GroupInput): Promise<{ id: string; runId: string }> {
    const handle = await this.client.workflow.start(GROUP_WORKFLOW_TYPE, {
      taskQueue: this.taskQueue,
      workflowId: input.groupId,
      args: [input],
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      staticSummary: `group of ${input.members.length} from ${input.parent} after ${input.after}`,
    });
    return { id: input.groupId, runId: handle.firstExecutionRunId };
  }

  /** The identity of the client that started the job's first run (from its first history event). */
  async starterIdentity(jobId: string, firstRunId: string): Promise<string | null> {
    const { history } = await this.client.workflowService.getWorkflowExecutionHistory({
      namespace: this.client.options.namespace,
      execution: { workflowId: jobId, runId: firstRunId },
      maximumPageSize: 1,
    });
    return history?.events?.[0]?.workflowExecutionStartedEventAttributes?.identity || null;
  }

  /**
   * The live job view from the workflow (needs a worker to answer). Steps that run
   * together in one activity (clone and setup, the validations) appear when that
   * activity ends; the audit trail (the API) records each step as it starts and ends.
   */
  status(jobId: string): Promise<JobView> {
    return this.client.workflow.getHandle(jobId).query<JobView>(STATUS_QUERY);
  }

  /** Asks the job to stop; a job that already ended ignores it. */
  async cancel(jobId: string, reason?: string): Promise<void> {
    await this.client.workflow.getHandle(jobId).signal(CANCEL_SIGNAL, reason ? { reason } : {});
  }

  /**
   * Decides the job's approval gate (a Temporal update: the answer comes once the job has
   * taken it). `by` is recorded as who decided: the API passes its principal; without it,
   * sdk:IDENTITY of this client. A repeat of the decision made answers it again; the job
   * refuses a decision it cannot take with ApprovalRefusedError. A job that has ended or
   * never existed rejects as Temporal says (WorkflowNotFoundError). With `timeoutMs`, a
   * decision the job has not taken by then (no worker serves it) rejects with
   * DecisionPendingError; `updateId` makes sending it again take it once.
   */
  async approve(
    jobId: string,
    request: { decision: ApprovalDecision; comment?: string; budget?: BudgetLimits },
    by?: string,
    opts: { updateId?: string; timeoutMs?: number } = {},
  ): Promise<Approval> {
    const who = by ?? `sdk:${this.client.options.identity}`;
    const update = () =>
      this.client.workflow
        .getHandle(jobId)
        .executeUpdate<Approval, [{ decision: ApprovalDecision; comment?: string; budget?: BudgetLimits; by: string }]>(APPROVAL_UPDATE, {
          args: [{ ...request, by: who }],
          ...(opts.updateId ? { updateId: opts.updateId } : {}),
        });
    const deadline = opts.timeoutMs === undefined ? null : Date.now() + opts.timeoutMs;
    try {
      return await (deadline === null ? update() : this.client.connection.withDeadline(deadline, update));
    } catch (err) {
      if (deadline !== null && Date.now() >= deadline) {
        throw new DecisionPendingError(
          `job ${jobId} has not taken the decision within ${opts.timeoutMs} ms (no worker has served it); send it again to wait once more`,
        );
      }
      const cause = err instanceof WorkflowUpdateFailedError ? err.cause : undefined;
      if (cause instanceof ApplicationFailure && cause.type === FailureType.ApprovalConflict) throw new ApprovalRefusedError(cause.message, 'conflict');
      if (cause instanceof ApplicationFailure && cause.type === FailureType.NotAwaitingApproval) throw new ApprovalRefusedError(cause.message, 'not_awaiting');
      throw err;
    }
  }

  /** Waits for the job's end. Rejects with WorkflowFailedError for a job that failed, was cancelled or timed out. */
  result(jobId: string): Promise<JobView> {
    return this.client.workflow.getHandle(jobId).result();
  }

  /**
   * The server's view of one of the job's pending activities: its current attempt and
   * whether a cancel of it was requested; `null` when it is not pending (it ended, or
   * the attempt asking was given up).
   */
  async pendingActivity(jobId: string, activityId: string): Promise<{ attempt: number; cancelRequested: boolean } | null> {
    const d = await this.client.workflow.getHandle(jobId).describe();
    const p = d.raw.pendingActivities?.find((a) => a.activityId === activityId);
    if (!p) return null;
    return { attempt: p.attempt ?? 1, cancelRequested: p.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED };
  }

  /** Tells a job waiting for a host to look again (room may have freed); a job that ended or never existed is left alone. */
  async wake(jobId: string): Promise<void> {
    try {
      await this.client.workflow.getHandle(jobId).signal(WAKE_SIGNAL);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }

  /**
   * The job's activity that is being retried, if one is (the one furthest into its
   * attempts): what the server knows of it, for the job's view. Null for none, or for a
   * job whose workflow is gone.
   */
  async retrying(jobId: string): Promise<Retrying | null> {
    let pending;
    try {
      pending = (await this.client.workflow.getHandle(jobId).describe()).raw.pendingActivities ?? [];
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
    const p = pending.filter((a) => (a.attempt ?? 1) > 1).sort((a, b) => (b.attempt ?? 1) - (a.attempt ?? 1))[0];
    if (!p) return null;
    const next = p.nextAttemptScheduleTime?.seconds;
    return {
      activity: p.activityType?.name ?? 'activity',
      attempt: p.attempt ?? 2,
      lastError: p.lastFailure?.message ?? null,
      nextAttemptAt:
        next != null && Number(next) > 0 ? new Date(Number(next) * 1000 + Math.floor((p.nextAttemptScheduleTime?.nanos ?? 0) / 1e6)).toISOString() : null,
    };
  }

  /** Whether a workflow for this job exists, and whether it is still running. */
  async describe(jobId: string): Promise<{ running: boolean } | null> {
    try {
      const d = await this.client.workflow.getHandle(jobId).describe();
      return { running: d.status.name === 'RUNNING' };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
  }
}
