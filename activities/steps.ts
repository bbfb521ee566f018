import { CancelledFailure, Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { StepOutcome } from '../common/job';
import { FailureType, stepTimeoutMessage } from '../common/names';
import { StaleAttemptError } from '../db/step-store';
import { CLONE_TOKEN_ENV } from '../common/credentials';
import { CLONE_SCRIPT, cloneEnv } from './clone';
import type { Shared } from './deps';
import { PauseDetector } from './pause-detector';
import { createWarm, type KeepWorkspaceInput, prepareJobWorkspace, type RestoreWorkspaceInput, type WarmInput } from './warm';
import { executeStep } from './step/execute';
import type { StepInput } from './step/input';

export type { StepInput } from './step/input';

export interface CloneInput {
  jobId: string;
  /** When the job was created (the workflow's start), for the pickup-latency metric. */
  createdAt?: string;
  gitTokenSecret?: string | null;
  maskRefs?: string[];
  seq: number;
  /** The job's placement (1 when absent): from the second, what an earlier one left on this host is removed first. */
  placement?: number;
  repo: string;
  commit: string;
  image: string;
  timeoutSeconds: number;
}

/**
 * Steps that run one after another in one activity: the clone (when given) and the
 * setup steps, or the validate steps. One activity instead of one per step saves a
 * round trip through the server per step, and the server's and the worker's CPU.
 */
export interface StepsInput {
  jobId: string;
  clone?: Omit<CloneInput, 'jobId'>;
  steps: Omit<StepInput, 'jobId'>[];
  /** Run every step whatever the exit codes (validate); otherwise stop at the first failure (clone, setup). */
  keepGoing: boolean;
  /** Setup with dependency caches, or whose workspace is kept once it succeeded. */
  warm?: WarmInput;
}

/** Without the server's view, how long an attempt in doubt waits for the answer to a heartbeat. */
const HEARTBEAT_ANSWER_MS = 300;
/** How long an attempt whose cancel the server confirms waits for it to be delivered. */
const CANCEL_DELIVERY_MS = 5_000;
/** How long a batch waits after a heartbeat between steps for its answer (a cancel) before the next step. */
const BETWEEN_STEPS_ANSWER_MS = 50;

/** The activities that run a job's steps. */
export function createStepActivities(sh: Shared) {
  /**
   * An attempt in doubt (a retry, or one that was paused) asks before it starts a step
   * whether it still holds the job: a cancel requested while no attempt ran reaches an
   * attempt only with the answer to a heartbeat, which a short step would outrun, and
   * the server may have handed the activity to a newer attempt. Asked of the server when
   * it can be; a server that does not answer fails the attempt, to be retried.
   */
  async function confirmHeld(): Promise<void> {
    const ctx = Context.current();
    ctx.heartbeat();
    let wait = HEARTBEAT_ANSWER_MS;
    const workflowId = ctx.info.workflowExecution?.workflowId;
    if (sh.describeActivity && workflowId) {
      const pending = await sh.describeActivity(workflowId, ctx.info.activityId);
      if (!pending || pending.attempt > ctx.info.attempt) throw new StaleAttemptError(workflowId, ctx.info.activityType, ctx.info.attempt);
      if (!pending.cancelRequested) return;
      wait = CANCEL_DELIVERY_MS;
    }
    await ctx.sleep(wait).catch(() => undefined);
  }

  /** executeStep with its metrics and log lines. */
  async function observedStep(input: StepInput, onStarted?: () => Promise<void>, beats?: { last: number }): Promise<StepOutcome> {
    const log = sh.logger.child({ jobId: input.jobId, step: `${input.kind}-${input.index}` });
    sh.metrics.runningContainers.inc();
    log.info({ attempt: Context.current().info.attempt }, 'step running');
    try {
      const outcome = await executeStep(sh, input, log, onStarted, beats);
      const seconds = outcome.startedAt && outcome.finishedAt ? (Date.parse(outcome.finishedAt) - Date.parse(outcome.startedAt)) / 1000 : null;
      if (seconds !== null) sh.metrics.stepDuration.observe({ kind: input.kind }, seconds);
      if (outcome.cpuSeconds !== undefined) sh.metrics.stepCpuSeconds.inc({ kind: input.kind }, outcome.cpuSeconds);
      if (outcome.peakMemoryBytes !== undefined) sh.metrics.stepPeakMemory.observe(outcome.peakMemoryBytes);
      log.info(
        { status: outcome.status, exitCode: outcome.exitCode, oomKilled: outcome.oomKilled, reason: outcome.reason, seconds, cpuSeconds: outcome.cpuSeconds },
        'step finished',
      );
      return outcome;
    } catch (err) {
      // The engine's own words are in the cause (a RunnerError says what Draftsman was doing).
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : undefined;
      log.warn({ err: err instanceof Error ? err.message : String(err), ...(cause ? { cause } : {}) }, 'step ended without a result');
      throw err;
    } finally {
      sh.metrics.runningContainers.dec();
    }
  }

  /**
   * The clone as a step: Draftsman's script in the job's image. A token reaches git as a
   * placeholder the egress proxy swaps for it on the way to the repository's host; only
   * steps on an operator's network of their own (no proxy) get the token itself.
   */
  function cloneStep(input: CloneInput): StepInput {
    const token = input.gitTokenSecret
      ? sh.config.DRAFTSMAN_INSECURE_STEP_NETWORK
        ? sh.resolveSecret(input.gitTokenSecret)
        : ({ placeholder: true } as const)
      : undefined;
    return {
      ...(typeof token === 'object' ? { credentials: [{ env: CLONE_TOKEN_ENV }] } : {}),
      jobId: input.jobId,
      seq: input.seq,
      ...(input.placement ? { placement: input.placement } : {}),
      kind: 'clone',
      index: 0,
      image: input.image,
      command: CLONE_SCRIPT,
      env: cloneEnv(input.repo, input.commit, token),
      maskRefs: input.maskRefs,
      timeoutSeconds: input.timeoutSeconds,
    };
  }

  const warm = createWarm(sh);
  const prepareWorkspace = (input: CloneInput) => prepareJobWorkspace(sh, input.jobId, input.placement);

  /** Observes the job's pickup latency once its clone has started. */
  function pickedUp(input: CloneInput): () => Promise<void> {
    return async () => {
      // The job's creation time comes with the input; a workflow that scheduled its clone before it did is looked up.
      const created = input.createdAt ? new Date(input.createdAt) : await sh.store.jobCreatedAt(input.jobId);
      if (created) sh.metrics.jobPickup.observe((Date.now() - created.getTime()) / 1000);
    };
  }

  /**
   * One step per activity, as jobs started before `runSteps` ran their clone, setup
   * and validate steps and as loop steps still run: a time limit and a cancel end the
   * activity with the failure the workflow maps to the step's status.
   */
  async function single(input: StepInput, onStarted?: () => Promise<void>): Promise<StepOutcome> {
    if (Context.current().info.attempt > 1) await confirmHeld();
    const outcome = await observedStep(input, onStarted);
    const name = `${outcome.kind}-${outcome.index}`;
    if (outcome.status === 'timed_out') {
      throw ApplicationFailure.nonRetryable(stepTimeoutMessage(name, input.timeoutSeconds), FailureType.StepTimeout, {
        step: name,
        seconds: input.timeoutSeconds,
      });
    }
    if (outcome.status === 'cancelled') throw new CancelledFailure(`step ${name} cancelled`);
    return outcome;
  }

  return {
    async cloneRepository(input: CloneInput): Promise<StepOutcome> {
      await prepareWorkspace(input);
      return single(cloneStep(input), pickedUp(input));
    },

    runStep: (input: StepInput) => single(input),

    /** Before the clone: the workspace from one kept after setup, or another job's (warm.ts). */
    restoreWorkspace: (input: RestoreWorkspaceInput) => warm.restoreWorkspace(input),

    /** After a loop step the spec names: the workspace kept for forks (warm.ts). */
    keepWorkspace: (input: KeepWorkspaceInput) => warm.keepAfterStep(input),

    /**
     * Runs steps in order, each exactly as runStep does (claimed, re-attached on a
     * retry). A step's own end (its exit code, its time limit, a cancel, a lost
     * container) is a result, not an error, so that the workflow learns how every
     * step before it ended; only a failure of Draftsman's own (engine, database), or a
     * worker going away, fails the activity, and its retry finds the steps recorded.
     */
    async runSteps(input: StepsInput): Promise<StepOutcome[]> {
      const ctx = Context.current();
      /** When the last heartbeat went out (a step heartbeats while it waits longer than the interval). */
      const beats = { last: Date.now() };
      const batch: [StepInput, (() => Promise<void>) | undefined][] = input.steps.map((step) => [{ ...step, jobId: input.jobId }, undefined]);
      if (input.clone) {
        const clone = { ...input.clone, jobId: input.jobId };
        await prepareWorkspace(clone);
        batch.unshift([cloneStep(clone), pickedUp(clone)]);
      }
      const results: StepOutcome[] = [];
      const placement = input.clone?.placement ?? input.steps[0]?.placement;
      let cachesRestored = !input.warm?.caches?.length;
      /** What setup learns of its caches' restores. */
      let hits: Record<string, string> = {};
      if (ctx.info.attempt > 1) await confirmHeld();
      const pauses = new PauseDetector((ctx.info.heartbeatTimeoutMs || 5_000) / 2);
      try {
        for (const [step, onStarted] of batch) {
          if (results.length > 0) {
            // A step shorter than the heartbeat interval sends none, and a cancel reaches
            // the activity only with a heartbeat's answer: one between steps, once a run
            // of short steps has lasted an interval, lets a cancel that came meanwhile
            // stop the next one. (Not after every step: an early first heartbeat costs
            // about a second of recovery after a worker loss; docs/performance-log.md.)
            // The workspace's preparation (volume and network holder) counts: it is part of the quiet run.
            if (Date.now() - beats.last >= sh.heartbeatMs) {
              ctx.heartbeat();
              beats.last = Date.now();
              // The answer (which carries a pending cancel) comes within milliseconds on a
              // healthy server: a moment for it before the next step starts.
              await new Promise((r) => setTimeout(r, BETWEEN_STEPS_ANSWER_MS));
            }
          }
          if (pauses.take()) await confirmHeld();
          if (ctx.cancellationSignal.aborted) {
            // Cancelled between two steps: the next one does not start. A worker that is
            // going away, or an attempt the server gave up, fails instead, and the
            // attempt that took over carries on.
            if (ctx.cancellationDetails?.cancelRequested) break;
            throw ctx.cancellationSignal.reason;
          }
          if (!cachesRestored && step.kind === 'setup') {
            // After the clone (the key hashes its files), before setup mounts them.
            await warm.restoreCaches(input.jobId, placement, input.warm!);
            cachesRestored = true;
            hits = await warm.lookups(input.jobId, placement, input.warm!);
          }
          const outcome = await observedStep(step.kind === 'setup' ? { ...step, env: { ...step.env, ...hits } } : step, onStarted, beats);
          results.push(outcome);
          // Past the budget, the next step would be stopped at once: the workflow decides.
          if (outcome.status === 'timed_out' || outcome.status === 'cancelled' || outcome.reason === 'budget_exceeded') break;
          if (outcome.status !== 'succeeded' && !input.keepGoing) break;
        }
      } finally {
        pauses.stop();
      }
      // Saved only once every step of setup succeeded: a failed or cancelled setup saves nothing.
      if (input.warm && results.length === batch.length && results.every((r) => r.status === 'succeeded')) {
        await warm.saveCaches(input.jobId, placement, input.warm);
        await warm.saveSnapshot(input.jobId, placement, input.warm);
      }
      return results;
    },
  };
}
