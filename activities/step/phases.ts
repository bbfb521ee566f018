/**
 * The phases of a step's execution, each safe to repeat: claim, launch (create or find,
 * start or attach), follow (follow.ts), wait, stop, record. A retried attempt claims the
 * step again and finds its recorded end, or re-attaches to its container, so a step's
 * command starts at most once. docs/reliability.md has the table of what a repeat finds.
 */
import { randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { ContainerLostError, ImageNotFoundError } from '../../common/errors';
import { gitCredentialEnv, newPlaceholder } from '../../common/credentials';
import type { StepOutcome } from '../../common/job';
import { StaleAttemptError, type StepClaim } from '../../db/step-store';
import type { StepExit, StepState } from '../../runner/runner';
import type { StepAttempt, StepDeps } from './attempt';

const iso = (d: Date | null) => d?.toISOString() ?? null;

/** Phase: record. The outcome, unless a newer attempt took the step over (it records it, and removes its container). */
export async function recordStep(d: StepDeps, a: StepAttempt, outcome: StepOutcome): Promise<StepOutcome> {
  if ((await d.steps.record(a.input.jobId, { ...outcome, seq: a.input.seq, placement: a.placement }, a.attempt)) === 'stale') {
    throw new StaleAttemptError(a.input.jobId, a.name, a.attempt);
  }
  return outcome;
}

/**
 * What the step's processes used, by the backend's accounting (read before its container
 * is removed); nothing when it cannot be measured, which never fails the step.
 */
export async function stepUsage(d: StepDeps, a: StepAttempt): Promise<Pick<StepOutcome, 'cpuSeconds' | 'peakMemoryBytes'>> {
  const usage = await d.runner.usage(a.ref).catch((err: Error) => {
    a.log.warn({ err: err.message }, "the step's usage could not be read");
    return null;
  });
  return usage ? { cpuSeconds: Math.round(usage.cpuSeconds * 1000) / 1000, peakMemoryBytes: usage.peakMemoryBytes } : {};
}

/** Phase: claim. A recorded end is returned as it is; a newer attempt's step is left to it. */
export async function claimStep(d: StepDeps, a: StepAttempt): Promise<Exclude<StepClaim, { state: 'stale' }>> {
  const { kind, index, seq } = a.input;
  const claim = await d.steps.claim(a.input.jobId, { kind, index, seq, placement: a.placement }, a.attempt);
  if (claim.state === 'stale') throw new StaleAttemptError(a.input.jobId, a.name, a.attempt);
  return claim;
}

/** Cancelled before its command started (no container of an earlier attempt runs it): it never runs. */
async function cancelledBeforeStart(d: StepDeps, a: StepAttempt): Promise<boolean> {
  return a.interruption === 'cancel' && (await d.runner.status(a.ref)).state === 'missing';
}

/** How a launch ended: the step's end already (never started, or lost), or its command running or exited. */
export type Launch =
  | { ended: StepOutcome }
  | {
      ended?: undefined;
      /** The engine went away under an earlier attempt and stopped the container: its end is the engine's. */
      stoppedWithEngine: boolean;
      /** The step's state on a re-attach (null for a first attempt). */
      state: StepState | null;
      /** When the step's time budget ends (counted from the container's own start). */
      deadlineAt: number;
      /** The row marked launched (awaited before the record). */
      launched: Promise<void>;
    };

/**
 * Phase: launch. A step whose command was launched and whose container is gone was
 * lost under the job (engine restart, host loss): it is not started again.
 */
export async function launchStep(
  d: StepDeps,
  a: StepAttempt,
  claim: { launched: boolean; engineInterrupted: boolean },
  onStarted?: () => Promise<void>,
): Promise<Launch> {
  const { input, log } = a;
  if (await cancelledBeforeStart(d, a)) return { ended: await recordStep(d, a, a.notRun('cancelled')) };
  if (a.interruption === 'leave') throw a.ctx.signal.reason;
  const startCalledAt = Date.now();
  let stoppedWithEngine = false;
  if (claim.launched) {
    const found = await d.runner.status(a.ref);
    if (found.state === 'missing') {
      log.warn('the step was launched and its container is gone');
      return { ended: await recordStep(d, a, a.notRun('failed', 'container_lost')) };
    }
    // The engine went away while an earlier attempt waited: the end it shows now is
    // the engine's (it stops its containers when it stops), not the command's own, and
    // what the step printed from then on may not be in the engine's log. It is recorded
    // as lost, after the rest of its output is read; a container that survived (live
    // restore) is followed again.
    stoppedWithEngine = claim.engineInterrupted && found.state === 'exited';
    if (claim.engineInterrupted && found.state === 'running') {
      await d.steps.engineInterrupted(input.jobId, input.kind, input.index, a.attempt, false, a.placement);
    }
  }
  const secretEnv = Object.fromEntries(Object.entries(input.secretEnv ?? {}).map(([name, r]) => [name, d.resolveSecret(r)]));
  // A credential's variable holds the job's placeholder; the egress proxy holds the value.
  const credentials = input.credentials ?? [];
  const placeholders = credentials.length
    ? {
        ...(await d.steps.placeholders(
          input.jobId,
          credentials.map((c) => c.env),
          () => newPlaceholder(randomBytes),
        )),
        ...gitCredentialEnv(credentials),
      }
    : {};
  // A cancel that arrived meanwhile: the command is not started at all. (A container an
  // earlier attempt started is re-attached below, and stopped with its grace period.)
  if (await cancelledBeforeStart(d, a)) return { ended: await recordStep(d, a, a.notRun('cancelled')) };
  if (d.config.DRAFTSMAN_INSECURE_STEP_NETWORK) {
    log.warn(
      { network: d.config.DRAFTSMAN_INSECURE_STEP_NETWORK },
      "DRAFTSMAN_INSECURE_STEP_NETWORK: this step runs on a network of the operator's choice, not behind the egress proxy, and may reach the control plane",
    );
  }
  try {
    const endTimer = d.metrics.containerStart.startTimer();
    await d.runner.start({
      ...input,
      env: { ...input.env, ...secretEnv, ...placeholders },
      ...(input.credentials?.length ? { trustJobCa: true } : {}),
    });
    endTimer();
  } catch (err) {
    if (err instanceof ImageNotFoundError) throw ApplicationFailure.nonRetryable(err.message, err.name);
    if (err instanceof ContainerLostError) {
      log.warn({ err: err.message }, 'the engine cannot start the step container any more');
      await d.runner.remove(a.ref).catch(() => undefined);
      return { ended: await recordStep(d, a, a.notRun('failed', 'container_lost')) };
    }
    throw err;
  }
  // A step frozen at the job's budget that a person let go on: thawed where it was.
  if (input.resumed) await d.runner.unpause(a.ref);
  const launched = d.steps.launched(input.jobId, input.kind, input.index, a.placement);
  launched.catch(() => undefined);
  await onStarted?.();

  // The budget counts from the container's own start, so a re-attached step gets no extra
  // time; a thawed one gets its time limit again from the decision on.
  const state = a.attempt === 1 && !input.resumed ? null : await d.runner.status(a.ref);
  const startedAt = input.resumed
    ? startCalledAt
    : ((state?.state === 'running' ? state.startedAt : state?.state === 'exited' ? state.exit.startedAt : null)?.getTime() ?? startCalledAt);
  return { stoppedWithEngine, state, deadlineAt: startedAt + input.timeoutSeconds * 1000, launched };
}

/**
 * How a step that exited by itself ended. Stopped while no worker watched it (by the
 * janitor, past its deadline): a timeout, not a failure.
 */
export function endOf(exit: StepExit, deadlineAt: number): StepOutcome['status'] {
  const overran = exit.exitCode !== 0 && exit.finishedAt !== null && exit.finishedAt.getTime() > deadlineAt;
  return overran ? 'timed_out' : exit.exitCode === 0 ? 'succeeded' : 'failed';
}

/** The outcome of a step that exited (by itself, or stopped), with what its follower stored. */
export function exitedOutcome(
  a: StepAttempt,
  status: StepOutcome['status'],
  exit: StepExit | null,
  stored: { logBytes: number; logTruncated: boolean },
  reason?: 'container_lost' | 'workspace_full' | 'budget_exceeded',
): StepOutcome {
  // The sequence number travels with the outcome, as it always has (it is in stored histories).
  const outcome = {
    kind: a.input.kind,
    index: a.input.index,
    seq: a.input.seq,
    status,
    ...(reason ? { reason } : {}),
    exitCode: exit?.exitCode ?? null,
    oomKilled: exit?.oomKilled ?? false,
    startedAt: iso(exit?.startedAt ?? null),
    finishedAt: iso(exit?.finishedAt ?? null),
    ...stored,
  };
  return outcome;
}

/**
 * Phase: stop. Timed out or cancelled: SIGTERM to the step's process group, the grace
 * period, SIGKILL. Answers the end to record: a step that exited by itself before the
 * cancel or timeout keeps its own end; one that ended after it, with no stop of ours,
 * was stopped by something else on the way (an engine restart's SIGTERM): its end is
 * the interruption's.
 */
export async function stopStep(
  d: StepDeps,
  a: StepAttempt,
  deadlineAt: number,
  drained: () => Promise<{ logBytes: number; logTruncated: boolean }>,
): Promise<StepOutcome> {
  const stop = await d.runner.cancel(a.ref, d.grace);
  const stored = await drained();
  const stopped = await d.runner.status(a.ref);
  const exitInfo = stopped.state === 'exited' ? stopped.exit : null;
  const endedFirst = exitInfo?.finishedAt && exitInfo.finishedAt.getTime() < a.interruptedAt;
  const ownEnd = stop === 'not-running' && exitInfo && endedFirst ? endOf(exitInfo, deadlineAt) : null;
  const full = !ownEnd && a.interruption === 'workspace';
  const spent = !ownEnd && a.interruption === 'budget';
  const status = ownEnd ?? (a.interruption === 'timeout' ? 'timed_out' : full || spent ? 'failed' : 'cancelled');
  const outcome = exitedOutcome(a, status, exitInfo, stored, full ? 'workspace_full' : spent ? 'budget_exceeded' : undefined);
  return spent && a.overBudget ? { ...outcome, overBudget: a.overBudget } : outcome;
}

/** Notes that the engine went away under the step, for the attempt that finds what is left. */
export async function noteEngineLost(d: StepDeps, a: StepAttempt): Promise<void> {
  await d.steps.engineInterrupted(a.input.jobId, a.input.kind, a.input.index, a.attempt, true, a.placement);
}
