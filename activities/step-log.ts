import type { StepKind } from '../common/job';
import type { LogProgress, LogStore, StoredLogLine } from '../db/log-store';
import type { LogLine } from '../runner/runner';

const CHUNK_BYTES = 64 * 1024;
const FLUSH_MS = 200;
/** Chunks written ahead of the database; past this, add() asks the follower to wait. */
const MAX_CHUNKS_IN_FLIGHT = 4;

/** A cap on stored output: the step's own, or what is left of its job's. */
export interface LogCap {
  bytes: number;
  of: 'step' | 'job';
}

export const truncationMarker = (cap: LogCap) =>
  cap.of === 'step'
    ? `[draftsman] output truncated: this step printed more than the ${cap.bytes}-byte cap; it kept running, the rest was not stored`
    : `[draftsman] output truncated: the job's steps printed more than the job's cap (DRAFTSMAN_JOB_LOG_MAX_BYTES), ${cap.bytes} bytes of it left for this step; it kept running, the rest was not stored`;

/** The cap of one step: its own, or what its job's cap leaves after the job's other steps, whichever is smaller. */
export function stepLogCap(stepMax: number, jobMax: number, otherStepsBytes: number): LogCap {
  const left = Math.max(0, jobMax - otherStepsBytes);
  return left < stepMax ? { bytes: left, of: 'job' } : { bytes: stepMax, of: 'step' };
}

export const gapMarker = (reason: string) => `[draftsman] output missing from here: ${reason}`;

/**
 * Stores a step's output as it arrives, in chunks written at most every 200 ms
 * or 64 KiB, so that followers see lines while the step runs. Resumes where an
 * earlier attempt stopped (`progress`), and stops storing at the cap with an
 * explicit marker line.
 */
export class StepLogWriter {
  private buffer: StoredLogLine[] = [];
  private bufferBytes = 0;
  private nextChunk: number;
  private lineCount: number;
  private bytes: number;
  private truncated: boolean;
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private failure: unknown = null;

  constructor(
    private readonly logs: Pick<LogStore, 'append'>,
    private readonly jobId: string,
    private readonly step: { kind: StepKind; index: number; placement?: number },
    readonly cap: LogCap,
    progress: LogProgress,
    /** Applied to every line before it is stored: masks the job's secret values. */
    private readonly mask: (text: string) => string = (t) => t,
    /** The activity attempt that holds the step: a write after a newer attempt took it over is refused. */
    private readonly attempt?: number,
  ) {
    this.nextChunk = progress.nextChunk;
    this.lineCount = progress.lines;
    this.bytes = progress.bytes;
    this.truncated = progress.truncated;
  }

  /** Lines already stored: a re-attached follower skips this many. */
  get storedLines(): number {
    return this.lineCount + this.buffer.length;
  }

  get stored(): { bytes: number; truncated: boolean } {
    return { bytes: this.bytes, truncated: this.truncated };
  }

  /**
   * Takes the next lines. Returns a promise when the database lags behind by more
   * than a few chunks: the caller reads no more output until it settles, so memory
   * stays bounded whatever the step prints.
   */
  add(lines: LogLine[]): Promise<void> | undefined {
    this.push(lines);
    return this.inFlight > MAX_CHUNKS_IN_FLIGHT ? this.writing : undefined;
  }

  private push(lines: LogLine[]): void {
    for (const raw of lines) {
      if (this.truncated) return;
      const text = this.mask(raw.text);
      const size = Buffer.byteLength(text) + 1;
      if (this.bytes + size > this.cap.bytes) {
        this.truncated = true;
        this.buffer.push({ t: raw.time, s: 'e', x: truncationMarker(this.cap) });
        this.flush();
        return;
      }
      this.bytes += size;
      this.bufferBytes += size;
      this.buffer.push({ t: raw.time, s: raw.stream === 'stderr' ? 'e' : 'o', x: text });
      if (this.bufferBytes >= CHUNK_BYTES) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS);
    }
  }

  /** Writes what is buffered; writes happen one after another, in order. */
  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.buffer.length === 0) return;
    const chunk = {
      ...this.step,
      chunk: this.nextChunk++,
      firstLine: this.lineCount,
      lines: this.buffer,
      bytes: this.bufferBytes,
      truncated: this.truncated,
    };
    this.lineCount += this.buffer.length;
    this.buffer = [];
    this.bufferBytes = 0;
    // After a failed write nothing more is written: stored chunks stay a prefix of
    // the output, which is what a retried attempt resumes from.
    this.inFlight++;
    this.writing = this.writing
      .then(() => (this.failure ? undefined : this.logs.append(this.jobId, chunk, this.attempt)))
      .catch((err: unknown) => {
        this.failure ??= err;
      })
      .finally(() => {
        this.inFlight--;
      });
  }

  /**
   * Adds a line of Draftsman's own (on stderr) saying that output is missing and why,
   * unless the cap already cut the log: a reader sees the gap, not a silent hole.
   */
  gap(reason: string): void {
    if (this.truncated) return;
    this.push([{ stream: 'stderr', time: new Date().toISOString(), text: gapMarker(reason) }]);
  }

  /** Flushes and waits for every write; rejects if one failed, so the step is retried rather than recorded with a gap. */
  async close(): Promise<void> {
    this.flush();
    await this.writing;
    if (this.failure) throw this.failure;
  }
}
