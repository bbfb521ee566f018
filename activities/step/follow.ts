/**
 * Phase: follow, of a step's execution (execute.ts). Output goes from the
 * container to PostgreSQL while the step runs, masked, within the step's and the job's
 * caps; a re-attached attempt resumes after what is stored.
 */
import type { Logger } from '../../common/logger';
import { secretScanner } from '../../common/secret-scan';
import type { StepRef } from '../../runner/runner';
import { StepLogWriter, stepLogCap } from '../step-log';
import type { StepDeps } from './attempt';
import type { StepInput } from './input';

const NO_LOG_YET = { nextChunk: 0, lines: 0, bytes: 0, truncated: false };

/** After its container has stopped, how long a step's output stream may stay silent before the follow is given up. */
export const LOG_DRAIN_MS = 10_000;
/** How long an attempt that gives its step up waits for the output it read to be stored. */
const ABANDON_WAIT_MS = 15_000;

/** Reads a step's output into the store until it is drained or abandoned. */
export class StepFollower {
  private givenUp = false;
  /** Why the output stream broke, if it did: drain fails the attempt, and the next resumes after what is stored. */
  private broken: unknown = null;
  private readonly bytesBefore: number;

  private constructor(
    private readonly sh: Pick<StepDeps, 'metrics'>,
    private readonly writer: StepLogWriter,
    following: Promise<void>,
    private readonly stop: AbortController,
  ) {
    this.bytesBefore = writer.stored.bytes;
    this.following = following.catch((err: unknown) => {
      this.broken = err;
    });
  }

  private readonly following: Promise<void>;

  static async start(sh: StepDeps, input: StepInput, ref: StepRef, fresh: boolean, attempt: number): Promise<StepFollower> {
    const masker = secretScanner((input.maskRefs ?? []).map((r) => sh.resolveSecret(r)));
    const step = { kind: input.kind, index: input.index, placement: input.placement ?? 1 };
    const [progress, others] = await Promise.all([
      fresh ? NO_LOG_YET : sh.logs.progress(input.jobId, step.kind, step.index, step.placement),
      sh.logs.otherStepsBytes(input.jobId, step),
    ]);
    // Steps of a job run one at a time: what the others stored is all the job has used.
    const cap = stepLogCap(sh.config.DRAFTSMAN_STEP_LOG_MAX_BYTES, sh.config.DRAFTSMAN_JOB_LOG_MAX_BYTES, others);
    const writer = new StepLogWriter(sh.logs, input.jobId, step, cap, progress, masker, attempt);
    const stop = new AbortController();
    const following = writer.stored.truncated
      ? Promise.resolve()
      : sh.runner.followLogs(
          ref,
          (lines) => {
            const busy = writer.add(lines);
            // Past the cap nothing more is stored: reading the rest would only cost CPU.
            if (writer.stored.truncated) stop.abort();
            return busy;
          },
          { skipLines: writer.storedLines, signal: stop.signal },
        );
    return new StepFollower(sh, writer, following, stop);
  }

  stored(): { logBytes: number; logTruncated: boolean } {
    return { logBytes: this.writer.stored.bytes, logTruncated: this.writer.stored.truncated };
  }

  /** Lines read so far (stored or on their way): grows while output comes. */
  linesRead(): number {
    return this.writer.storedLines;
  }

  /**
   * Stops reading and keeps what was stored; the next attempt resumes after it. Best
   * effort, and bounded: a write that does not come back is left to the next attempt.
   */
  async abandon(): Promise<void> {
    this.stop.abort();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.writer.close().catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ABANDON_WAIT_MS)))]);
    clearTimeout(timer);
  }

  /**
   * After the exit the engine may still be sending output (a fast printer is ahead of
   * the store): the follow is given up only when no line arrives for a while, and
   * then the log says so, as it says `gap` (a loss known to the caller).
   */
  async drain(log: Logger, gap?: string): Promise<void> {
    let seen = this.writer.storedLines;
    const watchdog = setInterval(() => {
      if (this.writer.storedLines === seen) {
        this.givenUp = true;
        this.stop.abort();
      }
      seen = this.writer.storedLines;
    }, LOG_DRAIN_MS);
    try {
      await this.following;
    } finally {
      clearInterval(watchdog);
    }
    if (this.broken) {
      await this.writer.close().catch(() => undefined);
      throw this.broken;
    }
    if (this.givenUp) this.writer.gap(`the output stream stayed silent for ${LOG_DRAIN_MS / 1000} s after the step ended; the rest was not read`);
    if (gap) this.writer.gap(gap);
    await this.writer.close();
    this.sh.metrics.logBytesStored.inc(this.writer.stored.bytes - this.bytesBefore);
    if (this.writer.stored.truncated) {
      this.sh.metrics.logsTruncated.inc();
      log.warn({ cap: this.writer.cap }, `step output truncated at the ${this.writer.cap.of}'s cap`);
    }
  }
}
