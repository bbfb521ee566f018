import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { JobView, StepView } from '../common/job';
import { FailureType } from '../common/names';
import {
  batchStepView,
  batchStop,
  carriedView,
  clip,
  type Ending,
  failedStepMessage,
  jobEnd,
  jobError,
  oneLine,
  type Recorded,
  statusOf,
  validationFailure,
} from './job-outcome';

const rec = (over: Partial<Recorded> = {}): Recorded => ({
  kind: 'setup',
  index: 0,
  exitCode: 0,
  startedAt: '2026-01-01T00:00:00.000Z',
  finishedAt: '2026-01-01T00:00:01.500Z',
  oomKilled: false,
  status: 'succeeded',
  ...over,
});
const isCancellation = (err: unknown) => err instanceof CancelledFailure;
const cancelled: Ending = { status: 'cancelled', reason: 'cancelled by request' };

describe('statusOf and batchStepView', () => {
  it.each<[string, Recorded, string, number | null]>([
    ['a success', rec(), 'succeeded', 0],
    ['a failure', rec({ status: 'failed', exitCode: 3 }), 'failed', 3],
    ['an old result without status, exit 0', rec({ status: undefined, exitCode: 0 }), 'succeeded', 0],
    ['an old result without status, exit -1 (none)', rec({ status: undefined, exitCode: -1 }), 'failed', null],
    ['a cancelled step keeps no exit code', rec({ status: 'cancelled', exitCode: 143 }), 'cancelled', null],
  ])('%s', (_name, r, status, exitCode) => {
    expect(statusOf(r)).toBe(status);
    expect(batchStepView(r)).toMatchObject({ status, exitCode, durationMs: 1_500 });
  });

  it('carries the reason of a lost container', () => {
    expect(batchStepView(rec({ status: 'failed', exitCode: null, reason: 'container_lost' })).reason).toBe('container_lost');
  });
});

describe('batchStop', () => {
  it.each<[string, 'setup' | 'validate', number, Recorded[], string | null]>([
    ['every step ran', 'setup', 2, [rec(), rec({ index: 1 })], null],
    ['a setup step failed: the caller reports it', 'setup', 3, [rec(), rec({ index: 1, status: 'failed', exitCode: 1 })], null],
    ['a step timed out', 'validate', 2, [rec({ kind: 'validate', status: 'timed_out' })], FailureType.StepTimeout],
    ['a step was cancelled', 'setup', 2, [rec({ status: 'cancelled' })], 'CancelledFailure'],
    ['cut short between two steps', 'validate', 3, [rec({ kind: 'validate' })], 'CancelledFailure'],
  ])('%s', (_name, kind, expected, results, stop) => {
    const err = batchStop(kind, expected, results, 60);
    if (stop === null) expect(err).toBeNull();
    else if (stop === 'CancelledFailure') expect(err).toBeInstanceOf(CancelledFailure);
    else expect((err as ApplicationFailure).type).toBe(stop);
  });
});

describe('messages', () => {
  it.each<[string, Recorded, string]>([
    ['a failed setup step', rec({ status: 'failed', exitCode: 2 }), 'setup-0 failed with exit code 2'],
    ['an OOM kill', rec({ status: 'failed', exitCode: 137, oomKilled: true }), 'setup-0 failed with exit code 137 (OOM-killed: it exceeded its memory limit)'],
    ['a failed clone', rec({ kind: 'clone', status: 'failed', exitCode: 128 }), 'clone failed with exit code 128'],
    [
      'a lost container',
      rec({ status: 'failed', exitCode: null, reason: 'container_lost' }),
      'setup-0 failed: its container was lost while it ran (it is not run again)',
    ],
  ])('%s', (_name, r, message) => {
    expect(failedStepMessage(r)).toBe(message);
  });

  it.each<[string, Recorded[], string | null]>([
    ['every validation passed', [rec({ kind: 'validate' })], null],
    [
      'two failed, one of them lost',
      [
        rec({ kind: 'validate', status: 'failed', exitCode: 1 }),
        rec({ kind: 'validate', index: 1, status: 'failed', exitCode: null, reason: 'container_lost' }),
      ],
      'failed: validate-0 (exit 1), validate-1 (container_lost)',
    ],
  ])('validation: %s', (_name, validated, message) => {
    expect(validationFailure(validated)).toBe(message);
  });

  it.each([
    ['  a\n  b  ', 'a b'],
    ['x'.repeat(100), `${'x'.repeat(77)}...`],
  ])('oneLine(%j)', (command, line) => {
    expect(oneLine(command)).toBe(line);
  });

  it('clip cuts a long summary with an ellipsis', () => {
    expect(clip('abcdefgh', 6)).toBe('abc...');
    expect(clip('abc', 6)).toBe('abc');
  });
});

describe('jobEnd and jobError', () => {
  const timedOutStep = ApplicationFailure.nonRetryable('setup-0 exceeded', FailureType.StepTimeout);
  const interrupted: StepView = { kind: 'setup', index: 1, status: 'cancelled', exitCode: null, startedAt: null, finishedAt: null };
  it.each<[string, unknown, Ending | null, string, string | undefined]>([
    ['ran to its end', null, null, 'succeeded', undefined],
    ['ran to its end although a cancel came at the last moment', null, cancelled, 'succeeded', undefined],
    ['cancelled by request', new CancelledFailure('x'), cancelled, 'cancelled', 'cancelled by request (during setup-1)'],
    [
      'out of time',
      new CancelledFailure('x'),
      { status: 'timed_out', reason: 'job exceeded its 60 s time limit' },
      'timed_out',
      'job exceeded its 60 s time limit (during setup-1)',
    ],
    ['cancelled by Temporal itself', new CancelledFailure('x'), null, 'cancelled', 'workflow cancellation requested (during setup-1)'],
    ['a step out of time', timedOutStep, null, 'timed_out', 'setup-0 exceeded'],
    ['a step failed', new Error('setup-0 failed with exit code 1'), null, 'failed', 'setup-0 failed with exit code 1'],
    [
      'rejected at its approval gate',
      ApplicationFailure.nonRetryable('rejected by alice: not this one', FailureType.JobRejected),
      null,
      'rejected',
      'rejected by alice: not this one',
    ],
    [
      'cancelled while its rejection was recorded',
      ApplicationFailure.nonRetryable('rejected by timeout', FailureType.JobRejected),
      cancelled,
      'cancelled',
      'cancelled by request (during setup-1)',
    ],
  ])('%s', (_name, failure, ending, status, error) => {
    const end = jobEnd(failure, ending, isCancellation);
    expect(end.status).toBe(status);
    expect(jobError(end.status, end.ending, interrupted, failure)).toBe(error);
  });
});

describe('carriedView', () => {
  const step = (kind: StepView['kind'], index: number): StepView => ({ kind, index, status: 'succeeded', exitCode: 0, startedAt: null, finishedAt: null });
  const view = (steps: StepView[], stepsOmitted?: number): JobView => ({
    id: 'j',
    status: 'running',
    repo: null,
    commit: null,
    createdAt: '2026-01-01T00:00:00.000Z',
    startedAt: null,
    finishedAt: null,
    loop: { iterations: 3, converged: false },
    steps,
    ...(stepsOmitted !== undefined ? { stepsOmitted } : {}),
  });
  it.each<[string, StepView[], number, number, number]>([
    ['keeps everything within one run', [step('clone', 0), step('loop', 1), step('until', 1)], 1, 3, 0],
    ['drops the loop steps of earlier runs, never setup', [step('setup', 0), step('loop', 1), step('until', 1), step('loop', 2), step('until', 2)], 1, 3, 2],
  ])('%s', (_name, steps, perRun, kept, omitted) => {
    const carried = carriedView(view(steps, 0), perRun);
    expect(carried.steps).toHaveLength(kept);
    expect(carried.stepsOmitted).toBe(omitted);
    expect(carried.steps[0]).toBe(steps[0]);
  });
});
