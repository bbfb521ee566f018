/**
 * The job's time limit and its approval gate. They live together because waiting for a
 * person does not count against the job's time: the clock is paused for the wait.
 */
import { ApplicationFailure, CancellationScope, condition, defineUpdate, proxyLocalActivities, setHandler, sleep } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { BudgetLimits, BudgetName } from '../common/budget';
import type { Approval, ApprovalDecision, ApprovalGate as GateSpec } from '../common/job';
import { APPROVAL_UPDATE, FailureType } from '../common/names';
import type { JobRun } from './job-run';

/** A decision as it reaches the workflow: `by` is the API's principal, or sdk:IDENTITY; `budget` raises a budget's limits (at its gate only). */
export interface ApprovalRequest {
  decision: ApprovalDecision;
  by: string;
  comment?: string;
  budget?: BudgetLimits;
}

export const approvalUpdate = defineUpdate<Approval, [ApprovalRequest]>(APPROVAL_UPDATE);

const local = proxyLocalActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '200ms', maximumInterval: '10s' },
});

/**
 * The job's time limit: a timer in a scope of its own, so that a cancel of the job's
 * body does not cancel it, and so that it can be paused. `deadline` stays absolute (a
 * continued run gets it) and moves later by the time spent paused.
 */
export class JobClock {
  private timer: CancellationScope | null = null;
  private pausedAt: number | null = null;

  constructor(
    public deadline: number,
    private readonly onExpiry: () => void,
  ) {
    this.start();
  }

  pause(): void {
    if (this.pausedAt !== null) return;
    this.pausedAt = Date.now();
    this.timer?.cancel();
  }

  resume(): void {
    if (this.pausedAt === null) return;
    this.deadline += Date.now() - this.pausedAt;
    this.pausedAt = null;
    this.start();
  }

  stop(): void {
    this.timer?.cancel();
  }

  private start(): void {
    const timer = new CancellationScope();
    this.timer = timer;
    void timer
      .run(() => sleep(Math.max(0, this.deadline - Date.now())))
      .then(() => this.onExpiry())
      .catch(() => undefined);
  }
}

const decided = (a: Approval) => `${a.decision === 'approve' ? 'approved' : 'rejected'} by ${a.by}${a.comment ? `: ${a.comment}` : ''}`;

/**
 * The gate: handles the approval update from the start of the run (a decision sent
 * before the job reaches its gate is refused: it is not waiting yet), waits durably for
 * a decision or the timeout, and records the decision. A repeat of the decision made
 * answers it again; a different one is refused.
 */
export class ApprovalGate {
  private waiting = false;
  /** The gate waiting is the budget's. */
  private budgetGate = false;
  private approval: Approval | null = null;
  /** The job's placement the gate is for (1 when absent). */
  private placement: number | undefined;

  constructor(
    private readonly run: JobRun,
    private readonly clock: JobClock,
  ) {
    setHandler(approvalUpdate, (request) => this.decide(request), { validator: (request) => this.check(request) });
  }

  /**
   * A job moved to another host runs its phases again, and its patch may differ: a
   * decision holds for the placement it was made in, and the gate asks again.
   */
  forPlacement(placement: number): void {
    this.placement = placement;
    this.approval = null;
  }

  /** Waits at the gate before `spec.before`; throws a JobRejected failure when the decision is reject. */
  async pass(spec: GateSpec): Promise<void> {
    const at = this.placement ? { placement: this.placement } : {};
    await local.awaitApproval({ jobId: this.run.jobId, gate: spec, ...at });
    this.run.show('awaiting_approval', `before ${spec.before} · waiting up to ${spec.timeoutSeconds} s for a decision (then ${spec.onTimeout})`);
    this.waiting = true;
    this.clock.pause();
    try {
      const inTime = await condition(() => this.approval !== null, spec.timeoutSeconds * 1000);
      if (!inTime) {
        this.approval = { decision: spec.onTimeout, by: 'timeout', at: new Date().toISOString(), comment: `no decision within ${spec.timeoutSeconds} s` };
      }
    } finally {
      this.waiting = false;
      this.clock.resume();
    }
    const approval = this.approval!;
    await local.recordApproval({ jobId: this.run.jobId, approval, ...(this.placement ? { placement: this.placement } : {}) });
    if (approval.decision === 'reject') throw ApplicationFailure.nonRetryable(decided(approval), FailureType.JobRejected);
    this.run.show('running', `${decided(approval)}; going on to ${spec.before}`);
  }

  /**
   * The budget's gate: a step frozen at the job's budget waits for a person (the spec's
   * approval timeout, else a day; then rejected). Answers the limits to go on with: those
   * the approver gave, else the crossed one doubled. Throws a JobRejected failure on reject.
   */
  async budget(over: { budget: BudgetName; limit: number; used: number }, step: string, timeoutSeconds: number): Promise<BudgetLimits> {
    // A gate of its own: a decision taken at another gate of the job does not hold here.
    this.approval = null;
    this.budgetGate = true;
    const at = this.placement ? { placement: this.placement } : {};
    const key = `:budget:${step}`;
    const gate = { reason: 'budget_exceeded' as const, step, ...over, timeoutSeconds, onTimeout: 'reject' as const };
    await local.awaitApproval({ jobId: this.run.jobId, gate, key, ...at });
    this.run.show(
      'awaiting_approval',
      `${over.budget} ${Math.round(over.used * 100) / 100} is past the budget of ${over.limit}: step ${step} is frozen until a decision (raise or reject)`,
    );
    this.waiting = true;
    this.clock.pause();
    try {
      const inTime = await condition(() => this.approval !== null, timeoutSeconds * 1000);
      if (!inTime) this.approval = { decision: 'reject', by: 'timeout', at: new Date().toISOString(), comment: `no decision within ${timeoutSeconds} s` };
    } finally {
      this.waiting = false;
      this.budgetGate = false;
      this.clock.resume();
    }
    const approval = this.approval!;
    await local.recordApproval({ jobId: this.run.jobId, approval, key, ...at });
    if (approval.decision === 'reject') throw ApplicationFailure.nonRetryable(decided(approval), FailureType.JobRejected);
    const raised = approval.budget && Object.keys(approval.budget).length ? approval.budget : { [over.budget]: over.limit * 2 };
    this.run.show(
      'running',
      `${decided(approval)}; the budget is raised (${Object.entries(raised)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')})`,
    );
    return raised;
  }

  private check(request: ApprovalRequest): void {
    if (request.decision !== 'approve' && request.decision !== 'reject') {
      throw ApplicationFailure.nonRetryable('decision must be approve or reject', FailureType.NotAwaitingApproval);
    }
    if (this.approval) {
      if (this.approval.decision === request.decision) return;
      throw ApplicationFailure.nonRetryable(`the job was already ${decided(this.approval)}`, FailureType.ApprovalConflict);
    }
    if (!this.waiting) {
      throw ApplicationFailure.nonRetryable(`the job is ${this.run.view.status}, not awaiting approval`, FailureType.NotAwaitingApproval);
    }
    if (request.budget && !this.budgetGate) {
      throw ApplicationFailure.nonRetryable('budget: only a job waiting at its budget takes a raised budget', FailureType.NotAwaitingApproval);
    }
  }

  private decide(request: ApprovalRequest): Approval {
    this.approval ??= {
      decision: request.decision,
      by: request.by,
      at: new Date().toISOString(),
      ...(request.comment ? { comment: request.comment } : {}),
      ...(request.budget && request.decision === 'approve' ? { budget: request.budget } : {}),
    };
    return this.approval;
  }
}
