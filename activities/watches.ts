/**
 * What a step's wait is watched for while it runs, each by a bounded question asked
 * every few seconds (never two at once):
 *
 * - EngineWatch. The wait for a step's exit is the one engine request with no bound of
 *   its own (a step may run for hours), and while it is pending the attempt heartbeats.
 *   An engine that hangs, or a wait whose connection went quiet without breaking, would
 *   hold the attempt there forever, heartbeating, so the server never gives it up. No
 *   answer, or an exit that the wait has not seen for a while, gives the attempt up as
 *   if the engine had gone away; the next attempt re-attaches to whatever is left.
 * - WorkspaceWatch. This engine has no volume quota: the workspace's size is measured
 *   (du), and a step whose workspace grows past the operator's cap is stopped.
 */
import { EngineUnreachableError } from '../common/errors';
import type { Runner, StepRef } from '../runner/runner';

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
    private readonly runner: Runner,
    private readonly ref: StepRef,
    private readonly timing: EngineWatchTiming,
    /** Called once, with why the attempt cannot rely on its wait any more. */
    private readonly onLost: (err: EngineUnreachableError) => void,
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
      if (state.state === 'running' || state.state === 'created') {
        this.exitSeenAt = null;
        return;
      }
      // Exited (or removed) while the wait still waits: given a moment, as the wait's
      // answer may be on its way.
      const now = Date.now();
      this.exitSeenAt ??= now;
      if (now - this.exitSeenAt >= this.timing.missedExitMs) {
        this.lost(new EngineUnreachableError(`the engine reports the step ${state.state === 'exited' ? 'exited' : 'gone'}, and the wait for it has not ended in ${this.timing.missedExitMs / 1000} s`));
      }
    } catch (err) {
      if (err instanceof EngineUnreachableError && !this.ticker.stopped) this.lost(err);
      // Any other failure to ask is not a verdict on the wait: asked again next time.
    }
  }

  private lost(err: EngineUnreachableError): void {
    this.stop();
    this.onLost(err);
  }
}

/** How often a running step's workspace is measured; the cap can be overshot by what a step writes in this time and a measurement. */
export const WORKSPACE_WATCH_MS = 10_000;

export class WorkspaceWatch {
  private readonly ticker: Ticker | null;

  constructor(
    runner: Runner,
    jobId: string,
    /** The cap in bytes; 0: not watched. */
    capBytes: number,
    everyMs: number,
    /** Called once, with the size measured past the cap. */
    onFull: (bytes: number) => void,
  ) {
    this.ticker =
      capBytes > 0
        ? new Ticker(everyMs, async () => {
            // A failed measurement (the engine restarting) is no verdict: measured again next time.
            const bytes = await runner.workspaceBytes(jobId).catch(() => null);
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
