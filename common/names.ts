/**
 * Names that more than one process must agree on: the API, the worker, the CLI
 * and any program using the client SDK. Workflow code imports this file too, so it
 * must stay free of Node built-ins.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const DEFAULT_TASK_QUEUE = 'draftsman';
export const JOB_WORKFLOW_TYPE = 'jobWorkflow';
export const JANITOR_WORKFLOW_TYPE = 'janitorWorkflow';
/** A group of attempts forked from one kept workspace (best-of-N); its workflow id is the group's id. */
export const GROUP_WORKFLOW_TYPE = 'groupWorkflow';
export const JANITOR_SCHEDULE_ID = 'draftsman-janitor';

export const CANCEL_SIGNAL = 'cancel';
/** Sent to a job that waits for a host when room may have freed (a job ended). */
export const WAKE_SIGNAL = 'wake';
/**
 * The workflow memo field naming who started a job (the API sets it to the token's
 * name). A job started with the SDK without it is `sdk:<the starting client's identity>`.
 */
export const PRINCIPAL_MEMO = 'principal';
/** The workflow memo field with the API request that started the job, for its `created` event. */
export const REQUEST_ID_MEMO = 'requestId';
export const STATUS_QUERY = 'status';

/** Labels put on every container and volume a job creates. */
export const LABEL_MANAGED = 'org.draftsman.managed';
export const LABEL_JOB = 'org.draftsman.job';
/** The deployment that made it: two deployments on one engine never touch each other's resources. */
export const LABEL_DEPLOYMENT = 'org.draftsman.deployment';
/** `holder` on a job's network holder (the container whose loopback its steps share); absent on steps. */
export const LABEL_ROLE = 'org.draftsman.role';
export const LABEL_STEP_KIND = 'org.draftsman.step.kind';
export const LABEL_STEP_INDEX = 'org.draftsman.step.index';
/** The job's placement a step ran in (common/job.ts Placement): a step's identity is (job, placement, kind, index). */
export const LABEL_PLACEMENT = 'org.draftsman.placement';
/** On a ready network holder (runner/docker/ready-holders.ts): its slot. It has no job label, before or after a job takes it. */
export const LABEL_READY = 'org.draftsman.ready';
/** The host (DRAFTSMAN_HOST_ID, or the id derived from the engine) whose worker made the resource. */
export const LABEL_HOST = 'org.draftsman.host';
/** Unix seconds after which the step has outlived its budget (read by sweepers). */
export const LABEL_DEADLINE = 'org.draftsman.deadline';
/** A kept volume's id (a saved cache, a workspace kept after setup or a loop step), on volumes of role `kept`. */
export const LABEL_KEPT = 'org.draftsman.kept';
/** On a job's volume layered on a kept one (copy on write): the kept volume's id, which is not removed while it is there. */
export const LABEL_LOWER = 'org.draftsman.kept.lower';

/** Stable `type` of the non-retryable ApplicationFailures the job raises. */
export const FailureType = {
  InvalidJobSpec: 'InvalidJobSpecError',
  StepTimeout: 'StepTimeoutError',
  JobTimeout: 'JobTimeoutError',
  JobFailed: 'JobFailedError',
  /** The job's approval gate decided reject (a person, or the timeout). */
  JobRejected: 'JobRejectedError',
  /** An approval decision the job cannot take: it is not waiting, or another decision was made. */
  NotAwaitingApproval: 'NotAwaitingApprovalError',
  ApprovalConflict: 'ApprovalConflictError',
} as const;

/** The update that decides a job's approval gate (the API's POST /v1/jobs/:id/approval sends it). */
export const APPROVAL_UPDATE = 'approval';

/** The error of a step past its time limit, whether the activity or the workflow reports it. */
export const stepTimeoutMessage = (step: string, seconds: number) => `step ${step} exceeded its ${seconds} s time limit`;

/**
 * Custom search attributes the job workflow keeps current, so that jobs can be
 * filtered by status, repo or commit in the Temporal Web UI. Registered by the
 * worker at start-up (and by the embedded dev server's flags).
 */
export const SEARCH_ATTRIBUTES = {
  status: defineSearchAttributeKey('DraftsmanStatus', SearchAttributeType.KEYWORD),
  repo: defineSearchAttributeKey('DraftsmanRepo', SearchAttributeType.KEYWORD),
  commit: defineSearchAttributeKey('DraftsmanCommit', SearchAttributeType.KEYWORD),
  /** The spec's labels as `k=v`. */
  labels: defineSearchAttributeKey('DraftsmanLabels', SearchAttributeType.KEYWORD_LIST),
} as const;
