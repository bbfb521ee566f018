/**
 * Notices that this process was paused (SIGSTOP, a frozen VM, a long GC) for a good
 * part of the heartbeat timeout: the server may have given this attempt up and started
 * another, and a cancel may be waiting. Before it starts a next step, such an attempt
 * asks (a heartbeat, and a moment for the answer), so that a stale attempt stops
 * rather than start steps nobody waits for.
 */
export class PauseDetector {
  private last = Date.now();
  private paused = false;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly thresholdMs: number) {
    this.timer = setInterval(() => this.tick(), Math.min(200, thresholdMs / 4));
  }

  private tick(): void {
    const now = Date.now();
    if (now - this.last > this.thresholdMs) this.paused = true;
    this.last = now;
  }

  /** Whether a pause happened since the last call. */
  take(): boolean {
    this.tick();
    const paused = this.paused;
    this.paused = false;
    return paused;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
