import fs from 'node:fs';
import { CancelledFailure, Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../common/config';
import { ImageNotFoundError, isInvalidJobSpecError } from '../common/errors';
import type { AcceptedJob, JobStatus, ResolvedJobSpec, StepKind } from '../common/job';
import { FailureType, stepTimeoutMessage } from '../common/names';
import { resolveJobSpec, specPolicy } from '../common/spec';
import type { JobStore, StepOutcome } from '../db/store';
import { DuplicateJobIdError } from '../db/store';
import type { Runner, StepExit, StepRef } from '../runner/runner';
import pino from 'pino';
import type { Logger } from '../common/logger';
import { Metrics } from '../common/metrics';
import { CLONE_SCRIPT, cloneEnv, PATCH_SCRIPT } from './clone';
import { secretMasker, SecretStore, UnknownSecretError } from './secrets';
import { StepLogWriter } from './step-log';
import { type JobLiveness, planSweep } from './janitor-plan';

export interface ActivityDeps {
  runner: Runner;
  store: JobStore;
  metrics?: Metrics;
  log?: Logger;
  /** Whether a job's workflow still runs: `null` when Temporal does not know it. */
  describeJob: (jobId: string) => Promise<{ running: boolean } | null>;
  config: Pick<
    Config,
    | 'DRAFTSMAN_DEFAULT_IMAGE'
    | 'DRAFTSMAN_STEP_TIMEOUT_SECONDS'
    | 'DRAFTSMAN_JOB_TIMEOUT_SECONDS'
    | 'DRAFTSMAN_STOP_GRACE_SECONDS'
    | 'DRAFTSMAN_MIN_FREE_DISK_MB'
    | 'DRAFTSMAN_DISK_GUARD_PATH'
    | 'DRAFTSMAN_DATA_DIR'
    | 'DRAFTSMAN_STEP_LOG_MAX_BYTES'
    | 'DRAFTSMAN_SECRETS_DIR'
    | 'DRAFTSMAN_ALLOWED_IMAGES'
    | 'DRAFTSMAN_ALLOW_FILE_REPOS'
    | 'DRAFTSMAN_PATCH_MAX_BYTES'
    | 'DRAFTSMAN_LOOP_ITERATIONS_PER_RUN'
  >;
  /** How often a running step heartbeats; must stay well below the workflow's heartbeat timeout. */
  heartbeatMs?: number;
}

export interface StepInput {
  jobId: string;
  /** Env name -> secret reference: values are resolved here, in the activity, and masked in the output. */
  secretEnv?: Record<string, string>;
  /** Every secret reference of the job, whose values are masked in this step's output. */
  maskRefs?: string[];
  /** Position of the step in the job, for ordering the audit trail. */
  seq: number;
  kind: StepKind;
  index: number;
  image: string;
  command: string;
  env: Record<string, string>;
  timeoutSeconds: number;
}

export interface StepResult {
  exitCode: number;
  oomKilled: boolean;
  startedAt: string | null;
  finishedAt: string | null;
}

/** How one step of a `runSteps` batch ended. */
export interface BatchStepResult extends StepResult {
  kind: StepKind;
  index: number;
  status: 'succeeded' | 'failed' | 'timed_out' | 'cancelled';
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
}

export interface CloneInput {
  jobId: string;
  /** When the job was created (the workflow's start), for the pickup-latency metric. */
  createdAt?: string;
  gitTokenSecret?: string | null;
  maskRefs?: string[];
  seq: number;
  repo: string;
  commit: string;
  image: string;
  timeoutSeconds: number;
}

/** A step past its budget: non-retryable, with the stable type the workflow maps to `timed_out`. */
const stepTimeout = (step: string, seconds: number) =>
  ApplicationFailure.nonRetryable(stepTimeoutMessage(step, seconds), FailureType.StepTimeout, { step, seconds });

const NO_LOG_YET = { nextChunk: 0, lines: 0, bytes: 0, truncated: false };

/** After its container has stopped, how long a step's output stream may stay silent before the follow is given up. */
const LOG_DRAIN_MS = 10_000;

const toResult = (o: Pick<StepOutcome, 'exitCode' | 'oomKilled' | 'startedAt' | 'finishedAt'>): StepResult => ({
  exitCode: o.exitCode ?? -1,
  oomKilled: o.oomKilled,
  startedAt: o.startedAt?.toISOString() ?? null,
  finishedAt: o.finishedAt?.toISOString() ?? null,
});

/** Activities, built with their dependencies; the worker wires them once. */
export function createActivities({
  runner,
  store,
  describeJob,
  config,
  metrics = new Metrics(),
  log: logger = pino({ enabled: false }),
  heartbeatMs = 500,
}: ActivityDeps) {
  const grace = config.DRAFTSMAN_STOP_GRACE_SECONDS;
  const secrets = new SecretStore(config.DRAFTSMAN_SECRETS_DIR);
  /** Resolves a job's secret references; an unknown one is the job's fault, not retried. */
  const resolveSecret = (ref: string) => {
    try {
      return secrets.resolve(ref);
    } catch (err) {
      if (err instanceof UnknownSecretError) throw ApplicationFailure.nonRetryable(err.message, FailureType.InvalidJobSpec);
      throw err;
    }
  };
  const diskPath = config.DRAFTSMAN_DISK_GUARD_PATH ?? config.DRAFTSMAN_DATA_DIR;

  /**
   * Runs one step to its end, exactly once across retries: a recorded outcome is
   * returned as it is, an existing container is re-attached rather than started
   * again, and the outcome is recorded before the container is removed.
   */
  /** executeStep with its metrics and log lines. */
  async function observedStep(input: StepInput, onStarted?: () => Promise<void>): Promise<StepResult> {
    const log = logger.child({ jobId: input.jobId, step: `${input.kind}-${input.index}` });
    metrics.runningContainers.inc();
    log.info({ attempt: Context.current().info.attempt }, 'step running');
    try {
      const result = await executeStep(input, log, onStarted);
      const seconds =
        result.startedAt && result.finishedAt ? (Date.parse(result.finishedAt) - Date.parse(result.startedAt)) / 1000 : null;
      if (seconds !== null) metrics.stepDuration.observe({ kind: input.kind }, seconds);
      log.info({ exitCode: result.exitCode, oomKilled: result.oomKilled, seconds }, 'step finished');
      return result;
    } catch (err) {
      log.warn({ err: err instanceof Error ? err.message : String(err) }, 'step ended without a result');
      throw err;
    } finally {
      metrics.runningContainers.dec();
    }
  }

  async function executeStep(input: StepInput, stepLog: Logger, onStarted?: () => Promise<void>): Promise<StepResult> {
    const ref: StepRef = { jobId: input.jobId, kind: input.kind, index: input.index };
    const stepName = `${input.kind}-${input.index}`;
    const record = { kind: input.kind, index: input.index, seq: input.seq };

    // A first attempt has nothing behind it; a retry may find the step recorded, or its container.
    const firstAttempt = Context.current().info.attempt === 1;
    if (!firstAttempt) {
      const recorded = await store.finishedStep(input.jobId, input.kind, input.index);
      if (recorded) {
        await runner.remove(ref);
        return toResult(recorded);
      }
    }

    const secretEnv = Object.fromEntries(Object.entries(input.secretEnv ?? {}).map(([name, ref]) => [name, resolveSecret(ref)]));
    const mask = secretMasker((input.maskRefs ?? []).map(resolveSecret));
    const startCalledAt = Date.now();
    try {
      const endTimer = metrics.containerStart.startTimer();
      // The start record and the container's creation do not depend on each other; a
      // failure of either fails the attempt, and the retry re-attaches to the container.
      await Promise.all([store.stepStarted(input.jobId, record), runner.start({ ...input, env: { ...input.env, ...secretEnv } })]);
      endTimer();
      await onStarted?.();
    } catch (err) {
      if (err instanceof ImageNotFoundError) {
        throw ApplicationFailure.nonRetryable(err.message, err.name);
      }
      throw err;
    }

    const ctx = Context.current();
    // The budget counts from the container's own start, so a re-attached step gets no extra time.
    const state = firstAttempt ? null : await runner.status(ref);
    const startedAt =
      (state?.state === 'running' ? state.startedAt : state?.state === 'exited' ? state.exit.startedAt : null)?.getTime() ??
      startCalledAt;
    const remainingMs = Math.max(0, startedAt + input.timeoutSeconds * 1000 - Date.now());

    // Output goes from the container to PostgreSQL while the step runs, never
    // through Temporal's history; a re-attached attempt resumes after what is stored.
    const log = new StepLogWriter(
      store,
      input.jobId,
      { kind: input.kind, index: input.index },
      config.DRAFTSMAN_STEP_LOG_MAX_BYTES,
      firstAttempt ? NO_LOG_YET : await store.logProgress(input.jobId, input.kind, input.index),
      mask,
    );
    const stopFollowing = new AbortController();
    const following = log.stored.truncated
      ? Promise.resolve()
      : runner.followLogs(ref, (lines) => log.add(lines), { skipLines: log.storedLines, signal: stopFollowing.signal });
    /** The log is complete once the container's output stream has ended; then every chunk is written. */
    const bytesBefore = log.stored.bytes;
    const drainLogs = async () => {
      // After the exit the engine may still be sending output (a fast printer is ahead
      // of the store): the follow is given up only when no line arrives for a while.
      let seen = log.storedLines;
      const watchdog = setInterval(() => {
        if (log.storedLines === seen) stopFollowing.abort();
        seen = log.storedLines;
      }, LOG_DRAIN_MS);
      await following;
      clearInterval(watchdog);
      await log.close();
      metrics.logBytesStored.inc(log.stored.bytes - bytesBefore);
      if (log.stored.truncated) {
        metrics.logsTruncated.inc();
        stepLog.warn({ capBytes: config.DRAFTSMAN_STEP_LOG_MAX_BYTES }, 'step output truncated at the cap');
      }
    };

    const abort = new AbortController();
    let timedOut = false;
    const deadline = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, remainingMs);
    // Heartbeats last until the output is drained: a long drain is work, not a lost worker.
    const beat = setInterval(() => ctx.heartbeat({ step: stepName }), heartbeatMs);
    const onCancel = () => abort.abort();
    ctx.cancellationSignal.addEventListener('abort', onCancel);

    let exit: StepExit | undefined;
    try {
      // No heartbeat at the start: the heartbeat timeout counts from the start, and a
      // step shorter than the interval costs the server no heartbeat at all.
      exit = await runner.wait(ref, abort.signal);
    } catch (err) {
      if (!abort.signal.aborted) {
        stopFollowing.abort();
        await log.close().catch(() => undefined);
        throw err;
      }
      if (!timedOut && !ctx.cancellationDetails?.cancelRequested) {
        // Worker shutdown, or the server gave this attempt up: the container keeps
        // running and the next attempt re-attaches to it (and to its output).
        stopFollowing.abort();
        await log.close().catch(() => undefined);
        throw err;
      }
      // Timed out or cancelled: stop the container (SIGTERM, grace, SIGKILL) and record why.
      await runner.cancel(ref, grace);
      await drainLogs();
      const stopped = await runner.status(ref);
      const exitInfo = stopped.state === 'exited' ? stopped.exit : null;
      await store.stepFinished(input.jobId, {
        ...record,
        status: timedOut ? 'timed_out' : 'cancelled',
        exitCode: exitInfo?.exitCode ?? null,
        oomKilled: exitInfo?.oomKilled ?? false,
        startedAt: exitInfo?.startedAt ?? null,
        finishedAt: exitInfo?.finishedAt ?? null,
        logBytes: log.stored.bytes,
        logTruncated: log.stored.truncated,
      });
      await runner.remove(ref);
      if (timedOut) throw stepTimeout(stepName, input.timeoutSeconds);
      throw new CancelledFailure(`step ${stepName} cancelled`);
    } finally {
      clearTimeout(deadline);
      if (!exit) clearInterval(beat);
      ctx.cancellationSignal.removeEventListener('abort', onCancel);
    }

    await drainLogs().finally(() => clearInterval(beat));
    // Stopped while no worker watched it (by the janitor, past its deadline): a timeout, not a failure.
    const overran =
      exit.exitCode !== 0 && exit.finishedAt !== null && exit.finishedAt.getTime() > startedAt + input.timeoutSeconds * 1000;
    const outcome: StepOutcome = {
      ...record,
      status: overran ? 'timed_out' : exit.exitCode === 0 ? 'succeeded' : 'failed',
      exitCode: exit.exitCode,
      oomKilled: exit.oomKilled,
      startedAt: exit.startedAt,
      finishedAt: exit.finishedAt,
      logBytes: log.stored.bytes,
      logTruncated: log.stored.truncated,
    };
    await store.stepFinished(input.jobId, outcome);
    // The outcome is recorded, so the container is no longer needed: it is removed
    // while the workflow schedules the next step. endJob waits for these removals, and
    // removes whatever a lost worker left behind.
    removeLater(ref, stepLog);
    if (overran) throw stepTimeout(stepName, input.timeoutSeconds);
    return toResult(outcome);
  }

  /** The clone as a step: Draftsman's script in the job's image, the token (if any) resolved here. */
  function cloneStep(input: CloneInput): StepInput {
    return {
      jobId: input.jobId,
      seq: input.seq,
      kind: 'clone',
      index: 0,
      image: input.image,
      command: CLONE_SCRIPT,
      env: cloneEnv(input.repo, input.commit, input.gitTokenSecret ? resolveSecret(input.gitTokenSecret) : undefined),
      maskRefs: input.maskRefs,
      timeoutSeconds: input.timeoutSeconds,
    };
  }

  /** Observes the job's pickup latency once its clone has started. */
  function pickedUp(input: CloneInput): () => Promise<void> {
    return async () => {
      // The job's creation time comes with the input; a workflow that scheduled its clone before it did is looked up.
      const created = input.createdAt ? new Date(input.createdAt) : await store.jobCreatedAt(input.jobId);
      if (created) metrics.jobPickup.observe((Date.now() - created.getTime()) / 1000);
    };
  }

  /** Container removals still in flight, by job. */
  const removals = new Map<string, Set<Promise<void>>>();
  function removeLater(ref: StepRef, stepLog: Logger): void {
    const pending = removals.get(ref.jobId) ?? new Set<Promise<void>>();
    removals.set(ref.jobId, pending);
    const removal: Promise<void> = runner
      .remove(ref)
      .catch((err: unknown) => stepLog.warn({ err: String(err) }, 'removing the finished container failed; endJob removes it'))
      .finally(() => {
        pending.delete(removal);
        if (pending.size === 0) removals.delete(ref.jobId);
      });
    pending.add(removal);
  }

  return {
    /**
     * Validates the spec (jobs started through the SDK skip the API's check),
     * applies the operator's defaults and records the job as running.
     */
    async acceptJob(input: { jobId: string; runId: string; spec: unknown }): Promise<AcceptedJob> {
      let spec: ResolvedJobSpec;
      try {
        spec = resolveJobSpec(input.spec, specPolicy(config));
      } catch (err) {
        if (!isInvalidJobSpecError(err)) throw err;
        await store.recordRejected(input.jobId, input.runId, err.message);
        throw ApplicationFailure.nonRetryable(err.message, FailureType.InvalidJobSpec, { field: err.field });
      }
      // Every reference must resolve before anything starts; values are not kept.
      for (const [name, ref] of [...Object.entries(spec.secrets), ['gitTokenSecret', spec.gitTokenSecret] as const]) {
        if (!ref) continue;
        try {
          secrets.resolve(ref);
        } catch (err) {
          if (!(err instanceof UnknownSecretError)) throw err;
          const message = `${name === 'gitTokenSecret' ? name : `secrets.${name}`}: ${err.message}`;
          await store.recordRejected(input.jobId, input.runId, message);
          throw ApplicationFailure.nonRetryable(message, FailureType.InvalidJobSpec, { field: name });
        }
      }
      try {
        await store.recordAccepted(input.jobId, input.runId, spec);
      } catch (err) {
        if (err instanceof DuplicateJobIdError) throw ApplicationFailure.nonRetryable(err.message, err.name);
        throw err;
      }
      return { spec, iterationsPerRun: config.DRAFTSMAN_LOOP_ITERATIONS_PER_RUN };
    },

    /**
     * Starts the job unless the disk guard holds it back; then it stays queued with
     * the reason recorded, and the workflow asks again later. The workspace is
     * created by the clone, on the engine that runs the job's steps.
     */
    async startJob(input: { jobId: string; image: string }): Promise<{ started: true } | { started: false; reason: string }> {
      const floorMb = config.DRAFTSMAN_MIN_FREE_DISK_MB;
      if (floorMb > 0) {
        const stats = await fs.promises.statfs(diskPath);
        const freeMb = Math.floor((stats.bavail * stats.bsize) / (1024 * 1024));
        if (freeMb < floorMb) {
          const reason = `waiting for disk space: ${freeMb} MiB free at ${diskPath}, below the floor of ${floorMb} MiB`;
          await store.recordWaiting(input.jobId, reason, 'waiting:disk');
          return { started: false, reason };
        }
      }
      await store.recordStarted(input.jobId, input.image);
      return { started: true };
    },

    /**
     * The janitor's pass: removes what ended or unknown jobs left behind and stops
     * steps past their deadline, recording each action.
     */
    async sweep(): Promise<{ removed: string[]; stopped: string[] }> {
      const resources = await runner.listManaged();
      const ids = [...new Set(resources.map((r) => r.jobId))];
      const ended = await store.endedJobs(ids);
      const liveness = new Map<string, JobLiveness>();
      for (const id of ids) {
        if (ended.has(id)) liveness.set(id, 'ended');
        else {
          const wf = id ? await describeJob(id) : null;
          liveness.set(id, wf === null ? 'unknown' : wf.running ? 'running' : 'ended');
        }
      }
      const removed: string[] = [];
      const stopped: string[] = [];
      for (const a of planSweep(resources, liveness, Date.now() / 1000, grace + 5)) {
        if (a.action === 'stop') {
          await runner.stopManaged(a.resource, grace);
          stopped.push(a.resource.name);
        } else {
          await runner.removeManaged(a.resource);
          removed.push(a.resource.name);
        }
        await store.recordJanitorAction({ action: a.action, type: a.resource.type, name: a.resource.name, jobId: a.resource.jobId, reason: a.reason });
        metrics.orphansReaped.inc({ type: a.resource.type, action: a.action });
        logger.info({ jobId: a.resource.jobId, resource: a.resource.name, action: a.action, reason: a.reason }, 'janitor');
        Context.current().heartbeat();
      }
      return { removed, stopped };
    },

    async cloneRepository(input: CloneInput): Promise<StepResult> {
      await runner.prepareWorkspace(input.jobId);
      return observedStep(cloneStep(input), pickedUp(input));
    },

    runStep: (input: StepInput) => observedStep(input),

    /**
     * Runs steps in order, each exactly as runStep does (recorded, re-attached on a
     * retry). A step's own end (its exit code, its time limit, a cancel) is a result,
     * not an error, so that the workflow learns how every step before it ended; only
     * a failure of Draftsman's own (engine, database) fails the activity, and its
     * retry finds the steps already recorded.
     */
    async runSteps(input: StepsInput): Promise<BatchStepResult[]> {
      const ctx = Context.current();
      const batch: [StepInput, (() => Promise<void>) | undefined][] = input.steps.map((step) => [{ ...step, jobId: input.jobId }, undefined]);
      if (input.clone) {
        const clone = { ...input.clone, jobId: input.jobId };
        await runner.prepareWorkspace(input.jobId);
        batch.unshift([cloneStep(clone), pickedUp(clone)]);
      }
      const results: BatchStepResult[] = [];
      for (const [step, onStarted] of batch) {
        // Cancelled while no step ran: the next one does not start.
        if (ctx.cancellationSignal.aborted) break;
        const at = { kind: step.kind, index: step.index };
        try {
          const r = await observedStep(step, onStarted);
          results.push({ ...r, ...at, status: r.exitCode === 0 ? 'succeeded' : 'failed' });
          if (r.exitCode !== 0 && !input.keepGoing) break;
        } catch (err) {
          const none = { exitCode: -1, oomKilled: false, startedAt: null, finishedAt: null };
          if (err instanceof ApplicationFailure && err.type === FailureType.StepTimeout) {
            results.push({ ...none, ...at, status: 'timed_out' });
          } else if (err instanceof CancelledFailure) {
            results.push({ ...none, ...at, status: 'cancelled' });
          } else {
            throw err;
          }
          break;
        }
      }
      return results;
    },

    /**
     * Stores `git diff` of the workspace against the checked-out commit (after
     * the loop), capped in size, before the workspace is removed.
     */
    async capturePatch(input: { jobId: string; image: string; timeoutSeconds: number }): Promise<{ bytes: number; truncated: boolean }> {
      const ref: StepRef = { jobId: input.jobId, kind: 'patch', index: 0 };
      await runner.start({ ...ref, image: input.image, command: PATCH_SCRIPT, env: {}, timeoutSeconds: input.timeoutSeconds });
      const ctx = Context.current();
      const beat = setInterval(() => ctx.heartbeat(), heartbeatMs);
      try {
        const exit = await runner.wait(ref, ctx.cancellationSignal);
        if (exit.exitCode !== 0) {
          throw ApplicationFailure.nonRetryable(`reading the patch failed with exit code ${exit.exitCode}`, 'PatchError');
        }
        const { data, truncated } = await runner.stdout(ref, config.DRAFTSMAN_PATCH_MAX_BYTES);
        await store.savePatch(input.jobId, data, truncated);
        await store.event(input.jobId, 'patch', 'patch_stored', { bytes: data.length, truncated });
        return { bytes: data.length, truncated };
      } finally {
        clearInterval(beat);
        await runner.remove(ref);
      }
    },

    /**
     * The end of every job, whatever its outcome: the reason it was stopped (if it
     * was), then its containers and workspace removed, then the outcome recorded, so
     * that a job is not finished before its resources are gone. Safe to repeat.
     */
    async endJob(input: {
      jobId: string;
      status: JobStatus;
      loop: { iterations: number; converged: boolean } | null;
      error?: string;
      /** Why a cancelled or timed-out job stopped, and the step it stopped in. */
      stopped?: { reason: string | null; step: string | null };
    }): Promise<void> {
      if (input.stopped) await store.event(input.jobId, input.status, input.status, input.stopped);
      await Promise.all(removals.get(input.jobId) ?? []);
      await runner.removeJob(input.jobId);
      await store.event(input.jobId, 'cleaned-up', 'cleaned_up', {});
      await store.jobFinished(input.jobId, { status: input.status, loop: input.loop, error: input.error });
      metrics.jobsFinished.inc({ status: input.status });
      logger.info({ jobId: input.jobId, status: input.status, error: input.error }, 'job finished');
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
