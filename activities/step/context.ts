/**
 * What a step's phases need of the activity that runs them: its attempt, the signal
 * that says it is cancelled or its worker leaves, and heartbeats. In production it is
 * Temporal's activity context; a test gives its own, or wraps this one to hold a cancel.
 */
import { Context } from '@temporalio/activity';

export interface StepContext {
  /** The activity's attempt (1 first): a retried step re-attaches to what an earlier attempt left. */
  readonly attempt: number;
  /** Aborted when the activity is cancelled or given up, or its worker leaves. */
  readonly signal: AbortSignal;
  /** Whether the abort is a requested cancel (else the worker leaves, and the next attempt carries on). */
  cancelRequested(): boolean;
  heartbeat(details?: unknown): void;
}

/** The running activity's context. */
export function activityStepContext(): StepContext {
  const ctx = Context.current();
  return {
    attempt: ctx.info.attempt,
    signal: ctx.cancellationSignal,
    cancelRequested: () => ctx.cancellationDetails?.cancelRequested ?? false,
    heartbeat: (details) => ctx.heartbeat(details),
  };
}
