/**
 * The job workflow's pure mapping, apart from its commands: how a step's reported end
 * shows in the job's view, when a batch of steps stopped the phase, how the job ended
 * and what its error says, what a loop hands to its next run. Unit-tested as tables.
 */
import { ActivityFailure, ApplicationFailure, CancelledFailure, TimeoutFailure, TimeoutType } from '@temporalio/common';
import type { JobStatus, JobView, StepKind, StepOutcome, StepView } from '../common/job';
import { FailureType, stepTimeoutMessage } from '../common/names';

/**
 * A step's end as an activity reported it: the one outcome type, or, in histories
 * from before it, a result without a status whose exit code -1 meant "none".
 */
export type Recorded = Omit<StepOutcome, 'status'> & { status?: StepOutcome['status'] };

/** Why the job was stopped from outside its steps: a cancel, or its time limit. */
export interface Ending {
  status: 'cancelled' | 'timed_out';
  reason: string;
}

export function statusOf(r: Recorded): StepOutcome['status'] {
  return r.status ?? (r.exitCode === 0 ? 'succeeded' : 'failed');
}

/** What a step's view shows of its result: exit, times, duration, OOM kill. */
export function ranFor(r: Recorded): Pick<StepView, 'exitCode' | 'startedAt' | 'finishedAt' | 'durationMs' | 'oomKilled'> {
  return {
    exitCode: r.exitCode,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
    durationMs: r.startedAt && r.finishedAt ? Date.parse(r.finishedAt) - Date.parse(r.startedAt) : null,
    oomKilled: r.oomKilled,
  };
}

/** A step of a batch as the job's view shows it. */
export function batchStepView(r: Recorded): StepView {
  const status = statusOf(r);
  const ended = status === 'succeeded' || status === 'failed';
  return {
    kind: r.kind,
    index: r.index,
    status,
    ...ranFor(r),
    // Histories from before one outcome type carry -1 for "no exit code".
    exitCode: ended && r.exitCode !== -1 ? r.exitCode : null,
    ...(r.reason ? { reason: r.reason } : {}),
  };
}

/**
 * How a batch's results end its phase, as the step's own activity would have: the
 * failure to throw for a step that timed out or was cancelled, or for a batch cut
 * short between two steps (a cancel); null when the phase goes on (or stops at a
 * failed setup step, which the caller reports).
 */
export function batchStop(kind: 'setup' | 'validate', expected: number, results: readonly Recorded[], stepSeconds: number): Error | null {
  const last = results.at(-1);
  if (last?.status === 'timed_out') {
    return ApplicationFailure.nonRetryable(stepTimeoutMessage(`${last.kind}-${last.index}`, stepSeconds), FailureType.StepTimeout);
  }
  if (last?.status === 'cancelled') return new CancelledFailure(`step ${last.kind}-${last.index} cancelled`);
  const stoppedAtFailure = kind === 'setup' && last?.status === 'failed';
  if (results.length < expected && !stoppedAtFailure) return new CancelledFailure(`${kind} cancelled`);
  return null;
}

export function failedStepMessage({ kind, index, exitCode, oomKilled, reason }: Recorded): string {
  const name = kind === 'clone' ? 'clone' : `${kind}-${index}`;
  if (reason === 'container_lost') return `${name} failed: its container was lost while it ran (it is not run again)`;
  if (reason === 'workspace_full') return `${name} failed: its workspace grew past the cap on a job's disk (DRAFTSMAN_MAX_WORKSPACE_MB), and it was stopped`;
  if (kind === 'clone') return `clone failed with exit code ${exitCode}`;
  return `${name} failed with exit code ${exitCode}${oomKilled ? ' (OOM-killed: it exceeded its memory limit)' : ''}`;
}

/** The job's error when validations failed, or null when every one passed. */
export function validationFailure(validated: readonly Recorded[]): string | null {
  const failed = validated
    .filter((v) => statusOf(v) !== 'succeeded')
    .map((v) => `validate-${v.index} (${v.reason ? v.reason : `${v.oomKilled ? 'OOM-killed, ' : ''}exit ${v.exitCode}`})`);
  return failed.length > 0 ? `failed: ${failed.join(', ')}` : null;
}

export function isStepTimeout(err: unknown): boolean {
  // From a step's own activity, or raised by the workflow for a step of a batch.
  const failure = err instanceof ActivityFailure ? err.cause : err;
  return failure instanceof ApplicationFailure && failure.type === FailureType.StepTimeout;
}

/** An activity that no worker of its queue took in time: on a host's queue, the host is gone. */
export function isScheduleToStartTimeout(err: unknown): boolean {
  return err instanceof ActivityFailure && err.cause instanceof TimeoutFailure && err.cause.timeoutType === TimeoutType.SCHEDULE_TO_START;
}

export function errorMessage(err: unknown): string {
  if (isScheduleToStartTimeout(err))
    return `${(err as ActivityFailure).activityType ?? 'an activity'} was not taken by the job's host in time: the host is lost`;
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * How the job ended, from what its body threw (null: it ran to its end) and the
 * ending a cancel or the time limit set. A cancellation with no ending of Draftsman's
 * is Temporal's own cancel of the workflow.
 */
export function jobEnd(failure: unknown, ending: Ending | null, isCancellation: (err: unknown) => boolean): { status: JobStatus; ending: Ending | null } {
  if (failure === null) return { status: 'succeeded', ending };
  if (ending) return { status: ending.status, ending };
  if (failure instanceof ApplicationFailure && failure.type === FailureType.JobRejected) return { status: 'rejected', ending };
  if (isCancellation(failure)) {
    const byTemporal: Ending = { status: 'cancelled', reason: 'workflow cancellation requested' };
    return { status: 'cancelled', ending: byTemporal };
  }
  return { status: isStepTimeout(failure) ? 'timed_out' : 'failed', ending };
}

/** The job's error as the view and the store say it; undefined for a success. */
export function jobError(status: JobStatus, ending: Ending | null, interrupted: StepView | null, failure: unknown): string | undefined {
  if (status === 'succeeded') return undefined;
  if (ending) return `${ending.reason}${interrupted ? ` (during ${interrupted.kind}-${interrupted.index})` : ''}`;
  return errorMessage(failure);
}

/**
 * The view a loop hands to its next run: the loop steps of this run only (at most two
 * an iteration), so that what is carried across runs stays bounded too.
 */
export function carriedView(view: JobView, iterationsPerRun: number): JobView {
  const earlier = view.steps.filter((st) => st.kind === 'loop' || st.kind === 'until');
  const dropped = earlier.slice(0, Math.max(0, earlier.length - 2 * iterationsPerRun));
  return {
    ...view,
    steps: view.steps.filter((st) => !dropped.includes(st)),
    stepsOmitted: (view.stepsOmitted ?? 0) + dropped.length,
  };
}

export function phaseOf(kind: StepKind): string {
  return kind === 'until' ? 'loop' : kind;
}

export function oneLine(command: string): string {
  const line = command.replace(/\s+/g, ' ').trim();
  return line.length > 80 ? `${line.slice(0, 77)}...` : line;
}

/** The longest activity summary shown in the Web UI for a batch of steps. */
export const SUMMARY_MAX = 600;

export function clip(summary: string, max = SUMMARY_MAX): string {
  return summary.length > max ? `${summary.slice(0, max - 3)}...` : summary;
}
