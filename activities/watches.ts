/**
 * What a step's wait is watched for while it runs, each by a bounded question asked
 * every few seconds (never two at once):
 *
 * - EngineWatch. The wait for a step's exit is the one engine request with no bound of
 *   its own (a step may run for hours), and while it is pending the attempt heartbeats.
 *   An engine that hangs, or a wait whose connection went quiet without breaking, would
 *   hold the attempt there forever, heartbeating, so the server never gives it up. No
 *   answer gives the attempt up as if the engine had gone away; an exit that the wait
 *   has not seen for a while gives it up too, and the next attempt re-attaches to
 *   whatever is left (and reads that exit).
 * - WorkspaceWatch. This engine has no volume quota: the workspace's size is measured
 *   (du), and a step whose workspace grows past the operator's cap is stopped.
 * - BudgetWatch. A job with a budget: what it has spent (its ended steps' CPU time, its
 *   egress, its wall time, from the store) and what the running step has used so far (the
 *   kernel's accounting), against its limits.
 */
import { type BudgetLimits, type BudgetName, overBudget } from '../common/budget';
import { AttemptStalledError, EngineUnreachableError, RunnerError } from '../common/errors';
import type { Spent } from '../db/step-store';
import type { StepRef, StepRunner, VolumeStore } from '../runner/runner';

/** Asks `question` every `everyMs`, one at a time, until stopped. */
class Ticker {
  private readonly timer: NodeJS.Timeout;
  private asking = false;
  stopped = false;

  constructor(everyMs: number, question: () => Promise<void>) {
    this.timer = setInterval(() => {
      if (this.asking || this.stopped) return;
      this.asking = true;
      void question().finally(() => (this.asking = false));
    }, everyMs);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }
}

export interface EngineWatchTiming {
  /** How often the engine is asked. */
  everyMs: number;
  /** How long an exit the engine reports may go unseen by the wait. */
  missedExitMs: number;
}

export const ENGINE_WATCH: EngineWatchTiming = { everyMs: 5_000, missedExitMs: 10_000 };

export class EngineWatch {
  private readonly ticker: Ticker;
  private exitSeenAt: number | null = null;

  constructor(
    private readonly runner: Pick<StepRunner, 'status'>,
    private readonly ref: StepRef,
    private readonly timing: EngineWatchTiming,
    /**
     * Called once, with why the attempt cannot rely on its wait any more: the engine
     * does not answer (EngineUnreachableError), or its wait missed an exit (RunnerError).
     */
    private readonly onLost: (err: EngineUnreachableError | RunnerError) => void,
    /** Called at each answer of the engine: the attempt is not stuck. */
    private readonly onAnswer: () => void = () => undefined,
  ) {
    this.ticker = new Ticker(timing.everyMs, () => this.ask());
  }

  stop(): void {
    this.ticker.stop();
  }

  private async ask(): Promise<void> {
    try {
      const state = await this.runner.status(this.ref);
      if (this.ticker.stopped) return;
      this.onAnswer();
      if (state.state === 'running' || state.state === 'created') {
        this.exitSeenAt = null;
        return;
      }
      // Exited (or removed) while the wait still waits: given a moment, as the wait's
      // answer may be on its way.
      const now = Date.now();
      this.exitSeenAt ??= now;
      if (now - this.exitSeenAt >= this.timing.missedExitMs) {
        // The engine answers: what it reports is read by the next attempt as it is.
        this.lost(
          new RunnerError(
            `the engine reports the step ${state.state === 'exited' ? 'exited' : 'gone'}, and the wait for it has not ended in ${this.timing.missedExitMs / 1000} s`,
          ),
        );
      }
    } catch (err) {
      if (err instanceof EngineUnreachableError && !this.ticker.stopped) this.lost(err);
      // Any other failure to ask is not a verdict on the wait: asked again next time.
    }
  }

  private lost(err: EngineUnreachableError | RunnerError): void {
    this.stop();
    this.onLost(err);
  }
}

/** How often a running step's workspace is measured; the cap can be overshot by what a step writes in this time and a measurement. */
export const WORKSPACE_WATCH_MS = 10_000;

export class WorkspaceWatch {
  private readonly ticker: Ticker | null;

  constructor(
    runner: Pick<VolumeStore, 'workspaceBytes'>,
    jobId: string,
    /** The cap in bytes; 0: not watched. */
    capBytes: number,
    everyMs: number,
    /** Called once, with the size measured past the cap. */
    onFull: (bytes: number) => void,
    /** Called with every size measured (the job's ledger keeps the largest). */
    onMeasured?: (bytes: number) => void,
  ) {
    this.ticker =
      capBytes > 0
        ? new Ticker(everyMs, async () => {
            // A failed measurement (the engine restarting) is no verdict: measured again next time.
            const bytes = await runner.workspaceBytes(jobId).catch(() => null);
            if (bytes !== null) onMeasured?.(bytes);
            if (bytes === null || bytes <= capBytes || this.ticker?.stopped) return;
            this.stop();
            onFull(bytes);
          })
        : null;
  }

  stop(): void {
    this.ticker?.stop();
  }
}

/**
 * The last resort against an attempt stuck where nothing above bounds it: progress is
 * output read, an answer of the engine, or a phase that ended. With none for `ms`, the
 * attempt stops heartbeating and `promise` rejects, so the attempt fails and is
 * retried (the stuck part, fenced off by the attempt number, can record nothing).
 */
export class StallGuard {
  private at = Date.now();
  private mark = -1;
  private reject: (err: Error) => void = () => undefined;
  readonly promise: Promise<never>;

  constructor(
    private readonly ms: number,
    /** A number that changes whenever output is read. */
    private readonly output: () => number,
  ) {
    this.promise = new Promise<never>((_, reject) => (this.reject = reject));
    this.promise.catch(() => undefined);
  }

  /** Something moved; `forMs`: a wait of known length begins (a stop's grace period). */
  progressed(forMs = 0): void {
    this.at = Math.max(this.at, Date.now() + forMs);
  }

  /** Whether the attempt has made no progress for too long (then `promise` has rejected). */
  stalled(): boolean {
    const mark = this.output();
    if (mark !== this.mark) {
      this.mark = mark;
      this.progressed();
    }
    if (Date.now() - this.at < this.ms) return false;
    this.reject(
      new AttemptStalledError(
        `the attempt made no progress for ${Math.round(this.ms / 1000)} s (no output, no answer from the engine); it is given up, for a retry to take the step over`,
      ),
    );
    return true;
  }
}

/** How often a job with a budget is checked while a step runs: it is stopped within this (and its grace) of crossing it. */
export const BUDGET_CHECK_MS = 500;

export class BudgetWatch {
  private readonly ticker: Ticker;

  constructor(
    runner: Pick<StepRunner, 'usage'>,
    spent: () => Promise<Spent>,
    ref: StepRef,
    limits: BudgetLimits,
    everyMs: number,
    /** Called once, with the first limit crossed. */
    onOver: (over: { budget: BudgetName; limit: number; used: number }) => void,
  ) {
    this.ticker = new Ticker(everyMs, async () => {
      // A failed read (the database or the engine restarting) is no verdict: asked again next time.
      const [before, now] = await Promise.all([spent().catch(() => null), runner.usage(ref).catch(() => null)]);
      if (!before || this.ticker.stopped) return;
      const over = overBudget(limits, {
        cpuSeconds: before.cpuSeconds + (now?.cpuSeconds ?? 0),
        wallSeconds: before.startedAt ? (Date.now() - Date.parse(before.startedAt)) / 1000 : 0,
        egressBytes: before.egressBytes,
      });
      if (!over) return;
      this.stop();
      onOver(over);
    });
  }

  stop(): void {
    this.ticker.stop();
  }
}
