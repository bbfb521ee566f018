import { InvalidJobSpecError } from './errors';
import {
  type Budget,
  type BudgetCeilings,
  budgetLimits,
  budgetMessage,
  budgetUnderCeiling,
  overBudget,
  parseBudgetCeilings,
  parseBudgetLimits,
} from './budget';

describe('overBudget', () => {
  const used = { cpuSeconds: 3.2, wallSeconds: 10, egressBytes: 500 };
  it.each([
    ['no limit', {}, null],
    ['within every limit', { cpuSeconds: 4, wallSeconds: 60, egressBytes: 1000 }, null],
    ['at a limit exactly', { cpuSeconds: 3.2 }, null],
    ['past cpuSeconds', { cpuSeconds: 3 }, { budget: 'cpuSeconds', limit: 3, used: 3.2 }],
    ['past egressBytes only', { cpuSeconds: 4, egressBytes: 100 }, { budget: 'egressBytes', limit: 100, used: 500 }],
    ['past two: the first in order', { wallSeconds: 5, egressBytes: 100 }, { budget: 'wallSeconds', limit: 5, used: 10 }],
  ])('%s', (_, limits, expected) => {
    expect(overBudget(limits, used)).toEqual(expected);
  });
});

describe('parseBudgetCeilings', () => {
  it.each<[string, string | undefined, BudgetCeilings]>([
    ['unset', undefined, {}],
    ['one principal', 'ci=cpuSeconds:600', { ci: { cpuSeconds: 600 } }],
    [
      'several, and everyone else',
      'ci=cpuSeconds:600 egressBytes:1e9, *=wallSeconds:3600',
      { ci: { cpuSeconds: 600, egressBytes: 1e9 }, '*': { wallSeconds: 3600 } },
    ],
    ['an SDK principal', 'sdk:bot=cpuSeconds:60', { 'sdk:bot': { cpuSeconds: 60 } }],
  ])('%s', (_, text, expected) => {
    expect(parseBudgetCeilings(text)).toEqual(expected);
  });

  it.each([
    ['no principal', '=cpuSeconds:1', 'entry 1 must be principal=name:value'],
    ['an unknown budget', 'ci=memory:1', 'ci=memory:1'.split('=')[1]],
    ['zero', 'ci=cpuSeconds:0', 'with a number above 0'],
    ['no limit', 'ci=', 'sets no limit'],
  ])('refuses %s', (_, text, message) => {
    expect(() => parseBudgetCeilings(text)).toThrow(message);
  });
});

describe('budgetUnderCeiling', () => {
  const ceilings: BudgetCeilings = { ci: { cpuSeconds: 100 }, '*': { wallSeconds: 600 } };
  it.each<[string, Budget | undefined, string, Budget | undefined]>([
    ['no ceiling for anyone: as it is', { onExceed: 'fail', cpuSeconds: 5 }, 'x', { onExceed: 'fail', cpuSeconds: 5 }],
    ['within the ceiling', { onExceed: 'approval', cpuSeconds: 50 }, 'ci', { onExceed: 'approval', cpuSeconds: 50 }],
    ["none asked: the ceiling's", undefined, 'ci', { onExceed: 'fail', cpuSeconds: 100 }],
    ['another limit asked: both', { onExceed: 'fail', egressBytes: 10 }, 'ci', { onExceed: 'fail', cpuSeconds: 100, egressBytes: 10 }],
    ['everyone else', undefined, 'someone', { onExceed: 'fail', wallSeconds: 600 }],
  ])('%s', (_, budget, principal, expected) => {
    expect(budgetUnderCeiling(budget, principal === 'x' ? {} : ceilings, principal)).toEqual(expected);
  });

  it('a limit over the ceiling is refused, naming the field', () => {
    const err = (() => {
      try {
        budgetUnderCeiling({ onExceed: 'fail', cpuSeconds: 101 }, ceilings, 'ci');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InvalidJobSpecError);
    expect(err).toMatchObject({ field: 'budget.cpuSeconds', message: 'budget.cpuSeconds: 101 is over the ceiling of 100 for ci' });
  });
});

it('budgetLimits and budgetMessage', () => {
  expect(budgetLimits({ onExceed: 'fail', cpuSeconds: 3, egressBytes: 9 })).toEqual({ cpuSeconds: 3, egressBytes: 9 });
  expect(budgetMessage({ budget: 'cpuSeconds', limit: 3, used: 3.0683 }, 'loop-2')).toBe(
    "budget_exceeded: cpuSeconds 3.07 is past the job's budget of 3 (step loop-2 was stopped)",
  );
});

describe('parseBudgetLimits', () => {
  it.each([
    ['cpuSeconds:60', { cpuSeconds: 60 }],
    ['  cpuSeconds:1.5   egressBytes:1e9 ', { cpuSeconds: 1.5, egressBytes: 1e9 }],
    ['', {}],
  ])('%j', (text, expected) => {
    expect(parseBudgetLimits(text)).toEqual(expected);
  });
  it.each(['cpuSeconds=60', 'memory:1', 'cpuSeconds:-1', 'wallSeconds:x'])('refuses %j, naming it', (text) => {
    expect(() => parseBudgetLimits(text)).toThrow(text);
  });
});
