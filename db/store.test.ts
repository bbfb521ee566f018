import { stepEventKey } from './step-store';

describe('stepEventKey', () => {
  it.each([
    ['a first placement keeps the keys of versions before placements', 'started', 'loop', 2, undefined, 'step-started:loop-2'],
    ['placement 1 said outright', 'finished', 'setup', 0, 1, 'step-finished:setup-0'],
    ['a moved job records its steps again', 'started', 'clone', 0, 2, 'step-started:p2:clone-0'],
    ['and their ends', 'finished', 'validate', 1, 3, 'step-finished:p3:validate-1'],
  ] as const)('%s', (_name, what, kind, index, placement, key) => {
    expect(stepEventKey(what, kind, index, placement)).toBe(key);
  });
});
