import type { BudgetLimits, OnExceed } from '../../common/budget';
import type { StepKind } from '../../common/job';
import type { StepRequest } from '../../runner/runner';

/**
 * What the workflow asks of one step: the backend's request for a user step (its identity
 * in the job, its container, its budget), with its place in the job and its secrets as
 * references, resolved in the activity.
 */
export interface StepInput extends Omit<StepRequest, 'kind' | 'files'> {
  kind: StepKind;
  /** Position of the step in the job, for ordering the audit trail. */
  seq: number;
  /** Env name -> secret reference: values are resolved here, in the activity, and masked in the output. */
  secretEnv?: Record<string, string>;
  /** Every secret reference of the job, whose values are masked in this step's output. */
  maskRefs?: string[];
  /**
   * The credentials of this step's phase: the variables that hold their placeholders (the
   * values stay in the egress proxy), and for git's, the user name and hosts its helper answers for.
   */
  credentials?: StepCredential[];
  /**
   * The job's budget as it stands: past a limit the step stops, or (onExceed approval,
   * not yet `raised` by a person) is frozen for a person to decide.
   */
  budget?: { limits: BudgetLimits; onExceed: OnExceed; raised?: boolean };
  /** The step was frozen at the job's budget and a person let it go on: it is thawed and followed again, not started. */
  resumed?: boolean;
}

export interface StepCredential {
  env: string;
  git?: { username: string; hosts: string[] };
}
