/**
 * Where a follow of a step's output stopped, by the engine's timestamps: the engine can
 * end a follow before the last lines of a container that exited (seen with Debian's
 * 20.10: a 1 MiB burst cut at 61%, the stream ended normally), so the follower reads
 * again from its last timestamp and keeps only the lines it had not seen.
 */
import type { LogLine } from '../runner';

export interface LogPosition {
  /** The last line's time, in nanoseconds since the epoch. */
  nanos: bigint;
  /** How many lines seen so far carry exactly that time. */
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
  let pos = from;
  for (const l of lines) {
    const nanos = nanosOf(l.time);
    pos = pos && pos.nanos === nanos ? { nanos, atLast: pos.atLast + 1 } : { nanos, atLast: 1 };
  }
  return pos;
}

/** The engine's `since` for a re-read from `pos` (seconds with nine fraction digits). */
export function sinceOf(pos: LogPosition): string {
  const s = pos.nanos / 1_000_000_000n;
  const ns = pos.nanos % 1_000_000_000n;
  return `${s}.${ns.toString().padStart(9, '0')}`;
}

/** Of the lines a re-read from `pos` returned, those not seen before. */
export function linesAfter(lines: readonly LogLine[], pos: LogPosition | null): LogLine[] {
  if (!pos) return [...lines];
  let repeated = pos.atLast;
  return lines.filter((l) => {
    const nanos = nanosOf(l.time);
    if (nanos < pos.nanos) return false;
    if (nanos === pos.nanos && repeated > 0) {
      repeated--;
      return false;
    }
    return true;
  });
}
