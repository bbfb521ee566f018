import type { StepKind } from '../common/job';
import type { LogProgress, StepLogStore, StoredLogLine } from '../db/log-store';
import type { LogLine } from '../runner/runner';

/**
 * What masks a step's lines: read together, so that a secret cut by a line break (the
 * 64 KiB line cut, base64 wrapped at 76 columns, a hex dump) is masked in every line
 * it spans (common/secret-scan.ts).
 */
export interface LineMasker {
  readonly empty: boolean;
  /** The longest form looked for: a line is final once this much output follows it. */
  readonly longest: number;
  maskLines(lines: readonly string[]): string[];
}

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
 *
 * With secrets to mask, the last lines are held back (unstored, and unmasked) until the
 * output after them is longer than any form a secret can take, or the next flush: a
 * secret that runs on into the next line is masked in both, as they are read together.
 */
export class StepLogWriter {
  private buffer: StoredLogLine[] = [];
  /** Lines read and not yet masked: the window a secret across lines is looked for in. */
  private held: LogLine[] = [];
  private heldChars = 0;
  private bufferBytes = 0;
  /** When the last chunk was written (epoch ms). */
  private lastWrite = 0;
  private nextChunk: number;
  private lineCount: number;
  private bytes: number;
  private truncated: boolean;
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private failure: unknown = null;

  constructor(
    private readonly logs: Pick<StepLogStore, 'append'>,
    private readonly jobId: string,
    private readonly step: { kind: StepKind; index: number; placement?: number },
    readonly cap: LogCap,
    progress: LogProgress,
    /** Masks the job's secret values in the lines before they are stored. */
    private readonly masker?: LineMasker,
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
    return this.lineCount + this.buffer.length + this.held.length;
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
    if (!this.masker || this.masker.empty) this.push(lines);
    else this.hold(lines);
    return this.inFlight > MAX_CHUNKS_IN_FLIGHT ? this.writing : undefined;
  }

  /**
   * Adds lines to the window and stores, masked, those that enough output follows: the
   * whole window is masked as one text, and a line's mask is final when it leaves.
   */
  private hold(lines: LogLine[]): void {
    for (const l of lines) {
      this.held.push(l);
      this.heldChars += l.text.length + 1;
    }
    const masker = this.masker!;
    let release = 0;
    let after = this.heldChars;
    while (release < this.held.length && after - (this.held[release]!.text.length + 1) >= masker.longest) {
      after -= this.held[release]!.text.length + 1;
      release++;
    }
    this.release(release);
    if (this.held.length > 0) this.timer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  /**
   * Stores the first `count` held lines, masked as the window reads them. Lines kept
   * back keep what this window masked in them (a secret that began in a line stored
   * now), and are read again with the lines that come next.
   */
  private release(count: number): void {
    if (count === 0) return;
    const masked = this.masker!.maskLines(this.held.map((l) => l.text));
    this.held = this.held.map((l, i) => ({ ...l, text: masked[i]! }));
    const out = this.held.splice(0, count);
    this.heldChars = this.held.reduce((n, l) => n + l.text.length + 1, 0);
    this.push(out);
  }

  private push(lines: LogLine[]): void {
    for (const raw of lines) {
      if (this.truncated) return;
      const text = raw.text;
      const size = Buffer.byteLength(text) + 1;
      if (this.bytes + size > this.cap.bytes) {
        this.truncated = true;
        this.buffer.push({ t: raw.time, s: 'e', x: truncationMarker(this.cap) });
        this.held = [];
        this.writeChunk();
        return;
      }
      this.bytes += size;
      this.bufferBytes += size;
      this.buffer.push({ t: raw.time, s: raw.stream === 'stderr' ? 'e' : 'o', x: text });
      if (this.bufferBytes >= CHUNK_BYTES) this.writeChunk();
      else this.flushSoon();
    }
  }

  /**
   * At most one chunk every FLUSH_MS, the first at once: a step's first line reaches its
   * followers without waiting (what "time to the first output" measures), and a fast
   * printer still writes a chunk per interval. Lines read together are stored together.
   */
  private flushSoon(): void {
    this.timer ??= setTimeout(() => this.flush(), Math.max(0, this.lastWrite + FLUSH_MS - Date.now()));
  }

  /** Writes what is buffered, the held lines too (the timer, a gap, the end). */
  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.held.length > 0) this.release(this.held.length);
    this.writeChunk();
  }

  /** Writes the buffered lines as one chunk; writes happen one after another, in order. */
  private writeChunk(): void {
    if (this.buffer.length === 0) return;
    this.lastWrite = Date.now();
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
    this.flush();
    this.push([{ stream: 'stderr', time: new Date().toISOString(), text: gapMarker(reason) }]);
  }

  /** Flushes and waits for every write; rejects if one failed, so the step is retried rather than recorded with a gap. */
  async close(): Promise<void> {
    this.flush();
    await this.writing;
    if (this.failure) throw this.failure;
  }
}
