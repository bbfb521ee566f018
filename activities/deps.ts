import { ApplicationFailure } from '@temporalio/common';
import pino from 'pino';
import type { Config } from '../common/config';
import type { Logger } from '../common/logger';
import { Metrics } from '../common/metrics';
import { FailureType } from '../common/names';
import { HostStore } from '../db/host-store';
import { KeptStore } from '../db/kept-store';
import type { StepLogStore } from '../db/log-store';
import type { StepStore } from '../db/step-store';
import type { JobStore } from '../db/store';
import type { Runner, StepRef } from '../runner/runner';
import { ENGINE_WATCH, type EngineWatchTiming, WORKSPACE_WATCH_MS } from './watches';
import { SecretStore, UnknownSecretError } from './secrets';
import { activityStepContext, type StepContext } from './step/context';

/** What the activities are built from; the worker wires them once. */
export interface ActivityDeps {
  runner: Runner;
  store: JobStore;
  metrics?: Metrics;
  log?: Logger;
  /** Whether a job's workflow still runs: `null` when Temporal does not know it. */
  describeJob: (jobId: string) => Promise<{ running: boolean } | null>;
  /**
   * The server's view of a pending activity of the job (its attempt, a cancel
   * requested), asked by an attempt that may have been given up; without it, the
   * attempt learns only from the answer to a heartbeat.
   */
  describeActivity?: (jobId: string, activityId: string) => Promise<{ attempt: number; cancelRequested: boolean } | null>;
  /**
   * The identity of the client that started a job's first run: the principal of a job
   * started with the SDK (`sdk:<identity>`). Without it such a job is `sdk:unknown`.
   */
  starterIdentity?: (jobId: string, firstRunId: string) => Promise<string | null>;
  /** Tells a job that waits for a host that room may have freed (a signal); without it, it finds out at its next look. */
  wakeJob?: (jobId: string) => Promise<void>;
  /** The host this worker serves (its id and its engine activities' task queue); none in tests of activities alone. */
  host?: { id: string; taskQueue: string; lostAfterSeconds: number; moves: number };
  config: Pick<
    Config,
    | 'DRAFTSMAN_DEFAULT_IMAGE'
    | 'DRAFTSMAN_TASK_QUEUE'
    | 'DRAFTSMAN_MAX_CONCURRENCY_LIMIT'
    | 'DRAFTSMAN_STEP_TIMEOUT_SECONDS'
    | 'DRAFTSMAN_JOB_TIMEOUT_SECONDS'
    | 'DRAFTSMAN_STOP_GRACE_SECONDS'
    | 'DRAFTSMAN_MIN_FREE_DISK_MB'
    | 'DRAFTSMAN_DISK_GUARD_PATH'
    | 'DRAFTSMAN_DATA_DIR'
    | 'DRAFTSMAN_STEP_LOG_MAX_BYTES'
    | 'DRAFTSMAN_JOB_LOG_MAX_BYTES'
    | 'DRAFTSMAN_MAX_WORKSPACE_MB'
    | 'DRAFTSMAN_ENGINE_REQUEST_SECONDS'
    | 'DRAFTSMAN_SECRETS_DIR'
    | 'DRAFTSMAN_ALLOWED_IMAGES'
    | 'DRAFTSMAN_ALLOW_FILE_REPOS'
    | 'DRAFTSMAN_PATCH_MAX_BYTES'
    | 'DRAFTSMAN_LOOP_ITERATIONS_PER_RUN'
    | 'DRAFTSMAN_EGRESS_ALLOW'
    | 'DRAFTSMAN_EGRESS_CEILING'
    | 'DRAFTSMAN_EGRESS_PRESETS'
    | 'DRAFTSMAN_EGRESS_EXCEPTIONS'
    | 'DRAFTSMAN_INSECURE_STEP_NETWORK'
    | 'DRAFTSMAN_MAX_STEP_SECONDS'
    | 'DRAFTSMAN_MAX_JOB_SECONDS'
    | 'DRAFTSMAN_MAX_ITERATIONS'
    | 'DRAFTSMAN_MAX_STEPS'
    | 'DRAFTSMAN_SECRET_GRANTS'
    | 'DRAFTSMAN_BUDGET_CEILINGS'
    | 'DRAFTSMAN_CACHE_SCOPE'
    | 'DRAFTSMAN_CACHE_SCOPE_BUDGET_MB'
    | 'DRAFTSMAN_CACHE_BUDGET_MB'
  >;
  /** How often a running step heartbeats; must stay well below the workflow's heartbeat timeout. */
  heartbeatMs?: number;
  /** How a step's wait is watched for an engine that hangs (tests shorten it). */
  engineWatch?: EngineWatchTiming;
  /** How often a running step's workspace is measured against its cap (tests shorten it). */
  workspaceWatchMs?: number;
  /** How long a step's attempt may make no progress before it is given up (tests shorten it). */
  stallMs?: number;
  /** How old a kept volume no record names must be before the janitor removes it: longer than a save takes (tests shorten it). */
  keptOrphanSeconds?: number;
  /** Where steps and their output are kept: the store's own unless given (tests of the phases give memory). */
  steps?: StepStore;
  logs?: StepLogStore;
  /**
   * The activity context a step's phases see (Temporal's). A test wraps it to hold or
   * drop a cancel; faults come from wrapping this, the store or the runner.
   */
  stepContext?: () => StepContext;
}

/** The dependencies every role's activities share, with defaults filled in. */
export interface Shared {
  runner: Runner;
  store: JobStore;
  metrics: Metrics;
  logger: Logger;
  config: ActivityDeps['config'];
  host: ActivityDeps['host'];
  heartbeatMs: number;
  engineWatch: EngineWatchTiming;
  workspaceWatchMs: number;
  stallMs: number;
  steps: StepStore;
  logs: StepLogStore;
  context: () => StepContext;
  grace: number;
  secrets: SecretStore;
  /** Resolves a job's secret reference; an unknown one is the job's fault, not retried. */
  resolveSecret(ref: string): string;
  removals: ContainerRemovals;
  describeActivity: ActivityDeps['describeActivity'];
  starterIdentity: ActivityDeps['starterIdentity'];
  wakeJob: ActivityDeps['wakeJob'];
  hosts: HostStore;
  kept: KeptStore;
  keptOrphanSeconds: number;
}

export function shared(deps: ActivityDeps): Shared {
  const secrets = new SecretStore(deps.config.DRAFTSMAN_SECRETS_DIR);
  const logger = deps.log ?? pino({ enabled: false });
  return {
    runner: deps.runner,
    store: deps.store,
    metrics: deps.metrics ?? new Metrics(),
    logger,
    config: deps.config,
    host: deps.host,
    heartbeatMs: deps.heartbeatMs ?? 500,
    engineWatch: deps.engineWatch ?? ENGINE_WATCH,
    workspaceWatchMs: deps.workspaceWatchMs ?? WORKSPACE_WATCH_MS,
    // Longer than any bounded engine request, which fails on its own first.
    stallMs: deps.stallMs ?? Math.max(60_000, (deps.config.DRAFTSMAN_ENGINE_REQUEST_SECONDS + 10) * 1000),
    steps: deps.steps ?? deps.store.steps,
    logs: deps.logs ?? deps.store.logs,
    context: deps.stepContext ?? activityStepContext,
    grace: deps.config.DRAFTSMAN_STOP_GRACE_SECONDS,
    secrets,
    resolveSecret(ref: string): string {
      try {
        return secrets.resolve(ref);
      } catch (err) {
        if (err instanceof UnknownSecretError) throw ApplicationFailure.nonRetryable(err.message, FailureType.InvalidJobSpec);
        throw err;
      }
    },
    removals: new ContainerRemovals(deps.runner, logger),
    describeActivity: deps.describeActivity,
    starterIdentity: deps.starterIdentity,
    wakeJob: deps.wakeJob,
    hosts: new HostStore(deps.store.pool, deps.config.DRAFTSMAN_TASK_QUEUE),
    kept: new KeptStore(deps.store.pool),
    keptOrphanSeconds: deps.keptOrphanSeconds ?? 3600,
  };
}

/**
 * Removals of finished steps' containers, done off the step's critical path while
 * the workflow schedules the next step; a job's end waits for its own.
 */
export class ContainerRemovals {
  private readonly pending = new Map<string, Set<Promise<void>>>();

  constructor(
    private readonly runner: Runner,
    private readonly logger: Logger,
  ) {}

  later(ref: StepRef): void {
    const set = this.pending.get(ref.jobId) ?? new Set<Promise<void>>();
    this.pending.set(ref.jobId, set);
    const removal: Promise<void> = this.runner
      .remove(ref)
      .catch((err: unknown) =>
        this.logger.warn({ jobId: ref.jobId, step: `${ref.kind}-${ref.index}`, err: String(err) }, 'removing the finished container failed; endJob removes it'),
      )
      .finally(() => {
        set.delete(removal);
        if (set.size === 0) this.pending.delete(ref.jobId);
      });
    set.add(removal);
  }

  async settled(jobId: string): Promise<void> {
    await Promise.all(this.pending.get(jobId) ?? []);
  }
}
