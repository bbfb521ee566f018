/**
 * A job's budget: the limits a spec sets on what its steps may use (CPU time of its step
 * containers, its wall time, its bytes through the egress proxy), the operator's ceilings
 * per principal, and the check of what was spent against them. Pure, for the API, the
 * worker and the workflow alike.
 */
import { InvalidJobSpecError } from './errors';

export const BUDGETS = ['cpuSeconds', 'wallSeconds', 'egressBytes'] as const;
export type BudgetName = (typeof BUDGETS)[number];

/** The limits in effect; a name without one is not limited. */
export type BudgetLimits = Partial<Record<BudgetName, number>>;

/** What happens past a limit: the job fails, or waits at an approval gate for a person to raise it once or reject. */
export const ON_EXCEED = ['fail', 'approval'] as const;
export type OnExceed = (typeof ON_EXCEED)[number];

export interface Budget extends BudgetLimits {
  onExceed: OnExceed;
  /** A person raised it at the gate (once: past it again, the job fails). Set by the job, never by a spec. */
  raised?: boolean;
}

/** How long a step frozen at the budget waits for a person when the spec's approval gate sets no time (then: rejected). */
export const BUDGET_GATE_SECONDS = 86_400;

/** A budget's limits alone. */
export const budgetLimits = (b: Budget): BudgetLimits => Object.fromEntries(BUDGETS.filter((n) => b[n] !== undefined).map((n) => [n, b[n]]));

/** What a job has used, as its budget counts it. */
export type Usage = Record<BudgetName, number>;

/** The first limit `used` is past, with both figures; null within every limit. */
export function overBudget(limits: BudgetLimits, used: Usage): { budget: BudgetName; limit: number; used: number } | null {
  for (const budget of BUDGETS) {
    const limit = limits[budget];
    if (limit !== undefined && used[budget] > limit) return { budget, limit, used: used[budget] };
  }
  return null;
}

/** The message of a job stopped at its budget (the job's error; the event says the same as data). */
export const budgetMessage = (o: { budget: BudgetName; limit: number; used: number }, step: string) =>
  `budget_exceeded: ${o.budget} ${round(o.used)} is past the job's budget of ${o.limit} (step ${step} was stopped)`;

const round = (n: number) => Math.round(n * 100) / 100;

/** The operator's ceilings: per principal (`*`: everyone else), the largest limits a spec may set, and those it gets without one. */
export type BudgetCeilings = Record<string, BudgetLimits>;

/** Parses limits written `name:value name:value` (`cpuSeconds:60 egressBytes:1e9`); throws naming the pair. */
export function parseBudgetLimits(text: string): BudgetLimits {
  const limits: BudgetLimits = {};
  for (const pair of text.trim().split(/\s+/).filter(Boolean)) {
    const [name, value] = pair.split(':');
    const n = Number(value);
    if (!(BUDGETS as readonly string[]).includes(name!) || !(n > 0) || !Number.isFinite(n)) {
      throw new Error(`${pair} must be one of ${BUDGETS.join(', ')} with a number above 0`);
    }
    limits[name as BudgetName] = n;
  }
  return limits;
}

/**
 * Parses DRAFTSMAN_BUDGET_CEILINGS: `principal=name:value name:value, ...`, for example
 * `ci=cpuSeconds:600 egressBytes:1000000000, *=cpuSeconds:3600`. Throws naming the entry.
 */
export function parseBudgetCeilings(text: string | undefined): BudgetCeilings {
  const out: BudgetCeilings = {};
  for (const [i, entry] of (text ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)
    .entries()) {
    const eq = entry.indexOf('=');
    const principal = entry.slice(0, eq).trim();
    if (eq <= 0 || !principal) throw new Error(`DRAFTSMAN_BUDGET_CEILINGS: entry ${i + 1} must be principal=name:value ...`);
    let limits: BudgetLimits;
    try {
      limits = parseBudgetLimits(entry.slice(eq + 1));
    } catch (err) {
      throw new Error(`DRAFTSMAN_BUDGET_CEILINGS: entry ${i + 1}: ${(err as Error).message}`, { cause: err });
    }
    if (Object.keys(limits).length === 0) throw new Error(`DRAFTSMAN_BUDGET_CEILINGS: entry ${i + 1} sets no limit`);
    out[principal] = limits;
  }
  return out;
}

/**
 * The budget a principal's job runs with: the spec's, checked against the principal's
 * ceiling (a limit over it is refused, naming the field), with the ceiling's limits for
 * those the spec leaves out. Without a ceiling, the spec's budget as it is.
 */
export function budgetUnderCeiling(budget: Budget | undefined, ceilings: BudgetCeilings, principal: string): Budget | undefined {
  const ceiling = ceilings[principal] ?? ceilings['*'];
  if (!ceiling) return budget;
  const out: Budget = { onExceed: budget?.onExceed ?? 'fail' };
  for (const name of BUDGETS) {
    const cap = ceiling[name];
    const asked = budget?.[name];
    if (asked !== undefined && cap !== undefined && asked > cap) {
      throw new InvalidJobSpecError(`budget.${name}: ${asked} is over the ceiling of ${cap} for ${principal}`, `budget.${name}`);
    }
    const limit = asked ?? cap;
    if (limit !== undefined) out[name] = limit;
  }
  return out;
}
