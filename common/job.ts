/**
 * The job contract shared by the API, the workflow and the client SDK: the
 * types of a job spec after validation and of the job view. Pure types and
 * constants only, so the workflow bundle can import it.
 */
import type { Budget, BudgetLimits, BudgetName } from './budget';

export const JOB_STATUSES = ['queued', 'running', 'awaiting_approval', 'succeeded', 'failed', 'cancelled', 'timed_out', 'rejected'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const FINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled', 'timed_out', 'rejected'];

/**
 * Where a job keeps its workspace, and a fork starts: after setup, or after the loop's
 * step of iteration k (`loop-3`).
 */
export type KeepPoint = 'setup' | `loop-${number}`;

/** The iteration a keep point names, or null for setup. */
export const loopIteration = (point: string): number | null => (point.startsWith('loop-') ? Number(point.slice('loop-'.length)) : null);

export const STEP_KINDS = ['clone', 'setup', 'loop', 'until', 'validate', 'publish'] as const;
export type StepKind = (typeof STEP_KINDS)[number];

export type StepStatus = 'running' | 'succeeded' | 'failed' | 'cancelled' | 'timed_out';

/**
 * Why a step ended without its own exit: its container vanished (`container_lost`), its
 * workspace outgrew the cap (`workspace_full`), its host was lost and the job moved on
 * to another, where the step runs again (`host_lost`), or the job used up its budget
 * (`budget_exceeded`).
 */
export type StepEndReason = 'container_lost' | 'workspace_full' | 'host_lost' | 'budget_exceeded';

/** A job spec with every default applied (what the workflow runs). */
export interface ResolvedJobSpec {
  repo: string;
  commit: string;
  image: string;
  setup: string[];
  /** `startAt`: the first iteration, in a job resumed after a loop step (absent: 1). */
  loop: { command: string; until?: string; maxIterations: number; startAt?: number } | null;
  validate: string[];
  env: Record<string, string>;
  /** Env name -> secret reference; resolved by the worker, never carried as values. */
  secrets: Record<string, string>;
  gitTokenSecret: string | null;
  timeouts: { stepSeconds: number; jobSeconds: number };
  /**
   * What the job's steps may reach through the egress proxy: the spec's entries, or the
   * operator's default list when it has none, fixed when the job is accepted. Absent in
   * jobs accepted before egress existed (the proxy then applies the operator's defaults).
   */
  egress?: { allow: string[] };
  /** Labels to find the job by; absent when it has none (and in jobs accepted before labels existed). */
  labels?: Record<string, string>;
  /**
   * Steps that run after validation passed: the only ones given `publishSecrets` (a token
   * that pushes a branch, say). Absent in jobs without them.
   */
  publish?: string[];
  publishSecrets?: Record<string, string>;
  /** A person's decision before a phase runs; absent when the job has no gate. */
  approval?: ApprovalGate;
  /** At most `limit` jobs of this key hold a host at once (`repo`, `principal`, or the spec's own name); absent when unlimited. */
  concurrency?: { key: string; limit: number };
  /** Dependency caches its setup steps mount (and, those with a path, every later step); absent when it has none. */
  caches?: CacheSpec[];
  /** Keep the workspace after setup, for later jobs with the same setup (a hit skips clone and setup). */
  snapshot?: { after: KeepPoint; when?: 'failed' };
  /** Start from the workspace another job kept (after its setup or a loop step), instead of a clone. */
  from?: { job: string; after: KeepPoint };
  /** Secrets the egress proxy adds to requests to their hosts (the steps hold placeholders); absent when it has none. */
  credentials?: Credential[];
  /** Limits on what the job uses, the principal's ceiling applied; absent when it has none. */
  budget?: Budget;
}

/** The phases a credential can be limited to (`until` belongs to the loop). */
export const CREDENTIAL_PHASES = ['setup', 'loop', 'validate', 'publish'] as const;
export type CredentialPhase = (typeof CREDENTIAL_PHASES)[number];

/**
 * A secret bound to hosts: the steps of its phases find a placeholder in `env`, and the
 * egress proxy puts `format` with the secret's value into `header` of their requests to
 * `hosts` (over TLS it terminates with the job's own CA). The value never enters a step.
 */
export interface Credential {
  /** The secret's reference in the operator's store. */
  secret: string;
  /** `host` or `host:port` (443 when absent), each also allowed by the job's egress list. */
  hosts: string[];
  /** The request header that carries it, lower case. */
  header: string;
  /** The header's value, `{value}` standing for the secret (`Bearer {value}`). */
  format: string;
  /** The step variable that holds the placeholder. */
  env: string;
  /** The phases whose steps hold the placeholder and whose requests get the value. */
  phases: CredentialPhase[];
  /** git over https: a credential helper gives git `username` and the placeholder for the hosts (Basic authorization). */
  git?: { username: string };
}

/** The phase a step kind belongs to, for a credential's `phases`; clone is Draftsman's own step. */
export function credentialPhase(kind: StepKind): CredentialPhase | null {
  return kind === 'clone' ? null : kind === 'until' ? 'loop' : kind;
}

/** Every secret reference of a job: their values are masked in its output and keep files out of its patch. */
export function jobSecretRefs(spec: Partial<Pick<ResolvedJobSpec, 'secrets' | 'gitTokenSecret' | 'publishSecrets' | 'credentials'>>): string[] {
  return [
    ...Object.values(spec.secrets ?? {}),
    ...(spec.gitTokenSecret ? [spec.gitTokenSecret] : []),
    ...Object.values(spec.publishSecrets ?? {}),
    ...(spec.credentials ?? []).map((c) => c.secret),
  ];
}

/** A dependency cache: its key template (`npm-{{ hashFiles('package-lock.json') }}`) and the prefixes restored when the key has no entry. */
export interface CacheSpec {
  name: string;
  key: string;
  restoreKeys: string[];
  /** Where in the workspace it lives (every step after the clone sees the job's copy there); absent: /cache/<name>, setup only. */
  path?: string;
}

export const GATED_PHASES = ['loop', 'validate', 'publish'] as const;

export interface ApprovalGate {
  before: (typeof GATED_PHASES)[number];
  timeoutSeconds: number;
  onTimeout: 'reject' | 'approve';
}

export type ApprovalDecision = 'approve' | 'reject';

/** A decision on a job's gate: who made it (a principal, or `timeout`), when, and why. */
export interface Approval {
  decision: ApprovalDecision;
  by: string;
  at: string;
  comment?: string;
  /** At a budget's gate: the limits the approver raised it to. */
  budget?: BudgetLimits;
}

/**
 * A step: how it runs or how it ended. The one shape from the activity that runs it
 * to the workflow, the store and the API; times are ISO strings, and a step that
 * never exited has `exitCode: null`.
 */
export interface StepView {
  kind: StepKind;
  /** Position among steps of its kind: 0-based for setup and validate, the iteration (1-based) for loop and until. */
  index: number;
  status: StepStatus;
  exitCode: number | null;
  startedAt: string | null;
  finishedAt: string | null;
  durationMs?: number | null;
  /** The step was killed for exceeding its memory limit. */
  oomKilled?: boolean;
  /** Bytes of output stored, and whether the per-step cap cut it. */
  logBytes?: number;
  logTruncated?: boolean;
  reason?: StepEndReason;
  /** CPU time its processes used, user and system (the kernel's accounting of its container); absent when not measured. */
  cpuSeconds?: number;
  /** The most memory its processes held at once; absent when not measured. */
  peakMemoryBytes?: number;
  /** The limit of the job's budget it was stopped at (reason budget_exceeded): in the outcome and its event, not in the stored view. */
  overBudget?: { budget: BudgetName; limit: number; used: number };
  /** Frozen at the job's budget (onExceed approval), its container kept, for a person to decide: in the outcome only. */
  paused?: boolean;
}

/** A step's end as the activity reports it and the store records it. */
export type StepOutcome = StepView & { status: Exclude<StepStatus, 'running'> };

export interface JobView {
  id: string;
  status: JobStatus;
  repo: string | null;
  commit: string | null;
  /** Who started it: an API token's name, or sdk:IDENTITY (absent for jobs of earlier versions). */
  principal?: string;
  /** The spec's labels, when it has any. */
  labels?: Record<string, string>;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  steps: StepView[];
  loop: { iterations: number; converged: boolean } | null;
  error?: string;
  /** Size of the stored patch (the workspace's diff after the loop), if one was taken. */
  patch?: { bytes: number; truncated: boolean };
  /** Why a queued job has not started yet (for example, too little free disk). */
  waiting?: string;
  /** A queued job's place in the line for a host (1: next), counted when asked. */
  queuePosition?: number;
  /**
   * How many hosts the job has been placed on, from the second: a job whose host was
   * lost runs again from its clone on another (its `steps` are those of this placement).
   */
  placement?: number;
  /** The group (best-of-N) this job is an attempt of (`GET /v1/groups/{id}`). */
  group?: string;
  /** What its steps did through the egress proxy: connections made and refused, bytes each way. Absent if none. */
  egress?: { connections: number; denied: number; bytesIn: number; bytesOut: number };
  /** What the job cost: the single-job view only. */
  ledger?: Ledger;
  /** Requests the egress proxy sent with a credential's value, per variable and host (never the value). Absent if none. */
  credentialUse?: { env: string; secret: string; host: string; requests: number; firstAt: string; lastAt: string }[];
  /**
   * Live view of a long loop only: loop and until steps of earlier workflow runs left
   * out of `steps` (the audit trail in PostgreSQL keeps every step).
   */
  stepsOmitted?: number;
  /** An activity of the running job being retried, when there is one (the single-job view only). */
  retrying?: Retrying;
}

/**
 * What a job used, measured by Draftsman and the kernel, never reported by its steps:
 * the CPU time and memory peaks of its step containers (the engine's cgroup
 * accounting), the bytes its steps moved through the egress proxy, its own clock.
 */
export interface Ledger {
  /** From its first step's start to its end (or now). */
  wallSeconds: number | null;
  /** CPU time, user and system, of every step container it ran; null when none was measured. */
  cpuSeconds: number | null;
  /** The largest memory peak of one of its steps; null when none was measured. */
  peakMemoryBytes: number | null;
  /** Step containers it ran (every placement, every loop run). */
  steps: number;
  /** Bytes through the egress proxy, from and to the outside, and connections made. */
  egressBytesIn: number;
  egressBytesOut: number;
  egressConnections: number;
  /** The largest size of its workspace measured while a step ran; null when none was. */
  workspaceBytes: number | null;
}

/** An activity of a job that failed and is being tried again: which, its attempt, why the last one failed, and when the next starts. */
export interface Retrying {
  activity: string;
  /** The attempt running or waiting to run (2: the first retry). */
  attempt: number;
  lastError: string | null;
  /** When the next attempt starts; null while one runs. */
  nextAttemptAt: string | null;
}

/** What acceptJob hands the workflow: the resolved spec and the worker's limits for it. */
export interface AcceptedJob {
  spec: ResolvedJobSpec;
  /** Loop iterations per workflow run before it continues as new. */
  iterationsPerRun: number;
  /** Whose caches and kept workspaces the job reads and writes (common/warm.ts warmScope); absent in jobs accepted before them. */
  warmScope?: string;
}

/**
 * Where a job runs: the host whose engine holds its workspace, the task queue that takes
 * its engine activities there, and how long a step waits for that host before it counts
 * as lost. `placement` counts the hosts the job has been placed on (1 for the first).
 */
export interface Placement {
  host: string;
  taskQueue: string;
  placement: number;
  lostAfterSeconds: number;
  /**
   * How many times a job whose host was lost is placed again on another (the operator's
   * DRAFTSMAN_HOST_LOST_MOVES when it was placed); absent in placements from before moves: never.
   */
  moves?: number;
}

/** Job ids become container and volume names, so they keep to Docker's name alphabet. */
export const JOB_ID_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,99}$/;

/** A label as the DraftsmanLabels search attribute and the list's `label` filter write it. */
export const labelPair = (key: string, value: string) => `${key}=${value}`;
