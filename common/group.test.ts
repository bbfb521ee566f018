import type { AttemptEnd, BestRule } from './group';
import { attemptVariants, forkSpec, groupAttempt, lastKeptPoint, pickWinner, resumeSpec, validationOutcome } from './group';
import type { JobView, KeepPoint, StepView } from './job';
import type { JobSpec } from './spec-schema';

const parent: JobSpec = {
  repo: 'https://example.com/r.git',
  commit: 'a'.repeat(40),
  setup: ['npm ci'],
  caches: [{ name: 'npm', key: 'npm-1' }],
  snapshot: { after: 'setup' },
  loop: { command: 'agent', until: 'check', maxIterations: 5 },
  validate: ['npm test'],
  env: { A: '1', B: '2' },
  labels: { team: 'x' },
};

const ended = (id: string, status: AttemptEnd['status'], patchBytes: number | null = null): AttemptEnd => ({ id, status, patchBytes });

describe('forkSpec', () => {
  it("starts from the parent's kept workspace without what came before it", () => {
    const spec = forkSpec(parent, 'job-p', 'setup');
    expect(spec).toEqual({
      repo: parent.repo,
      commit: parent.commit,
      loop: parent.loop,
      validate: ['npm test'],
      env: { A: '1', B: '2' },
      labels: { team: 'x' },
      from: { job: 'job-p', after: 'setup' },
    });
  });

  it("merges a variant's loop, env and labels over the parent's, and replaces its validation", () => {
    const spec = forkSpec(parent, 'job-p', 'loop-2', { loop: { command: 'agent --model b' }, env: { B: '3' }, validate: ['make check'], labels: { try: 'b' } });
    expect(spec.loop).toEqual({ command: 'agent --model b', until: 'check', maxIterations: 5 });
    expect(spec.env).toEqual({ A: '1', B: '3' });
    expect(spec.validate).toEqual(['make check']);
    expect(spec.labels).toEqual({ team: 'x', try: 'b' });
    expect(spec.from).toEqual({ job: 'job-p', after: 'loop-2' });
    // The parent's spec is left as it was.
    expect(parent.env).toEqual({ A: '1', B: '2' });
  });
});

describe('attemptVariants', () => {
  it.each([
    [3, 0, [null, null, null]],
    [3, 2, [0, 1, null]],
    [2, 2, [0, 1]],
  ])('%i attempts with %i variants', (count, n, expected) => {
    expect(
      attemptVariants(
        count,
        Array.from({ length: n }, () => ({})),
      ),
    ).toEqual(expected);
  });
});

describe('pickWinner', () => {
  it.each<[string, BestRule, AttemptEnd[], string | null]>([
    ['none picks nobody', 'none', [ended('a', 'succeeded', 5)], null],
    [
      'first-validated: the first to succeed, in the order they ended',
      'first-validated',
      [ended('a', 'failed'), ended('b', 'succeeded', 9), ended('c', 'succeeded', 1)],
      'b',
    ],
    [
      'smallest-patch: the smallest among those that succeeded',
      'smallest-patch',
      [ended('a', 'succeeded', 9), ended('b', 'failed'), ended('c', 'succeeded', 3)],
      'c',
    ],
    ['smallest-patch: the earlier end on a tie', 'smallest-patch', [ended('a', 'succeeded', 3), ended('b', 'succeeded', 3)], 'a'],
    ['no success: no winner', 'first-validated', [ended('a', 'failed'), ended('b', 'cancelled')], null],
    ['smallest-patch ignores a smaller failed one', 'smallest-patch', [ended('a', 'failed', 1), ended('b', 'succeeded', 7)], 'b'],
  ])('%s', (_, rule, attempts, expected) => {
    expect(pickWinner(rule, attempts)).toBe(expected);
  });
});

const step = (kind: StepView['kind'], status: StepView['status']): StepView => ({ kind, index: 0, status, exitCode: null, startedAt: null, finishedAt: null });

describe('validationOutcome', () => {
  it.each<[string, StepView[], boolean | null]>([
    ['no validation step', [step('loop', 'succeeded')], null],
    ['all passed', [step('validate', 'succeeded'), step('validate', 'succeeded')], true],
    ['one failed', [step('validate', 'succeeded'), step('validate', 'failed')], false],
    ['one still running', [step('validate', 'succeeded'), step('validate', 'running')], null],
    ['one cancelled (the attempt lost to another)', [step('validate', 'cancelled')], null],
    ['one timed out', [step('validate', 'succeeded'), step('validate', 'timed_out')], false],
  ])('%s', (_, steps, expected) => {
    expect(validationOutcome(steps)).toBe(expected);
  });
});

describe('groupAttempt', () => {
  it('an attempt no worker recorded yet is queued', () => {
    expect(groupAttempt('g.1', null, null)).toEqual({
      id: 'g.1',
      variant: null,
      status: 'queued',
      validated: null,
      patch: null,
      durationMs: null,
      cpuSeconds: null,
      egressBytes: 0,
    });
  });
  it('reads status, validation, patch and duration from the job', () => {
    const job: JobView = {
      id: 'g.2',
      status: 'failed',
      repo: 'r',
      commit: 'c',
      createdAt: '2026-01-01T00:00:00.000Z',
      startedAt: '2026-01-01T00:00:01.000Z',
      finishedAt: '2026-01-01T00:00:03.500Z',
      steps: [step('validate', 'failed')],
      loop: null,
      patch: { bytes: 12, truncated: false },
      error: 'validate-0 failed',
      ledger: {
        wallSeconds: 2.5,
        cpuSeconds: 1.25,
        peakMemoryBytes: 1,
        steps: 2,
        egressBytesIn: 10,
        egressBytesOut: 5,
        egressConnections: 1,
        workspaceBytes: null,
      },
    };
    expect(groupAttempt('g.2', 1, job)).toEqual({
      id: 'g.2',
      variant: 1,
      status: 'failed',
      validated: false,
      patch: { bytes: 12, truncated: false },
      durationMs: 2500,
      cpuSeconds: 1.25,
      egressBytes: 15,
      error: 'validate-0 failed',
    });
  });
});

describe('lastKeptPoint', () => {
  it.each<[KeepPoint[], KeepPoint | null]>([
    [[], null],
    [['setup'], 'setup'],
    [['setup', 'loop-2', 'loop-10', 'loop-3'], 'loop-10'],
    [['loop-1', 'setup'], 'loop-1'],
  ])('%j -> %s', (points, expected) => {
    expect(lastKeptPoint(points)).toBe(expected);
  });
});

describe('resumeSpec', () => {
  it('from setup: no setup, the loop from its first iteration, the changes applied', () => {
    const spec = resumeSpec(parent, 'job-f', 'setup', { iterations: 5, converged: false }, { validate: ['npm test -- --fixed'] });
    expect(spec).not.toHaveProperty('setup');
    expect(spec).not.toHaveProperty('caches');
    expect(spec).not.toHaveProperty('snapshot');
    expect(spec.from).toEqual({ job: 'job-f', after: 'setup' });
    expect(spec.loop).toEqual({ command: 'agent', until: 'check', maxIterations: 5 });
    expect(spec.validate).toEqual(['npm test -- --fixed']);
  });

  it.each<[string, KeepPoint, { iterations: number; converged: boolean }, number]>([
    ['after loop step 2 of a loop that went on: at 3', 'loop-2', { iterations: 5, converged: false }, 3],
    ['after the step it converged at: no loop step runs', 'loop-2', { iterations: 2, converged: true }, 6],
    ['after the last iteration: no loop step runs', 'loop-5', { iterations: 5, converged: false }, 6],
  ])('%s', (_, point, state, startAt) => {
    expect(resumeSpec(parent, 'job-f', point, state).loop).toMatchObject({ startAt });
  });

  it('a loop changed to fewer iterations than the point still starts past its end', () => {
    expect(resumeSpec(parent, 'job-f', 'loop-4', { iterations: 5, converged: false }, { loop: { maxIterations: 2 } }).loop).toMatchObject({
      maxIterations: 2,
      startAt: 3,
    });
  });
});
