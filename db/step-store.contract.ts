/**
 * The step store's contract as one suite, run against both implementations (memory in
 * the unit tests, PostgreSQL in test/e2e/step-store.e2e.ts): what a claim, a record and
 * a log write answer to the attempts of one step, so that the phases tested on memory
 * behave as they do on the database.
 */
import type { StepOutcome } from '../common/job';
import type { StepLogStore } from './log-store';
import { StaleAttemptError, type StepStore } from './step-store';

export interface StepStoreSubject {
  steps: StepStore;
  logs: StepLogStore;
  /** A job the store can hang steps on (PostgreSQL needs its row first). */
  newJob(): Promise<string>;
}

const ended = (status: StepOutcome['status'], exitCode: number | null = 0): StepOutcome & { seq: number } => ({
  kind: 'setup',
  index: 0,
  seq: 0,
  status,
  exitCode,
  oomKilled: false,
  startedAt: '2026-01-01T00:00:00.000Z',
  finishedAt: '2026-01-01T00:00:02.000Z',
});
const step = { kind: 'setup' as const, index: 0, seq: 0 };
const chunk = (n: number, lines: string[]) => ({
  kind: 'setup' as const,
  index: 0,
  chunk: n,
  firstLine: 0,
  lines: lines.map((x) => ({ t: '2026-01-01T00:00:00.000Z', s: 'o' as const, x })),
  bytes: lines.reduce((b, l) => b + l.length + 1, 0),
  truncated: false,
});

export function stepStoreContract(name: string, subject: () => StepStoreSubject): void {
  describe(`StepStore contract: ${name}`, () => {
    let s: StepStoreSubject;
    beforeAll(() => {
      s = subject();
    });

    it('a first claim creates the step; a claim by a newer attempt takes it over, with what the older one launched', async () => {
      const job = await s.newJob();
      expect(await s.steps.claim(job, step, 1)).toEqual({ state: 'claimed', launched: false, engineInterrupted: false });
      await s.steps.launched(job, 'setup', 0);
      await s.steps.engineInterrupted(job, 'setup', 0, 1, true);
      expect(await s.steps.claim(job, step, 2)).toEqual({ state: 'claimed', launched: true, engineInterrupted: true });
    });

    it('an older attempt finds its step held by the newer one (stale), and neither records it nor writes its log', async () => {
      const job = await s.newJob();
      await s.steps.claim(job, step, 2);
      expect(await s.steps.claim(job, step, 1)).toEqual({ state: 'stale', attempt: 2 });
      expect(await s.steps.record(job, ended('succeeded'), 1)).toBe('stale');
      await expect(s.logs.append(job, chunk(0, ['late']), 1)).rejects.toBeInstanceOf(StaleAttemptError);
      expect(await s.steps.finished(job, 'setup', 0)).toBeNull();
    });

    it('an engine interruption is noted only by the attempt that holds the step', async () => {
      const job = await s.newJob();
      await s.steps.claim(job, step, 2);
      await s.steps.engineInterrupted(job, 'setup', 0, 1, true);
      expect(await s.steps.claim(job, step, 2)).toMatchObject({ engineInterrupted: false });
    });

    it('a recorded end is kept: a second record finds it, a later claim returns it', async () => {
      const job = await s.newJob();
      await s.steps.claim(job, step, 1);
      expect(await s.steps.record(job, ended('timed_out', 143), 1)).toBe('recorded');
      expect(await s.steps.record(job, ended('succeeded'), 1)).toBe('finished');
      const claim = await s.steps.claim(job, step, 2);
      expect(claim).toMatchObject({ state: 'finished', outcome: { kind: 'setup', index: 0, status: 'timed_out', exitCode: 143, durationMs: 2000 } });
      expect(await s.steps.finished(job, 'setup', 0)).toMatchObject({ status: 'timed_out' });
    });

    it('a record without a claim (a job ending while no attempt ran the step) creates the row', async () => {
      const job = await s.newJob();
      expect(await s.steps.record(job, { ...ended('cancelled', null), startedAt: null, finishedAt: null })).toBe('recorded');
      expect(await s.steps.finished(job, 'setup', 0)).toMatchObject({ status: 'cancelled', exitCode: null });
    });

    it('running lists the unfinished steps in order; placements are steps of their own', async () => {
      const job = await s.newJob();
      await s.steps.claim(job, { kind: 'setup', index: 1, seq: 1 }, 1);
      await s.steps.claim(job, step, 1);
      await s.steps.claim(job, { ...step, placement: 2 }, 1);
      await s.steps.record(job, { ...ended('succeeded'), kind: 'setup', index: 1, seq: 1 }, 1);
      expect(await s.steps.running(job)).toEqual([
        { kind: 'setup', index: 0, seq: 0, placement: 1 },
        { kind: 'setup', index: 0, seq: 0, placement: 2 },
      ]);
    });

    it("a chunk is stored once; progress counts the step's chunks and the job's other steps count apart", async () => {
      const job = await s.newJob();
      await s.steps.claim(job, step, 1);
      await s.logs.append(job, chunk(0, ['one', 'two']), 1);
      await s.logs.append(job, chunk(0, ['one', 'two']), 1);
      await s.logs.append(job, chunk(1, ['three']), 1);
      expect(await s.logs.progress(job, 'setup', 0)).toEqual({ nextChunk: 2, lines: 3, bytes: 14, truncated: false });
      expect(await s.logs.otherStepsBytes(job, { kind: 'setup', index: 0 })).toBe(0);
      expect(await s.logs.otherStepsBytes(job, { kind: 'setup', index: 1 })).toBe(14);
    });

    it("a job's placeholders are made once, each step asking at once gets the same, and another job has its own", async () => {
      const [job, other] = [await s.newJob(), await s.newJob()];
      let n = 0;
      const make = () => `draftsman-credential-${job}-${n++}`;
      const [a, b] = await Promise.all([s.steps.placeholders(job, ['KEY', 'NPM'], make), s.steps.placeholders(job, ['KEY'], make)]);
      expect(Object.keys(a).sort()).toEqual(['KEY', 'NPM']);
      expect(b.KEY).toBe(a.KEY);
      expect(await s.steps.placeholders(job, ['NPM', 'KEY'], make)).toEqual(a);
      expect((await s.steps.placeholders(other, ['KEY'], make)).KEY).not.toBe(a.KEY);
      expect(await s.steps.placeholders(job, [], make)).toEqual({});
    });
  });
}
