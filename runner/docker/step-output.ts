/**
 * A step container's output through the engine: followed as it is written (paused while
 * the consumer stores it, re-read after the engine ends the follow early), or read whole.
 */
import type Docker from 'dockerode';
import { EngineUnreachableError, RunnerError } from '../../common/errors';
import type { LogLine, StepState } from '../runner';
import { demuxDockerStream } from './demux';
import { DockerLogParser } from './frames';
import { advanceStreams, earliest, noPositions, sinceOf, streamLinesAfter, streamLinesAfterTail, TAIL_WINDOW } from './log-position';

const isGone = (err: unknown) => (err as { statusCode?: number } | null)?.statusCode === 404;

export class StepOutput {
  constructor(
    private readonly docker: Docker,
    /** The bound of a short request to the engine. */
    private readonly bounded: () => { abortSignal: AbortSignal },
  ) {}

  /**
   * Follows a container's output (`name`) from its start, skipping the first `skipLines`
   * lines; `status` tells whether it has exited, after the engine ended the follow.
   */
  async follow(
    name: string,
    status: () => Promise<StepState>,
    onLines: (lines: LogLine[]) => void | Promise<void>,
    opts: { skipLines: number; signal?: AbortSignal },
  ): Promise<void> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = (await this.docker.getContainer(name).logs({
        follow: true,
        stdout: true,
        stderr: true,
        timestamps: true,
        abortSignal: opts.signal,
      })) as NodeJS.ReadableStream;
    } catch (err) {
      if (opts.signal?.aborted || isGone(err)) return;
      throw new RunnerError(`following logs of ${name} failed`, err);
    }
    const parser = new DockerLogParser();
    let toSkip = opts.skipLines;
    /** The last line read of each stream (skipped or delivered), for a re-read after the stream. */
    let positions = noPositions();
    const deliver = (lines: LogLine[]): void | Promise<void> => {
      positions = advanceStreams(positions, lines);
      if (toSkip > 0) {
        const skipped = Math.min(toSkip, lines.length);
        toSkip -= skipped;
        lines = lines.slice(skipped);
      }
      if (lines.length) return onLines(lines);
    };
    // The consumer's last promise: while it is pending the stream is paused.
    let consumed: Promise<void> = Promise.resolve();
    let broken = false;
    await new Promise<void>((resolve) => {
      stream.on('data', (chunk: Buffer) => {
        const busy = deliver(parser.push(chunk));
        if (busy) {
          stream.pause();
          consumed = busy.catch(() => undefined).then(() => void stream.resume());
        }
      });
      let ended = false;
      const done = (how: 'end' | 'close' | 'error') => {
        if (ended) return;
        ended = true;
        // The engine ends the stream once the output is drained; a stream that broke
        // before (the engine went away) leaves the rest unread.
        broken = how !== 'end' && !opts.signal?.aborted;
        void consumed
          .then(() => deliver(parser.end()))
          .catch(() => undefined)
          .then(() => resolve());
      };
      stream.once('end', () => done('end'));
      stream.once('close', () => done('close'));
      stream.once('error', () => done('error'));
    });
    if (broken) throw new EngineUnreachableError(`the output stream of ${name} broke before its end`);
    if (opts.signal?.aborted) return;
    // The engine may end a follow before the last lines of a container that exited:
    // once it has, whatever it holds after the last line read is read again.
    if ((await status()).state !== 'exited') return;
    // The tail first: it is read from the end of the engine's log file, while a read
    // from a time decodes the whole file.
    const from = earliest(positions);
    const rest =
      streamLinesAfterTail(await this.readLog(name, { tail: TAIL_WINDOW }), positions, TAIL_WINDOW) ??
      streamLinesAfter(await this.readLog(name, from ? { since: sinceOf(from) as unknown as number } : {}), positions);
    if (rest.length) await consumed.then(() => deliver(rest));
  }

  /** A container's stored output, as lines with their times (none if the container is gone). */
  private async readLog(name: string, which: { tail?: number; since?: number }): Promise<LogLine[]> {
    let raw: Buffer;
    try {
      raw = (await this.docker.getContainer(name).logs({
        follow: false,
        stdout: true,
        stderr: true,
        timestamps: true,
        ...this.bounded(),
        ...which,
      })) as unknown as Buffer;
    } catch (err) {
      if (isGone(err)) return [];
      throw new RunnerError(`reading the rest of the output of ${name} failed`, err);
    }
    const parser = new DockerLogParser();
    return [...parser.push(raw), ...parser.end()];
  }

  /** A container's stdout alone, at most `maxBytes` of it. */
  async stdout(name: string, maxBytes: number): Promise<{ data: Buffer; truncated: boolean }> {
    let raw: Buffer;
    try {
      raw = (await this.docker.getContainer(name).logs({ stdout: true, stderr: false, follow: false, ...this.bounded() })) as unknown as Buffer;
    } catch (err) {
      if (isGone(err)) return { data: Buffer.alloc(0), truncated: false };
      throw new RunnerError(`reading output of ${name} failed`, err);
    }
    const data = Buffer.concat(demuxDockerStream(raw).map((c) => c.data));
    return data.length > maxBytes ? { data: data.subarray(0, maxBytes), truncated: true } : { data, truncated: false };
  }
}
