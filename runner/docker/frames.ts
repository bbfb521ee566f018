/**
 * Incremental parser of Docker's multiplexed log stream (8-byte header per frame:
 * [stream, 0, 0, 0, size u32 BE]) into lines, for following a running container.
 * Pure: bytes in, lines out. With `timestamps`, Docker starts each line with an
 * RFC 3339 time and a space.
 */
import type { LogLine } from '../runner';

/**
 * The longest line the parser holds before passing it on in pieces. Output without a
 * newline would otherwise collect in memory without bound (a step printing 300 MB on
 * one line); a piece of this size is a line of its own in the stored log.
 */
export const MAX_LINE_CHARS = 64 * 1024;

export class DockerLogParser {
  constructor(private readonly maxLineChars = MAX_LINE_CHARS) {}

  private pending: Buffer = Buffer.alloc(0);
  /** A line split across frames (Docker splits lines longer than 16 KiB). */
  private partial: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' };
  private partialTime: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' };

  push(chunk: Buffer): LogLine[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const lines: LogLine[] = [];
    while (this.pending.length >= 8) {
      const size = this.pending.readUInt32BE(4);
      if (this.pending.length < 8 + size) break;
      const stream = this.pending[0] === 2 ? 'stderr' : 'stdout';
      const payload = this.pending.subarray(8, 8 + size).toString('utf8');
      this.pending = this.pending.subarray(8 + size);
      this.take(stream, payload, lines);
    }
    return lines;
  }

  /** Lines left without a final newline when the stream ended. */
  end(): LogLine[] {
    const lines: LogLine[] = [];
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.partial[stream]) lines.push({ stream, time: normalizeTime(this.partialTime[stream]), text: this.partial[stream] });
      this.partial[stream] = '';
    }
    return lines;
  }

  private take(stream: 'stdout' | 'stderr', payload: string, out: LogLine[]): void {
    const space = payload.indexOf(' ');
    const stamped = space > 0 && /^\d{4}-\d\d-\d\dT/.test(payload);
    const time = stamped ? payload.slice(0, space) : new Date().toISOString();
    const body = stamped ? payload.slice(space + 1) : payload;
    const parts = body.split('\n');
    for (let i = 0; i < parts.length; i++) {
      const last = i === parts.length - 1;
      if (last) {
        if (parts[i]) {
          if (!this.partial[stream]) this.partialTime[stream] = time;
          this.partial[stream] += parts[i];
          while (this.partial[stream].length >= this.maxLineChars) {
            out.push({ stream, time: normalizeTime(this.partialTime[stream]), text: this.partial[stream].slice(0, this.maxLineChars) });
            this.partial[stream] = this.partial[stream].slice(this.maxLineChars);
            this.partialTime[stream] = time;
          }
        }
        break;
      }
      const text = this.partial[stream] + parts[i]!;
      const lineTime = this.partial[stream] ? this.partialTime[stream] : time;
      this.partial[stream] = '';
      out.push({ stream, time: normalizeTime(lineTime), text });
    }
  }
}

/** The engine's form of a time: UTC, up to nine fraction digits. */
const ENGINE_TIME = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/;

/**
 * Docker's nanosecond RFC 3339 time, cut to the milliseconds JavaScript keeps, in
 * `toISOString`'s form. The engine's own form is cut as text: this runs for every
 * line, and a Date costs about 1 µs a line, seven times as much.
 */
export function normalizeTime(t: string): string {
  const m = ENGINE_TIME.exec(t);
  if (m) return `${m[1]}.${(m[2] ?? '').padEnd(3, '0').slice(0, 3)}Z`;
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? t : d.toISOString();
}
