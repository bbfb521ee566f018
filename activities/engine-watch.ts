/**
 * Phase: wait, watched. The wait for a step's exit is the one engine request with no
 * bound of its own (a step may run for hours), and while it is pending the attempt
 * heartbeats. An engine that hangs, or a wait whose connection went quiet without
 * breaking, would hold the attempt there forever, heartbeating, so the server never
 * gives it up. The watch asks the engine for the step's state every few seconds (a
 * bounded request): no answer, or an exit that the wait has not seen for a while,
 * gives the attempt up as if the engine had gone away, and the next attempt
 * re-attaches to whatever is left.
 */
import { EngineUnreachableError } from '../common/errors';
import type { Runner, StepRef } from '../runner/runner';

export interface EngineWatchTiming {
  /** How often the engine is asked. */
  everyMs: number;
  /** How long an exit the engine reports may go unseen by the wait. */
  missedExitMs: number;
}

export const ENGINE_WATCH: EngineWatchTiming = { everyMs: 5_000, missedExitMs: 10_000 };

export class EngineWatch {
  private readonly timer: NodeJS.Timeout;
  private asking = false;
  private exitSeenAt: number | null = null;
  private stopped = false;

  constructor(
    private readonly runner: Runner,
    private readonly ref: StepRef,
    private readonly timing: EngineWatchTiming,
    /** Called once, with why the attempt cannot rely on its wait any more. */
    private readonly onLost: (err: EngineUnreachableError) => void,
  ) {
    this.timer = setInterval(() => void this.ask(), timing.everyMs);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  private async ask(): Promise<void> {
    if (this.asking || this.stopped) return;
    this.asking = true;
    try {
      const state = await this.runner.status(this.ref);
      if (this.stopped) return;
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
      if (err instanceof EngineUnreachableError && !this.stopped) this.lost(err);
      // Any other failure to ask is not a verdict on the wait: asked again next time.
    } finally {
      this.asking = false;
    }
  }

  private lost(err: EngineUnreachableError): void {
    this.stop();
    this.onLost(err);
  }
}
