import type { LogStore } from '../db/log-store';
import { secretScanner } from '../common/secret-scan';
import { gapMarker, StepLogWriter, stepLogCap, truncationMarker } from './step-log';

/** A store whose chunk writes wait until the test lets them finish. */
function slowStore() {
  const written: { chunk: number; lines: number }[] = [];
  const waiting: (() => void)[] = [];
  const store = {
    append: (_job: string, c: { chunk: number; lines: unknown[] }) =>
      new Promise<void>((resolve) => {
        waiting.push(() => {
          written.push({ chunk: c.chunk, lines: c.lines.length });
          resolve();
        });
      }),
  } as unknown as LogStore;
  return { store, written, release: () => waiting.splice(0).forEach((w) => w()) };
}

const line = (i: number) => ({ time: new Date(0).toISOString(), stream: 'stdout' as const, text: `${i}`.padStart(1000, 'x') });

describe('StepLogWriter backpressure', () => {
  it('asks the follower to wait once more than four chunks are ahead of the database, and keeps every line', async () => {
    const { store, written, release } = slowStore();
    const log = new StepLogWriter(
      store,
      'job',
      { kind: 'setup', index: 0 },
      { bytes: 2 ** 30, of: 'step' },
      { nextChunk: 0, lines: 0, bytes: 0, truncated: false },
    );
    // 66 lines of 1001 bytes fill one 64 KiB chunk.
    const batch = (from: number) => Array.from({ length: 66 }, (_, i) => line(from + i));
    const answers = [0, 1, 2, 3, 4, 5].map((b) => log.add(batch(b * 66)));
    expect(answers.slice(0, 4)).toEqual([undefined, undefined, undefined, undefined]);
    expect(answers[4]).toBeInstanceOf(Promise);
    expect(answers[5]).toBeInstanceOf(Promise);

    let settled = false;
    void answers[5]!.then(() => (settled = true));
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    // The writes finish one after another; the wait ends when they are done.
    for (let i = 0; i < 6; i++) {
      release();
      await new Promise((r) => setImmediate(r));
    }
    await answers[5];
    expect(log.add(batch(6 * 66))).toBeUndefined();
    const closing = log.close();
    for (let i = 0; i < 3; i++) {
      release();
      await new Promise((r) => setImmediate(r));
    }
    await closing;
    expect(written.map((w) => w.chunk)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(written.reduce((n, w) => n + w.lines, 0)).toBe(7 * 66);
  });
});

/** A store that keeps the stored lines' text in memory. */
function memoryStore() {
  const lines: string[] = [];
  const store = { append: async (_job: string, c: { lines: { x: string }[] }) => void lines.push(...c.lines.map((l) => l.x)) } as unknown as LogStore;
  return { store, lines };
}
const fresh = { nextChunk: 0, lines: 0, bytes: 0, truncated: false };

describe('StepLogWriter gaps', () => {
  it('marks where output is missing, after what was stored', async () => {
    const { store, lines } = memoryStore();
    const log = new StepLogWriter(store, 'job', { kind: 'setup', index: 0 }, { bytes: 2 ** 20, of: 'step' }, fresh);
    void log.add([line(1)]);
    void log.gap('the stream went silent');
    await log.close();
    expect(lines).toEqual([line(1).text, gapMarker('the stream went silent')]);
  });

  it('adds no gap marker after the truncation marker', async () => {
    const { store, lines } = memoryStore();
    const log = new StepLogWriter(store, 'job', { kind: 'setup', index: 0 }, { bytes: 1500, of: 'step' }, fresh);
    void log.add([line(1), line(2)]);
    void log.gap('the stream went silent');
    await log.close();
    expect(lines).toEqual([line(1).text, truncationMarker({ bytes: 1500, of: 'step' })]);
  });
});

describe('stepLogCap', () => {
  const MiB = 2 ** 20;
  it.each([
    ['a first step: its own cap', 10 * MiB, 100 * MiB, 0, { bytes: 10 * MiB, of: 'step' }],
    ['the job has room for a whole step cap exactly', 10 * MiB, 100 * MiB, 90 * MiB, { bytes: 10 * MiB, of: 'step' }],
    ['one byte less: what the job has left', 10 * MiB, 100 * MiB, 90 * MiB + 1, { bytes: 10 * MiB - 1, of: 'job' }],
    ["the job's cap used up", 10 * MiB, 100 * MiB, 100 * MiB, { bytes: 0, of: 'job' }],
    ['past it (an earlier cap was larger)', 10 * MiB, 100 * MiB, 120 * MiB, { bytes: 0, of: 'job' }],
  ])('%s', (_name, stepMax, jobMax, others, expected) => {
    expect(stepLogCap(stepMax, jobMax, others)).toEqual(expected);
  });
});

describe('StepLogWriter at its cap', () => {
  const at = (text: string) => ({ time: new Date(0).toISOString(), stream: 'stdout' as const, text });
  it.each([
    ['a line that ends exactly at the cap is stored whole', 100, 99, false],
    ['one byte over: cut, with the marker', 100, 100, true],
  ])('%s', async (_name, cap, length, cut) => {
    const { store, lines } = memoryStore();
    const log = new StepLogWriter(store, 'job', { kind: 'setup', index: 0 }, { bytes: cap, of: 'job' }, fresh);
    // A stored line costs its bytes and its newline.
    void log.add([at('x'.repeat(length))]);
    await log.close();
    expect(lines).toEqual(cut ? [truncationMarker({ bytes: cap, of: 'job' })] : ['x'.repeat(length)]);
    expect(log.stored.truncated).toBe(cut);
  });

  it("says which cap it was: the job's names the setting", () => {
    expect(truncationMarker({ bytes: 5, of: 'job' })).toMatch(/job's cap \(DRAFTSMAN_JOB_LOG_MAX_BYTES\)/);
    expect(truncationMarker({ bytes: 5, of: 'step' })).toMatch(/this step printed more than the 5-byte cap/);
  });
});

describe('StepLogWriter masks a secret across lines', () => {
  const SECRET = 'log-Secret/Value+0123456789';
  const at = (text: string) => ({ time: new Date(0).toISOString(), stream: 'stdout' as const, text });
  const b64 = Buffer.from(`${'p'.repeat(40)}${SECRET} and the rest of the text`).toString('base64');
  const cases: [string, string[][]][] = [
    ['cut by the 64 KiB line cut, in one batch', [['x'.repeat(65_530) + SECRET.slice(0, 10), `${SECRET.slice(10)} after`]]],
    ['cut by the line cut, the pieces in two batches (two chunks of the stream)', [['x'.repeat(65_530) + SECRET.slice(0, 10)], [`${SECRET.slice(10)} after`]]],
    ['base64 wrapped at 76 columns', [b64.match(/.{1,76}/g)!]],
    ['base64 wrapped at 76 columns, a line a batch', b64.match(/.{1,76}/g)!.map((l) => [l])],
    [
      'hex with spaces, wrapped (od -An -tx1)',
      [
        Buffer.from(SECRET)
          .toString('hex')
          .match(/.{1,32}/g)!
          .map((h) => h.replace(/(..)/g, ' $1')),
      ],
    ],
  ];
  it.each(cases)('%s', async (_how, batches) => {
    const { store, lines } = memoryStore();
    const log = new StepLogWriter(store, 'job', { kind: 'setup', index: 0 }, { bytes: 2 ** 20, of: 'step' }, fresh, secretScanner([SECRET]));
    for (const b of batches) void log.add(b.map(at));
    void log.add([at('done')]);
    await log.close();
    expect(lines).toHaveLength(batches.flat().length + 1);
    expect(lines.at(-1)).toBe('done');
    expect(secretScanner([SECRET]).holds(lines.join('\n'))).toBe(false);
    expect(lines.join('\n')).not.toContain(SECRET.slice(10));
    // Positive control: masked a line at a time, the same output keeps the secret.
    const alone = secretScanner([SECRET]);
    expect(
      alone.holds(
        batches
          .flat()
          .map((l) => alone.mask(l))
          .join('\n'),
      ),
    ).toBe(true);
  });

  it('holds a line back only until the output after it is longer than any form, or the flush', async () => {
    const { store, lines } = memoryStore();
    const log = new StepLogWriter(store, 'job', { kind: 'setup', index: 0 }, { bytes: 2 ** 20, of: 'step' }, fresh, secretScanner([SECRET]));
    void log.add([at('first')]);
    expect(log.storedLines).toBe(1);
    await new Promise((r) => setTimeout(r, 400));
    // The flush timer stored it, alone.
    expect(lines).toEqual(['first']);
    await log.close();
  });
});

describe('StepLogWriter timing', () => {
  const short = (text: string) => ({ time: new Date(0).toISOString(), stream: 'stdout' as const, text });
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it("stores a step's first lines at once, and later ones at most one chunk every 200 ms", async () => {
    const chunks: string[][] = [];
    const store = {
      append: async (_job: string, c: { lines: { x: string }[] }) => void chunks.push(c.lines.map((l) => l.x)),
    } as unknown as LogStore;
    const log = new StepLogWriter(
      store,
      'job',
      { kind: 'setup', index: 0 },
      { bytes: 2 ** 20, of: 'step' },
      { nextChunk: 0, lines: 0, bytes: 0, truncated: false },
    );
    // Lines read together go in one chunk, written on the next turn of the loop.
    void log.add([short('a'), short('b')]);
    await jest.advanceTimersByTimeAsync(0);
    expect(chunks).toEqual([['a', 'b']]);
    // Within the interval: held until it is over.
    void log.add([short('c')]);
    await jest.advanceTimersByTimeAsync(100);
    void log.add([short('d')]);
    await jest.advanceTimersByTimeAsync(99);
    expect(chunks).toEqual([['a', 'b']]);
    await jest.advanceTimersByTimeAsync(1);
    expect(chunks).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
    await log.close();
    expect(chunks).toHaveLength(2);
  });
});
