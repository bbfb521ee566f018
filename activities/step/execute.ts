/**
 * One step's execution, written as phases a test can stop between: claim, launch
 * (create or find, start or attach), follow, wait, stop, record, remove. Each phase
 * is safe to repeat: a retried attempt claims the step again and finds its recorded
 * end, or re-attaches to its container, so a step's command starts at most once.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { ContainerLostError, EngineUnreachableError, ImageNotFoundError, RunnerError } from '../common/errors';
import type { StepOutcome } from '../common/job';
import type { Logger } from '../common/logger';
import { StaleAttemptError } from '../db/step-store';
import type { StepExit, StepRef } from '../runner/runner';
import type { StepInput } from './step-input';
import type { Shared } from './deps';
import { StepFollower } from './step-follower';
import { EngineWatch, StallGuard, WorkspaceWatch } from './watches';

const iso = (d: Date | null) => d?.toISOString() ?? null;

/**
 * Why a wait for the step's exit was interrupted (`engine`: the engine stopped
 * answering for it; `workspace`: its workspace grew past the cap).
 */
type Interruption = 'timeout' | 'cancel' | 'leave' | 'engine' | 'workspace';

/**
 * Runs one step to its end and returns how it ended: exited (succeeded or failed),
 * timed out, cancelled, or lost with its container. Throws only for Draftsman's own
 * failures (engine, database), for a worker that is going away (the next attempt
 * re-attaches), and for an attempt that a newer one has taken the step from.
 */
export async function executeStep(
  sh: Shared,
  input: StepInput,
  log: Logger,
  onStarted?: () => Promise<void>,
  /** When this attempt last heartbeated: kept current here, read by a batch between its steps. */
  beats?: { last: number },
): Promise<StepOutcome> {
  const ctx = Context.current();
  const attempt = ctx.info.attempt;
  const placement = input.placement ?? 1;
  const ref: StepRef = { jobId: input.jobId, kind: input.kind, index: input.index, ...(placement > 1 ? { placement } : {}) };
  const record = { kind: input.kind, index: input.index, seq: input.seq };
  const stored = { ...record, placement };
  const finish = async (outcome: StepOutcome): Promise<StepOutcome> => {
    // A newer attempt that took the step over records it (and removes its container).
    if ((await sh.store.steps.record(input.jobId, { ...outcome, seq: input.seq, placement }, attempt)) === 'stale') {
      throw new StaleAttemptError(input.jobId, `${input.kind}-${input.index}`, attempt);
    }
    return outcome;
  };

  // Phase: claim. A recorded end is returned as it is; a newer attempt's step is left to it.
  const claim = await sh.store.steps.claim(input.jobId, stored, attempt);
  if (claim.state === 'finished') {
    sh.removals.later(ref);
    return claim.outcome;
  }
  if (claim.state === 'stale') throw new StaleAttemptError(input.jobId, `${input.kind}-${input.index}`, attempt);

  // Interruptions are listened for from here on, so that a cancel that arrives while
  // the container is being created is seen when the wait begins.
  const interrupt = new AbortController();
  let interruption: Interruption | null = null;
  let interruptedAt = Infinity;
  const interruptWith = (why: Interruption) => {
    if (interruption === null) interruptedAt = Date.now();
    interruption ??= why;
    interrupt.abort();
  };
  const onCancel = () => interruptWith(ctx.cancellationDetails?.cancelRequested ? 'cancel' : 'leave');
  const listenEarly = !sh.faults.cancelListenerAfterCreate;
  if (listenEarly) {
    if (ctx.cancellationSignal.aborted) onCancel();
    else ctx.cancellationSignal.addEventListener('abort', onCancel);
  }
  /** Cancelled before its command started (no container of an earlier attempt runs it): it never runs. */
  const cancelledBeforeStart = async () => interruption === 'cancel' && (await sh.runner.status(ref)).state === 'missing';
  try {
    if (await cancelledBeforeStart()) return await finish(notRun(input, 'cancelled'));
    if (interruption === 'leave') throw ctx.cancellationSignal.reason;

    // Phase: launch. A step whose command was launched and whose container is gone was
    // lost under the job (engine restart, host loss): it is not started again.
    const startCalledAt = Date.now();
    let stoppedWithEngine = false;
    if (claim.launched) {
      const found = await sh.runner.status(ref);
      if (found.state === 'missing') {
        log.warn('the step was launched and its container is gone');
        return await finish({ ...notRun(input, 'failed'), reason: 'container_lost' });
      }
      // The engine went away while an earlier attempt waited: the end it shows now is
      // the engine's (it stops its containers when it stops), not the command's own, and
      // what the step printed from then on may not be in the engine's log. It is recorded
      // as lost, after the rest of its output is read; a container that survived (live
      // restore) is followed again.
      stoppedWithEngine = claim.engineInterrupted && found.state === 'exited';
      if (claim.engineInterrupted && found.state === 'running') {
        await sh.store.steps.engineInterrupted(input.jobId, input.kind, input.index, attempt, false, placement);
      }
    }
    const secretEnv = Object.fromEntries(Object.entries(input.secretEnv ?? {}).map(([name, r]) => [name, sh.resolveSecret(r)]));
    const at = { jobId: input.jobId, step: `${input.kind}-${input.index}` };
    await sh.probe('before-create', at);
    // A cancel that arrived meanwhile: the command is not started at all. (A container an
    // earlier attempt started is re-attached below, and stopped with its grace period.)
    if (await cancelledBeforeStart()) return await finish(notRun(input, 'cancelled'));
    if (sh.config.DRAFTSMAN_INSECURE_STEP_NETWORK) {
      log.warn(
        { network: sh.config.DRAFTSMAN_INSECURE_STEP_NETWORK },
        "DRAFTSMAN_INSECURE_STEP_NETWORK: this step runs on a network of the operator's choice, not behind the egress proxy, and may reach the control plane",
      );
    }
    try {
      const endTimer = sh.metrics.containerStart.startTimer();
      await sh.runner.start({ ...input, env: { ...input.env, ...secretEnv } });
      endTimer();
    } catch (err) {
      if (err instanceof ImageNotFoundError) throw ApplicationFailure.nonRetryable(err.message, err.name);
      if (err instanceof ContainerLostError) {
        log.warn({ err: err.message }, 'the engine cannot start the step container any more');
        await sh.runner.remove(ref).catch(() => undefined);
        return await finish({ ...notRun(input, 'failed'), reason: 'container_lost' });
      }
      throw err;
    }
    await sh.probe('after-create', at);
    if (!listenEarly) ctx.cancellationSignal.addEventListener('abort', onCancel);
    const launched = sh.store.steps.launched(input.jobId, input.kind, input.index, placement);
    launched.catch(() => undefined);
    await onStarted?.();

    // The budget counts from the container's own start, so a re-attached step gets no extra time.
    const state = attempt === 1 ? null : await sh.runner.status(ref);
    const startedAt = (state?.state === 'running' ? state.startedAt : state?.state === 'exited' ? state.exit.startedAt : null)?.getTime() ?? startCalledAt;
    const deadlineAt = startedAt + input.timeoutSeconds * 1000;
    /**
     * How a step that exited by itself ended. Stopped while no worker watched it (by the
     * janitor, past its deadline): a timeout, not a failure.
     */
    const endOf = (exit: StepExit): StepOutcome['status'] => {
      const overran = exit.exitCode !== 0 && exit.finishedAt !== null && exit.finishedAt.getTime() > deadlineAt;
      return overran ? 'timed_out' : exit.exitCode === 0 ? 'succeeded' : 'failed';
    };

    // Phase: follow. Output goes from the container to PostgreSQL while the step runs,
    // never through Temporal's history; a re-attached attempt resumes after what is stored.
    const follower = await StepFollower.start(sh, input, ref, attempt === 1, attempt);

    // Phase: wait. Heartbeats last until the output is drained: a long drain is work, not a lost worker.
    const deadline = setTimeout(() => interruptWith('timeout'), Math.max(0, deadlineAt - Date.now()));
    const stall = new StallGuard(sh.stallMs, () => follower.linesRead());
    const beat = setInterval(() => {
      // An attempt stuck somewhere unbounded stops heartbeating (and fails below).
      if (stall.stalled()) return;
      ctx.heartbeat({ step: `${input.kind}-${input.index}` });
      if (beats) beats.last = Date.now();
    }, sh.heartbeatMs);
    const engine: { lost?: EngineUnreachableError | RunnerError } = {};
    const watch = new EngineWatch(
      sh.runner,
      ref,
      sh.engineWatch,
      (err) => {
        engine.lost = err;
        interruptWith('engine');
      },
      () => stall.progressed(),
    );
    const workspace = new WorkspaceWatch(sh.runner, input.jobId, sh.config.DRAFTSMAN_MAX_WORKSPACE_MB * 2 ** 20, sh.workspaceWatchMs, (bytes) => {
      log.warn({ bytes, capMb: sh.config.DRAFTSMAN_MAX_WORKSPACE_MB }, 'the workspace grew past its cap; the step is stopped');
      interruptWith('workspace');
    });
    const stopWatches = () => {
      watch.stop();
      workspace.stop();
    };
    try {
      return await Promise.race([
        stall.promise,
        (async (): Promise<StepOutcome> => {
          let exit: StepExit;
          try {
            // No heartbeat at the start: a step shorter than the interval costs the server none.
            // A re-attached step that has exited already is not raced against its deadline.
            exit = state?.state === 'exited' ? state.exit : await sh.runner.wait(ref, interrupt.signal);
            stopWatches();
          } catch (err) {
            stopWatches();
            if (!interrupt.signal.aborted) {
              // Noted before anything else that may wait: whichever attempt comes next must
              // know the engine went away under the step.
              if (err instanceof EngineUnreachableError && !sh.faults.engineStopAsOwnExit) {
                await sh.store.steps.engineInterrupted(input.jobId, input.kind, input.index, attempt, true, placement);
              }
              await follower.abandon();
              // The container vanished while the step ran: lost, not to be started again.
              if (err instanceof RunnerError && (await sh.runner.status(ref)).state === 'missing') {
                return await finish({ ...notRun(input, 'failed'), reason: 'container_lost', ...follower.stored() });
              }
              throw err;
            }
            if (interruption === 'leave') {
              // Worker shutdown, or the server gave this attempt up: the container keeps
              // running and the next attempt re-attaches to it (and to its output).
              await follower.abandon();
              throw err;
            }
            if (interruption === 'engine') {
              // The engine hangs (noted below as an engine interruption), or its wait missed
              // the exit: the attempt gives up, and the next re-attaches to what is left.
              log.warn({ err: engine.lost?.message }, 'the engine stopped answering for the step; the attempt gives it up');
              await follower.abandon();
              throw engine.lost ?? new EngineUnreachableError('the engine stopped answering for the step');
            }
            // Phase: stop. Timed out or cancelled: SIGTERM to the step's process group, the grace period, SIGKILL.
            // The stop takes up to its grace period: no stall meanwhile.
            stall.progressed((sh.grace + sh.config.DRAFTSMAN_ENGINE_REQUEST_SECONDS) * 1000);
            const stop = await sh.runner.cancel(ref, sh.grace);
            await follower.drain(log);
            await launched;
            const stopped = await sh.runner.status(ref);
            const exitInfo = stopped.state === 'exited' ? stopped.exit : null;
            // A step that exited by itself before the cancel or timeout keeps its own end. One
            // that ended after it, with no stop of ours, was stopped by something else on the
            // way (an engine restart's SIGTERM): its end is the interruption's.
            const endedFirst = exitInfo?.finishedAt && exitInfo.finishedAt.getTime() < interruptedAt;
            const ownEnd = stop === 'not-running' && exitInfo && endedFirst ? endOf(exitInfo) : null;
            const full = !ownEnd && interruption === 'workspace';
            const outcome = await finish({
              ...record,
              status: ownEnd ?? (interruption === 'timeout' ? 'timed_out' : full ? 'failed' : 'cancelled'),
              ...(full ? { reason: 'workspace_full' as const } : {}),
              exitCode: exitInfo?.exitCode ?? null,
              oomKilled: exitInfo?.oomKilled ?? false,
              startedAt: iso(exitInfo?.startedAt ?? null),
              finishedAt: iso(exitInfo?.finishedAt ?? null),
              ...follower.stored(),
            });
            await sh.runner.remove(ref);
            return outcome;
          }
          clearTimeout(deadline);
          await sh.probe('at-step-end', at);
          await follower.drain(log, stoppedWithEngine ? 'the engine went away while the step ran; what it printed from then on may be missing' : undefined);
          await launched;

          // Phase: record, then remove.
          if (stoppedWithEngine) log.warn({ exitCode: exit.exitCode }, 'the engine went away while the step ran and stopped its container');
          const outcome = await finish({
            ...record,
            ...(stoppedWithEngine ? { status: 'failed', reason: 'container_lost' } : { status: endOf(exit) }),
            exitCode: exit.exitCode,
            oomKilled: exit.oomKilled,
            startedAt: iso(exit.startedAt),
            finishedAt: iso(exit.finishedAt),
            ...follower.stored(),
          });
          // The outcome is recorded, so the container is no longer needed: it is removed
          // while the workflow schedules the next step; endJob waits for these removals.
          sh.removals.later(ref);
          return outcome;
        })(),
      ]);
    } finally {
      clearTimeout(deadline);
      clearInterval(beat);
      stopWatches();
    }
  } catch (err) {
    // The engine went away under the step (while it was waited for, stopped or read):
    // noted for the attempt that finds what is left.
    if (err instanceof EngineUnreachableError && !sh.faults.engineStopAsOwnExit) {
      await sh.store.steps.engineInterrupted(input.jobId, input.kind, input.index, attempt, true, placement);
    }
    throw err;
  } finally {
    ctx.cancellationSignal.removeEventListener('abort', onCancel);
  }
}

/** A step that ended without its command running to an exit. */
function notRun(input: StepInput, status: 'cancelled' | 'failed'): StepOutcome {
  return { kind: input.kind, index: input.index, status, exitCode: null, oomKilled: false, startedAt: null, finishedAt: null };
}
