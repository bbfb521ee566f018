/**
 * One attempt at one step: what its phases need (StepDeps) and what they share
 * (StepAttempt: the step's identity, and why its wait was interrupted, if it was).
 */
import type { Config } from '../../common/config';
import type { StepOutcome } from '../../common/job';
import type { Logger } from '../../common/logger';
import type { Metrics } from '../../common/metrics';
import type { StepLogStore } from '../../db/log-store';
import type { StepStore } from '../../db/step-store';
import type { StepRef, StepRunner, VolumeStore } from '../../runner/runner';
import type { EngineWatchTiming } from '../watches';
import type { StepContext } from './context';
import type { StepInput } from './input';

/** What the phases of a step are built on: a step runner, a step store and the timings. Tests give memory and a fake engine. */
export interface StepDeps {
  runner: StepRunner & Pick<VolumeStore, 'workspaceBytes'>;
  steps: StepStore;
  logs: StepLogStore;
  metrics: Metrics;
  config: Pick<
    Config,
    | 'DRAFTSMAN_STEP_LOG_MAX_BYTES'
    | 'DRAFTSMAN_JOB_LOG_MAX_BYTES'
    | 'DRAFTSMAN_MAX_WORKSPACE_MB'
    | 'DRAFTSMAN_ENGINE_REQUEST_SECONDS'
    | 'DRAFTSMAN_INSECURE_STEP_NETWORK'
  >;
  /** The stop's grace period, seconds. */
  grace: number;
  heartbeatMs: number;
  engineWatch: EngineWatchTiming;
  workspaceWatchMs: number;
  /** How often a job with a budget is checked while a step runs (BUDGET_CHECK_MS unless a test says otherwise). */
  budgetCheckMs?: number;
  stallMs: number;
  /** Resolves a job's secret reference. */
  resolveSecret(ref: string): string;
  /** Removes finished steps' containers off the critical path. */
  removals: { later(ref: StepRef): void };
  /** The activity running the step (Temporal's, in production). */
  context(): StepContext;
}

/**
 * Why a wait for the step's exit was interrupted (`engine`: the engine stopped
 * answering for it; `workspace`: its workspace grew past the cap; `budget`: the job crossed a limit of its budget).
 */
export type Interruption = 'timeout' | 'cancel' | 'leave' | 'engine' | 'workspace' | 'budget';

export class StepAttempt {
  readonly ref: StepRef;
  readonly placement: number;
  readonly attempt: number;
  /** Aborted at the first interruption: the wait for the exit stops there. */
  readonly interrupt = new AbortController();
  interruption: Interruption | null = null;
  interruptedAt = Infinity;
  /** The limit the job crossed, when its budget stopped the step. */
  overBudget: NonNullable<StepOutcome['overBudget']> | null = null;
  private readonly onAbort = () => this.interruptWith(this.ctx.cancelRequested() ? 'cancel' : 'leave');

  constructor(
    readonly input: StepInput,
    readonly ctx: StepContext,
    readonly log: Logger,
  ) {
    this.attempt = ctx.attempt;
    this.placement = input.placement ?? 1;
    this.ref = { jobId: input.jobId, kind: input.kind, index: input.index, ...(this.placement > 1 ? { placement: this.placement } : {}) };
  }

  get name(): string {
    return `${this.input.kind}-${this.input.index}`;
  }

  interruptWith(why: Interruption): void {
    if (this.interruption === null) this.interruptedAt = Date.now();
    this.interruption ??= why;
    this.interrupt.abort();
  }

  /**
   * Listens for a cancel or the worker leaving, from the claim on: a cancel that
   * arrives while the container is being created is seen when the wait begins.
   */
  listen(): void {
    if (this.ctx.signal.aborted) this.onAbort();
    else this.ctx.signal.addEventListener('abort', this.onAbort);
  }

  stopListening(): void {
    this.ctx.signal.removeEventListener('abort', this.onAbort);
  }

  /** A step that ended without its command running to an exit. */
  notRun(status: 'cancelled' | 'failed', reason?: 'container_lost'): StepOutcome {
    const { kind, index } = this.input;
    return { kind, index, status, exitCode: null, oomKilled: false, startedAt: null, finishedAt: null, ...(reason ? { reason } : {}) };
  }
}
