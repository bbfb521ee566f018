import type { LogLine } from '../runner';
import { advance, advanceStreams, earliest, linesAfter, nanosOf, noPositions, sinceOf, streamLinesAfter, streamLinesAfterTail } from './log-position';

const line = (time: string, text: string): LogLine => ({ stream: 'stdout', time, text });

describe('nanosOf', () => {
  it.each([
    ['2026-12-01T02:42:28.390123456Z', 1796092948390123456n],
    ['2026-12-01T02:42:28.39Z', 1796092948390000000n],
    ['2026-12-01T02:42:28Z', 1796092948000000000n],
    ['2026-12-01T03:42:28.5+01:00', 1796092948500000000n],
  ])('%s', (time, nanos) => {
    expect(nanosOf(time)).toBe(nanos);
  });

  it('refuses what is not a time', () => {
    expect(() => nanosOf('yesterday')).toThrow(/RFC 3339/);
  });
});

describe('re-reading after a follow that ended early', () => {
  const seen = [line('2026-12-01T00:00:01.000000001Z', 'a'), line('2026-12-01T00:00:01.000000002Z', 'b'), line('2026-12-01T00:00:01.000000002Z', 'c')];
  const pos = advance(null, seen)!;

  it('remembers the last time and how many lines carry it', () => {
    expect(pos).toEqual({ time: '2026-12-01T00:00:01.000000002Z', atLast: 2 });
    expect(sinceOf(pos)).toBe('1796083201.000000002');
  });

  it.each<[string, LogLine[], string[]]>([
    ['nothing new', [seen[1]!, seen[2]!], []],
    ['lines after the last time', [seen[1]!, seen[2]!, line('2026-12-01T00:00:01.5Z', 'd'), line('2026-12-01T00:00:02Z', 'e')], ['d', 'e']],
    ['a third line at the same time as the last two', [seen[1]!, seen[2]!, line('2026-12-01T00:00:01.000000002Z', 'c2')], ['c2']],
    ['earlier lines the engine sent anyway', [seen[0]!, seen[1]!, seen[2]!, line('2026-12-01T00:00:03Z', 'f')], ['f']],
  ])('%s', (_name, reread, expected) => {
    expect(linesAfter(reread, pos).map((l) => l.text)).toEqual(expected);
  });

  it('with nothing seen, every line is new', () => {
    expect(linesAfter(seen, null).map((l) => l.text)).toEqual(['a', 'b', 'c']);
  });
});

describe('advance', () => {
  const t = (n: number) => `2026-12-01T00:00:01.00${n}Z`;
  it.each<[string, [number, number] | null, number[], [number, number] | null]>([
    ['an empty batch keeps the position', [1, 2], [], [1, 2]],
    ['a batch at a later time starts a new run', [1, 2], [2, 3, 3], [3, 2]],
    ['a batch all at the last time adds to its run', [1, 2], [1, 1], [1, 4]],
    ['a batch that ends at the last time after another does not', [1, 2], [1, 2, 1], [1, 1]],
    ['from nothing', null, [4, 5, 5, 5], [5, 3]],
    ['from nothing, an empty batch', null, [], null],
  ])('%s', (_name, from, times, expected) => {
    const pos = advance(
      from && { time: t(from[0]), atLast: from[1] },
      times.map((n) => line(t(n), 'x')),
    );
    expect(pos).toEqual(expected && { time: t(expected[0]), atLast: expected[1] });
  });
});

describe('positions per stream (stdout and stderr are separate pipes)', () => {
  const at = (n: number, stream: 'stdout' | 'stderr', text: string): LogLine => ({ stream, time: `2026-12-01T00:00:0${n}.000Z`, text });
  // The engine's follow handed over a later stdout line before an earlier stderr one.
  const followed = [at(1, 'stdout', 'one'), at(3, 'stdout', 'three'), at(2, 'stderr', 'two')];
  const p = advanceStreams(noPositions(), followed);
  const log = [at(1, 'stdout', 'one'), at(2, 'stderr', 'two'), at(3, 'stdout', 'three'), at(4, 'stderr', 'four'), at(5, 'stdout', 'five')];

  it('keeps each stream where it is, not where the last line was', () => {
    expect(p).toEqual({ stdout: { time: at(3, 'stdout', '').time, atLast: 1 }, stderr: { time: at(2, 'stderr', '').time, atLast: 1 } });
    expect(earliest(p)).toEqual(p.stderr);
  });

  it.each<[string, LogLine[], number, string[] | null]>([
    ['a whole log read again: only the lines after each stream', log, 1000, ['four', 'five']],
    ['nothing new', log.slice(0, 3), 1000, []],
    ['a tail that reaches back before both positions', log, 5, ['four', 'five']],
    ['a tail that starts after the stderr position', log.slice(2), 3, null],
  ])('%s', (_name, tail, window, expected) => {
    expect(streamLinesAfterTail(tail, p, window)?.map((l) => l.text) ?? null).toEqual(expected);
  });

  it("a stream with no line seen gets all of its lines, from a tail that reaches back before the other stream's position", () => {
    const onlyOut = advanceStreams(noPositions(), [at(1, 'stdout', 'one')]);
    expect(streamLinesAfterTail(log, onlyOut, 1000)?.map((l) => l.text)).toEqual(['two', 'three', 'four', 'five']);
    // The tail starts at the stdout position: a line of that time may be missing from it.
    expect(streamLinesAfterTail(log, onlyOut, 5)).toBeNull();
    expect(earliest(onlyOut)).toBeNull();
    expect(streamLinesAfter(log, onlyOut).map((l) => l.text)).toEqual(['two', 'three', 'four', 'five']);
    // Seen up to stdout's third line, and no stderr: a full tail from before it will do.
    const outToThree = advanceStreams(noPositions(), [at(1, 'stdout', 'one'), at(3, 'stdout', 'three')]);
    expect(streamLinesAfterTail(log, outToThree, 5)?.map((l) => l.text)).toEqual(['two', 'four', 'five']);
    expect(streamLinesAfterTail(log.slice(2), outToThree, 3)).toBeNull();
  });

  it('nothing seen at all: a full tail will not do (the whole log is read)', () => {
    expect(streamLinesAfterTail(log, noPositions(), 5)).toBeNull();
    expect(streamLinesAfterTail(log, noPositions(), 1000)?.map((l) => l.text)).toEqual(['one', 'two', 'three', 'four', 'five']);
  });
});
