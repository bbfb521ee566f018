/**
 * Where a follow of a step's output stopped, by the engine's timestamps: the engine can
 * end a follow before the last lines of a container that exited (seen with Debian's
 * 20.10: a 1 MiB burst cut at 61%, the stream ended normally), so the follower reads
 * again from its last timestamp and keeps only the lines it had not seen.
 */
import type { LogLine } from '../runner';

/**
 * The last line's time and how many lines seen so far carry exactly it. Times are
 * compared as written: the parser writes every line's time in one form (frames.ts,
 * `toISOString`'s), so equal times are equal strings, and the follow, which advances
 * the position for every batch of output, parses none.
 */
export interface LogPosition {
  time: string;
  atLast: number;
}

/** Nanoseconds of an RFC 3339 time with up to nine fraction digits (`2026-12-01T02:42:28.390123456Z`). */
export function nanosOf(time: string): bigint {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(time);
  if (!m) throw new Error(`not an RFC 3339 time: ${time}`);
  const seconds = BigInt(Date.parse(`${m[1]}${m[3]}`)) / 1000n;
  return seconds * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

/** The position after `lines`, from `from` (null: nothing seen yet). */
export function advance(from: LogPosition | null, lines: readonly LogLine[]): LogPosition | null {
  const last = lines.at(-1);
  if (!last) return from;
  let atLast = 1;
  let i = lines.length - 2;
  while (i >= 0 && lines[i]!.time === last.time) {
    atLast++;
    i--;
  }
  if (i < 0 && from?.time === last.time) atLast += from.atLast;
  return { time: last.time, atLast };
}

/** The engine's `since` for a re-read from `pos` (seconds with nine fraction digits). */
export function sinceOf(pos: LogPosition): string {
  const nanos = nanosOf(pos.time);
  const s = nanos / 1_000_000_000n;
  const ns = nanos % 1_000_000_000n;
  return `${s}.${ns.toString().padStart(9, '0')}`;
}

/** Of the lines a re-read from `pos` returned, those not seen before. */
export function linesAfter(lines: readonly LogLine[], pos: LogPosition | null): LogLine[] {
  if (!pos) return [...lines];
  const at = nanosOf(pos.time);
  let repeated = pos.atLast;
  return lines.filter((l) => {
    const nanos = nanosOf(l.time);
    if (nanos < at) return false;
    if (nanos === at && repeated > 0) {
      repeated--;
      return false;
    }
    return true;
  });
}

/** How many of the log's last lines a re-read asks for first: the engine reads a tail from the end of its file. */
export const TAIL_WINDOW = 1000;

/**
 * A follow's position in each stream. Each stream is one pipe, its lines in time order;
 * the two together are not (a stderr line may come after a later stdout line), so one
 * position for both would go back in time and a re-read would repeat lines.
 */
export type StreamPositions = Record<LogLine['stream'], LogPosition | null>;

export const noPositions = (): StreamPositions => ({ stdout: null, stderr: null });

export function advanceStreams(p: StreamPositions, lines: readonly LogLine[]): StreamPositions {
  return {
    stdout: advance(
      p.stdout,
      lines.filter((l) => l.stream === 'stdout'),
    ),
    stderr: advance(
      p.stderr,
      lines.filter((l) => l.stream === 'stderr'),
    ),
  };
}

/** Of a re-read's lines (in the engine's order), those after each stream's position. */
export function streamLinesAfter(lines: readonly LogLine[], p: StreamPositions): LogLine[] {
  const fresh = new Set([
    ...linesAfter(
      lines.filter((l) => l.stream === 'stdout'),
      p.stdout,
    ),
    ...linesAfter(
      lines.filter((l) => l.stream === 'stderr'),
      p.stderr,
    ),
  ]);
  return lines.filter((l) => fresh.has(l));
}

/**
 * Of the last lines of a log (a tail read of at most `window` lines), those after each
 * stream's position; null when the tail may not reach back to a position, or when no line
 * was seen at all, and the log must be read from `since(p)` (or whole).
 *
 * A stream with no line seen needs no position of its own: the follow read the log in its
 * order up to where the engine ended it, so every line of that stream comes after the
 * last line seen of the other, and a tail that reaches back before that line holds them
 * all. (Reading the whole log for it instead made a step that printed 50 MiB to stdout
 * alone decode all of it again: 18 s and a worker peak of 631 MiB.)
 */
export function streamLinesAfterTail(tail: readonly LogLine[], p: StreamPositions, window: number): LogLine[] | null {
  const first = tail[0];
  if (!first) return [];
  // Fewer lines than asked for: the tail is the whole log.
  if (tail.length < window) return streamLinesAfter(tail, p);
  const known = [p.stdout, p.stderr].filter((pos): pos is LogPosition => pos !== null);
  if (known.length === 0) return null;
  for (const pos of known) {
    if (nanosOf(first.time) >= nanosOf(pos.time)) return null;
  }
  return streamLinesAfter(tail, p);
}

/** Where a re-read must start to hold every line after both positions: the earlier one, or the log's start. */
export function earliest(p: StreamPositions): LogPosition | null {
  if (!p.stdout || !p.stderr) return null;
  return nanosOf(p.stdout.time) <= nanosOf(p.stderr.time) ? p.stdout : p.stderr;
}
