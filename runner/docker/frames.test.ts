import { DockerLogParser, normalizeTime } from './frames';
import { frame } from './frames.fixture';

const T = '2026-11-22T10:00:00.123456789Z';

describe('DockerLogParser', () => {
  it('turns stamped frames into lines in order, keeping the stream and time', () => {
    const p = new DockerLogParser();
    const lines = p.push(Buffer.concat([frame(1, `${T} one\n`), frame(2, `${T} two\n`), frame(1, `${T} three\n`)]));
    expect(lines).toEqual([
      { stream: 'stdout', time: '2026-11-22T10:00:00.123Z', text: 'one' },
      { stream: 'stderr', time: '2026-11-22T10:00:00.123Z', text: 'two' },
      { stream: 'stdout', time: '2026-11-22T10:00:00.123Z', text: 'three' },
    ]);
  });

  it('waits for a frame split across chunks', () => {
    const p = new DockerLogParser();
    const whole = frame(1, `${T} split\n`);
    expect(p.push(whole.subarray(0, 5))).toEqual([]);
    expect(p.push(whole.subarray(5, 20))).toEqual([]);
    expect(p.push(whole.subarray(20)).map((l) => l.text)).toEqual(['split']);
  });

  it('joins a long line Docker split into frames, and returns an unterminated line at the end', () => {
    const p = new DockerLogParser();
    expect(p.push(frame(1, `${T} abc`))).toEqual([]);
    expect(p.push(frame(1, `${T} def\n`)).map((l) => l.text)).toEqual(['abcdef']);
    expect(p.push(frame(2, `${T} no newline`))).toEqual([]);
    expect(p.end()).toEqual([{ stream: 'stderr', time: '2026-11-22T10:00:00.123Z', text: 'no newline' }]);
  });

  it('keeps empty lines', () => {
    const p = new DockerLogParser();
    expect(p.push(frame(1, `${T} \n`)).map((l) => l.text)).toEqual(['']);
  });

  it.each([
    ['one frame longer than the limit', [`${T} ${'a'.repeat(25)}`], ['a'.repeat(10), 'a'.repeat(10)], 'a'.repeat(5)],
    ['many short frames without a newline', Array.from({ length: 7 }, () => `${T} abc`), ['abcabcabca', 'bcabcabcab'], 'c'],
    ['a newline after a cut', [`${T} ${'b'.repeat(12)}`, `${T} cc\n`], ['b'.repeat(10)], null],
  ])('holds at most maxLineChars of a line without a newline: %s', (_name, frames, cut, rest) => {
    const p = new DockerLogParser(10);
    const lines = frames.flatMap((f) => p.push(frame(1, f)));
    if (rest === null) {
      expect(lines.map((l) => l.text)).toEqual([...cut, 'bbcc']);
      expect(p.end()).toEqual([]);
    } else {
      expect(lines.map((l) => l.text)).toEqual(cut);
      expect(p.end().map((l) => l.text)).toEqual([rest]);
    }
  });
});

describe('normalizeTime', () => {
  // Every row is what `new Date(t).toISOString()` gives: the text path must agree with it.
  it.each([
    ['2026-12-01T11:28:42.483123456Z', '2026-12-01T11:28:42.483Z'],
    ['2026-12-01T11:28:42.999999999Z', '2026-12-01T11:28:42.999Z'],
    ['2026-12-01T11:28:42.1Z', '2026-12-01T11:28:42.100Z'],
    ['2026-12-01T11:28:42Z', '2026-12-01T11:28:42.000Z'],
    ['2026-12-01T12:28:42.5+01:00', '2026-12-01T11:28:42.500Z'],
  ])('%s', (raw, expected) => {
    expect(normalizeTime(raw)).toBe(expected);
    expect(normalizeTime(raw)).toBe(new Date(raw).toISOString());
  });

  it('keeps what is not a time as it is', () => {
    expect(normalizeTime('2026-13-45Tnonsense')).toBe('2026-13-45Tnonsense');
  });
});
