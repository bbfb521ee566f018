/**
 * One step's execution: the phases of phases.ts in order, and the wait between launch
 * and record (until exit, the step's time limit, a cancel, the worker leaving, an engine
 * that stops answering, or a workspace past its cap).
 */
import { EngineUnreachableError, RunnerError } from '../../common/errors';
import type { StepOutcome } from '../../common/job';
import type { Logger } from '../../common/logger';
import type { StepExit } from '../../runner/runner';
import { BUDGET_CHECK_MS, BudgetWatch, EngineWatch, StallGuard, WorkspaceWatch } from '../watches';
import { StepAttempt, type StepDeps } from './attempt';
import { StepFollower } from './follow';
import type { StepInput } from './input';
import { claimStep, endOf, exitedOutcome, launchStep, noteEngineLost, recordStep, stepUsage, stopStep } from './phases';

export type { StepDeps } from './attempt';

/**
 * Runs one step to its end and returns how it ended: exited (succeeded or failed),
 * timed out, cancelled, or lost with its container. Throws only for Draftsman's own
 * failures (engine, database), for a worker that is going away (the next attempt
 * re-attaches), and for an attempt that a newer one has taken the step from.
 */
export async function executeStep(
  d: StepDeps,
  input: StepInput,
  log: Logger,
  onStarted?: () => Promise<void>,
  /** When this attempt last heartbeated: kept current here, read by a batch between its steps. */
  beats?: { last: number },
): Promise<StepOutcome> {
  const a = new StepAttempt(input, d.context(), log);
  const claim = await claimStep(d, a);
  if (claim.state === 'finished') {
    d.removals.later(a.ref);
    return claim.outcome;
  }
  a.listen();
  try {
    const launch = await launchStep(d, a, claim, onStarted);
    if (launch.ended) return launch.ended;
    return await waitAndRecord(d, a, launch, beats);
  } catch (err) {
    // The engine went away under the step (while it was waited for, stopped or read):
    // noted for the attempt that finds what is left.
    if (err instanceof EngineUnreachableError) await noteEngineLost(d, a);
    throw err;
  } finally {
    a.stopListening();
  }
}

/** Phases follow, wait, then stop or record; the container is removed once the outcome is recorded. */
async function waitAndRecord(
  d: StepDeps,
  a: StepAttempt,
  launch: Exclude<Awaited<ReturnType<typeof launchStep>>, { ended: StepOutcome }>,
  beats?: { last: number },
): Promise<StepOutcome> {
  const { input, log } = a;
  const { state, deadlineAt, stoppedWithEngine, launched } = launch;
  // Phase: follow. Output goes from the container to the store while the step runs,
  // never through Temporal's history; a re-attached attempt resumes after what is stored.
  const follower = await StepFollower.start(d, input, a.ref, a.attempt === 1 && !input.resumed, a.attempt);

  // Phase: wait. Heartbeats last until the output is drained: a long drain is work, not a lost worker.
  const deadline = setTimeout(() => a.interruptWith('timeout'), Math.max(0, deadlineAt - Date.now()));
  const stall = new StallGuard(d.stallMs, () => follower.linesRead());
  const beat = setInterval(() => {
    // An attempt stuck somewhere unbounded stops heartbeating (and fails below).
    if (stall.stalled()) return;
    a.ctx.heartbeat({ step: a.name });
    if (beats) beats.last = Date.now();
  }, d.heartbeatMs);
  const engine: { lost?: EngineUnreachableError | RunnerError } = {};
  const watch = new EngineWatch(
    d.runner,
    a.ref,
    d.engineWatch,
    (err) => {
      engine.lost = err;
      a.interruptWith('engine');
    },
    () => stall.progressed(),
  );
  const workspace = new WorkspaceWatch(
    d.runner,
    input.jobId,
    d.config.DRAFTSMAN_MAX_WORKSPACE_MB * 2 ** 20,
    d.workspaceWatchMs,
    (bytes) => {
      log.warn({ bytes, capMb: d.config.DRAFTSMAN_MAX_WORKSPACE_MB }, 'the workspace grew past its cap; the step is stopped');
      a.interruptWith('workspace');
    },
    (bytes) => void d.steps.noteWorkspaceBytes(input.jobId, bytes).catch(() => undefined),
  );
  const budget = input.budget
    ? new BudgetWatch(
        d.runner,
        () => d.steps.spent(input.jobId),
        a.ref,
        input.budget.limits,
        d.budgetCheckMs ?? BUDGET_CHECK_MS,
        (over) => {
          log.warn(over, 'the job crossed its budget; the step is stopped');
          d.metrics.budgetsExceeded.inc({ budget: over.budget });
          a.overBudget = over;
          a.interruptWith('budget');
        },
      )
    : null;
  const stopWatches = () => {
    watch.stop();
    workspace.stop();
    budget?.stop();
  };
  try {
    return await Promise.race([
      stall.promise,
      (async (): Promise<StepOutcome> => {
        let exit: StepExit;
        try {
          // No heartbeat at the start: a step shorter than the interval costs the server none.
          // A re-attached step that has exited already is not raced against its deadline.
          exit = state?.state === 'exited' ? state.exit : await d.runner.wait(a.ref, a.interrupt.signal);
          stopWatches();
        } catch (err) {
          stopWatches();
          if (!a.interrupt.signal.aborted) {
            // Noted before anything else that may wait: whichever attempt comes next must
            // know the engine went away under the step.
            if (err instanceof EngineUnreachableError) await noteEngineLost(d, a);
            await follower.abandon();
            // The container vanished while the step ran: lost, not to be started again.
            if (err instanceof RunnerError && (await d.runner.status(a.ref)).state === 'missing') {
              return await recordStep(d, a, { ...a.notRun('failed', 'container_lost'), ...follower.stored() });
            }
            throw err;
          }
          if (a.interruption === 'leave') {
            // Worker shutdown, or the server gave this attempt up: the container keeps
            // running and the next attempt re-attaches to it (and to its output).
            await follower.abandon();
            throw err;
          }
          if (a.interruption === 'engine') {
            // The engine hangs (noted below as an engine interruption), or its wait missed
            // the exit: the attempt gives up, and the next re-attaches to what is left.
            log.warn({ err: engine.lost?.message }, 'the engine stopped answering for the step; the attempt gives it up');
            await follower.abandon();
            throw engine.lost ?? new EngineUnreachableError('the engine stopped answering for the step');
          }
          if (a.interruption === 'budget' && input.budget?.onExceed === 'approval' && !input.budget.raised) {
            // Frozen, not stopped: a person decides at the job's gate whether it goes on
            // (the next attempt thaws it and follows it from where this one stopped).
            await d.runner.pause(a.ref);
            await follower.abandon();
            await launched;
            return { ...a.notRun('failed'), reason: 'budget_exceeded', overBudget: a.overBudget!, paused: true };
          }
          // Phase: stop. The stop takes up to its grace period: no stall meanwhile.
          stall.progressed((d.grace + d.config.DRAFTSMAN_ENGINE_REQUEST_SECONDS) * 1000);
          const stopped = await stopStep(d, a, deadlineAt, async () => {
            await follower.drain(log);
            await launched;
            return follower.stored();
          });
          const outcome = await recordStep(d, a, { ...stopped, ...(await stepUsage(d, a)) });
          await d.runner.remove(a.ref);
          return outcome;
        }
        clearTimeout(deadline);
        await follower.drain(log, stoppedWithEngine ? 'the engine went away while the step ran; what it printed from then on may be missing' : undefined);
        await launched;

        // Phase: record, then remove.
        if (stoppedWithEngine) log.warn({ exitCode: exit.exitCode }, 'the engine went away while the step ran and stopped its container');
        const outcome = await recordStep(d, a, {
          ...(stoppedWithEngine
            ? exitedOutcome(a, 'failed', exit, follower.stored(), 'container_lost')
            : exitedOutcome(a, endOf(exit, deadlineAt), exit, follower.stored())),
          ...(await stepUsage(d, a)),
        });
        // The outcome is recorded, so the container is no longer needed: it is removed
        // while the workflow schedules the next step; endJob waits for these removals.
        d.removals.later(a.ref);
        return outcome;
      })(),
    ]);
  } finally {
    clearTimeout(deadline);
    clearInterval(beat);
    stopWatches();
  }
}
