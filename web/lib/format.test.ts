import { filterFromSearch, filterSearch, humanDuration, isFinal, runTime, stepOutcome, stepPhase, type StepView } from './format';

describe('humanDuration', () => {
  it.each([
    [0, '0 ms'],
    [850, '850 ms'],
    [1_500, '1.5 s'],
    [12_400, '12 s'],
    [60_000, '1 min'],
    [184_000, '3 min 4 s'],
    [3_600_000, '1 h'],
    [7_500_000, '2 h 5 min'],
    [3 * 86_400_000, '3 d'],
  ])('%d ms is %s', (ms, words) => {
    expect(humanDuration(ms)).toBe(words);
  });
});

describe('filters and the address', () => {
  it.each([
    ['', {}, ''],
    ['?status=running', { status: 'running' }, '?status=running'],
    ['?q=%20abc%20&repo=', { q: 'abc' }, '?q=abc'],
    ['?label=team%3Dweb&status=failed&other=1', { status: 'failed', label: 'team=web' }, '?status=failed&label=team%3Dweb'],
    ['?cursor=xyz&repo=https%3A%2F%2Fgit.test%2Fr.git', { repo: 'https://git.test/r.git', cursor: 'xyz' }, '?repo=https%3A%2F%2Fgit.test%2Fr.git&cursor=xyz'],
  ])('%s reads as %j and writes back as %s', (search, filter, written) => {
    expect(filterFromSearch(search)).toEqual(filter);
    expect(filterSearch(filterFromSearch(search))).toBe(written);
  });

  it('adds the extra parameters after the filter', () => {
    expect(filterSearch({ status: 'queued' }, { limit: '50' })).toBe('?status=queued&limit=50');
  });
});

const step = (over: Partial<StepView>): StepView => ({ kind: 'setup', index: 0, status: 'succeeded', exitCode: 0, startedAt: null, finishedAt: null, ...over });

describe('steps', () => {
  it.each([
    [step({}), 'exit 0'],
    [step({ status: 'failed', exitCode: 2 }), 'exit 2'],
    [step({ status: 'running', exitCode: null }), 'running'],
    [step({ status: 'failed', exitCode: 137, oomKilled: true }), 'out of memory'],
    [step({ status: 'failed', exitCode: null, reason: 'container_lost' }), 'container lost'],
    [step({ status: 'timed_out', exitCode: null }), 'timed out'],
    [step({ status: 'cancelled', exitCode: null }), 'cancelled'],
  ])('%j ends as %s', (s, outcome) => {
    expect(stepOutcome(s)).toBe(outcome);
  });

  it.each([
    [{ kind: 'setup', index: 0 }, 'setup 1'],
    [{ kind: 'loop', index: 3 }, 'loop · iteration 3'],
    [{ kind: 'until', index: 1 }, 'until · iteration 1'],
    [{ kind: 'publish', index: 1 }, 'publish 2'],
  ] as const)('%j is in %s', (s, phase) => {
    expect(stepPhase(s)).toBe(phase);
  });

  it('runs from its start until its end, or until now while it runs', () => {
    expect(runTime({ startedAt: null, finishedAt: null }, 5)).toBeNull();
    expect(runTime({ startedAt: '2026-01-01T00:00:00Z', finishedAt: '2026-01-01T00:00:02.5Z' }, 0)).toBe(2500);
    expect(runTime({ startedAt: '2026-01-01T00:00:00Z', finishedAt: null }, Date.parse('2026-01-01T00:01:00Z'))).toBe(60_000);
  });
});

describe('isFinal', () => {
  it.each([
    ['queued', false],
    ['running', false],
    ['awaiting_approval', false],
    ['succeeded', true],
    ['failed', true],
    ['cancelled', true],
    ['timed_out', true],
    ['rejected', true],
  ])('%s: %s', (status, final) => {
    expect(isFinal(status)).toBe(final);
  });
});
