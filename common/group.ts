/**
 * Groups (best-of-N) and resume: the attempts a fork call starts from one kept workspace,
 * how a group picks its winner, and the specs of forks and of a resumed job. Pure: the
 * API composes the specs, the group workflow applies the rule.
 */
import { type JobStatus, type JobView, type KeepPoint, loopIteration, type StepView } from './job';
import type { JobSpec } from './spec-schema';

/** How a group picks its winner: the first attempt to succeed (the others are cancelled), the smallest patch among those that succeeded once all ended, or none. */
export const BEST_RULES = ['first-validated', 'smallest-patch', 'none'] as const;
export type BestRule = (typeof BEST_RULES)[number];

export const MAX_FORKS = 32;

/** What one attempt of a group changes in the parent's spec. */
export interface ForkVariant {
  /** Merged over the parent's loop (a loop is required when the parent has none). */
  loop?: { command?: string; until?: string; maxIterations?: number };
  /** Merged over the parent's env. */
  env?: Record<string, string>;
  /** Replaces the parent's validation steps. */
  validate?: string[];
  /** Merged over the parent's labels. */
  labels?: Record<string, string>;
}

export interface ForkRequest {
  after: KeepPoint;
  count: number;
  variants?: ForkVariant[];
}

/** What the group workflow is started with: every attempt's id and spec, fixed at acceptance. */
export interface GroupInput {
  groupId: string;
  parent: string;
  after: KeepPoint;
  best: BestRule;
  principal: string;
  requestId?: string;
  /** The task queue the attempts are started on (the API's). */
  taskQueue: string;
  members: { id: string; variant: number | null; spec: JobSpec }[];
}

/** How one attempt ended, as the group workflow saw it. */
export interface AttemptEnd {
  id: string;
  status: JobStatus;
  patchBytes: number | null;
}

/** An attempt as `GET /v1/groups/:id` shows it. */
export interface GroupAttempt {
  id: string;
  /** Index into the call's `variants`, or null for an attempt of the parent's spec as it was. */
  variant: number | null;
  status: JobStatus;
  /** Whether every validation step passed; null when none ran (yet). */
  validated: boolean | null;
  patch: { bytes: number; truncated: boolean } | null;
  durationMs: number | null;
  /** From its ledger: CPU time of its steps (null when not measured) and bytes through the egress proxy. */
  cpuSeconds: number | null;
  egressBytes: number;
  error?: string;
}

export interface GroupView {
  id: string;
  parent: string;
  /** The point of the parent's kept workspace the attempts started from. */
  after: string;
  best: BestRule;
  principal: string;
  createdAt: string;
  /** When the last attempt ended (null while one runs). */
  endedAt: string | null;
  /** The attempt the rule picked (null while undecided, or when none won). */
  winner: string | null;
  jobs: GroupAttempt[];
}

/** The id of attempt `n` (1-based) of a group. */
export const memberId = (groupId: string, n: number) => `${groupId}.${n}`;

/** The variant each of `count` attempts takes: variants in order, then the parent's spec as it was (null). */
export function attemptVariants(count: number, variants: readonly ForkVariant[] = []): (number | null)[] {
  return Array.from({ length: count }, (_, i) => (i < variants.length ? i : null));
}

/**
 * The spec of one attempt: the parent's, started from its workspace kept at `after`,
 * without what came before that point (setup, caches, the parent's own snapshot or
 * start), with the variant's changes.
 */
export function forkSpec(parent: JobSpec, parentId: string, after: KeepPoint, variant?: ForkVariant): JobSpec {
  const { setup: _setup, caches: _caches, snapshot: _snapshot, from: _from, ...rest } = parent;
  const spec: JobSpec = { ...rest, from: { job: parentId, after } };
  if (!variant) return spec;
  if (variant.loop) spec.loop = { ...parent.loop, ...variant.loop } as JobSpec['loop'];
  if (variant.env) spec.env = { ...parent.env, ...variant.env };
  if (variant.validate) spec.validate = [...variant.validate];
  if (variant.labels) spec.labels = { ...parent.labels, ...variant.labels };
  return spec;
}

/** Whether a job's validation passed: null when no validation step ran, or one was still running or cancelled. */
export function validationOutcome(steps: readonly StepView[]): boolean | null {
  const validate = steps.filter((s) => s.kind === 'validate');
  if (validate.length === 0) return null;
  if (validate.some((s) => s.status === 'running' || s.status === 'cancelled')) return null;
  return validate.every((s) => s.status === 'succeeded');
}

/** An attempt of a group, from its job's view. */
export function groupAttempt(id: string, variant: number | null, job: JobView | null): GroupAttempt {
  if (!job) return { id, variant, status: 'queued', validated: null, patch: null, durationMs: null, cpuSeconds: null, egressBytes: 0 };
  const durationMs = job.startedAt && job.finishedAt ? Date.parse(job.finishedAt) - Date.parse(job.startedAt) : null;
  return {
    id,
    variant,
    status: job.status,
    validated: validationOutcome(job.steps),
    patch: job.patch ?? null,
    durationMs,
    cpuSeconds: job.ledger?.cpuSeconds ?? null,
    egressBytes: (job.ledger?.egressBytesIn ?? 0) + (job.ledger?.egressBytesOut ?? 0),
    ...(job.error ? { error: job.error } : {}),
  };
}

/**
 * The winner under `rule` once every attempt in `ended` has ended: the first to succeed
 * (in the order they ended), the smallest patch among those that succeeded (the earlier
 * end on a tie), or none.
 */
export function pickWinner(rule: BestRule, ended: readonly AttemptEnd[]): string | null {
  const succeeded = ended.filter((e) => e.status === 'succeeded');
  if (rule === 'none' || succeeded.length === 0) return null;
  if (rule === 'first-validated') return succeeded[0]!.id;
  let best = succeeded[0]!;
  for (const e of succeeded) if ((e.patchBytes ?? 0) < (best.patchBytes ?? 0)) best = e;
  return best.id;
}

/** Whether `rule` decides at the first success, cancelling the attempts still running. */
export const decidesEarly = (rule: BestRule) => rule === 'first-validated';

/** The statuses a job may be resumed from. */
export const RESUMABLE: readonly JobStatus[] = ['failed', 'timed_out'];

/** What a resume may change: the phases after the kept point. */
export interface ResumeChanges {
  loop?: { command?: string; until?: string; maxIterations?: number };
  validate?: string[];
  publish?: string[];
}

/**
 * The latest point of `kept` (the job's kept workspaces: `setup`, `loop-<k>`), or null.
 * Every kept point comes before the failure: a workspace is kept only after a step that succeeded.
 */
export function lastKeptPoint(kept: readonly KeepPoint[]): KeepPoint | null {
  let last: KeepPoint | null = null;
  for (const p of kept) if (last === null || (loopIteration(p) ?? 0) > (loopIteration(last) ?? 0)) last = p;
  return last;
}

/**
 * The spec of a job resumed at `point` of `failedId`: the failed job's, started from that
 * workspace, running only what follows it (a point after loop step k goes on at iteration
 * k + 1, or after the loop when it had converged there), with the changes given.
 */
export function resumeSpec(
  failed: JobSpec,
  failedId: string,
  point: KeepPoint,
  loopState: { iterations: number; converged: boolean } | null,
  changes: ResumeChanges = {},
): JobSpec {
  const { setup: _setup, caches: _caches, snapshot: _snapshot, from: _from, ...rest } = failed;
  const spec: JobSpec = { ...rest, from: { job: failedId, after: point } };
  if (changes.validate) spec.validate = [...changes.validate];
  if (changes.publish) spec.publish = [...changes.publish];
  const loop = changes.loop ? ({ ...failed.loop, ...changes.loop } as JobSpec['loop']) : failed.loop;
  const k = loopIteration(point);
  if (loop) {
    const { startAt: _startAt, ...plain } = loop as NonNullable<JobSpec['loop']> & { startAt?: number };
    // Kept after loop step k: the loop goes on after it, or is done when it converged at k.
    const done = k !== null && loopState?.converged === true && loopState.iterations === k;
    spec.loop = k === null ? plain : ({ ...plain, startAt: done ? plain.maxIterations + 1 : Math.min(k + 1, plain.maxIterations + 1) } as JobSpec['loop']);
  }
  return spec;
}
