/**
 * The campaign's invariants as pure checks over what it collected after every job
 * ended: the job as Temporal, PostgreSQL and the engine saw it. Unit-tested as a table.
 */
import type { JobStatus, StepView } from '../common/job';
import { FINAL_STATUSES } from '../common/job';

export interface ObservedJob {
  id: string;
  shape: string;
  /** Temporal's status name of the last run (COMPLETED, FAILED, CANCELED, ...), null if unknown. */
  temporal: string | null;
  /** The job as the API serves it (from PostgreSQL). */
  status: JobStatus | null;
  steps: StepView[];
  /** Stored log lines by step name. */
  logs: Record<string, string[]>;
  /** Audit event types with their step (`step_started:setup-0`). */
  events: string[];
  /** When the campaign stopped the Docker engine and when it answered again (ms), for every job alike. */
  engineOutages?: [number, number][];
  /**
   * When no worker watched the running steps (a worker lost, until the next attempt
   * could take over). An engine stop then is noticed by no one, and the end it caused
   * passes for the step's own: a known limit (docs/reliability.md), not held against it.
   */
  workerAway?: [number, number][];
  /** Containers and volumes of the job still on the engine. */
  leftovers: string[];
  /** `start` events the engine reported, by step name. */
  starts: Record<string, number>;
}

/**
 * A cancel the campaign sent while the job waited at a named boundary of `step`, and
 * the faults of the stack (worker, Temporal, PostgreSQL) that overlapped a time
 * window after it: while no worker runs, nothing learns of a cancel, so a step that
 * starts then is not held against the boundary.
 */
export interface ProbedCancel {
  boundary: string;
  step: string;
  /** When the cancel was sent (ms). */
  at?: number;
  /** Whether a stack fault overlapped [from, to] (ms). */
  faultBetween?: (from: number, to: number) => boolean;
}

/** How long a cancel may take to reach a running step: a heartbeat interval (500 ms) and the round trips, with slack. */
export const CANCEL_DELIVERY_MS = 1_500;

export const INVARIANTS = [
  'one terminal status, the same in Temporal and PostgreSQL',
  'each step started at most once (engine events)',
  'nothing left on the engine',
  'no step still running after the job ended',
  'SIGTERM before SIGKILL for a stopped step that traps it',
  'log complete or marked',
  'audit trail: each ended step started once and finished once',
  'a cancel at a named boundary stops the job there',
  'a step the engine stopped under it ends container_lost',
] as const;
export type Invariant = (typeof INVARIANTS)[number];

export interface Violation {
  job: string;
  invariant: Invariant;
  detail: string;
}

const TEMPORAL_FOR: Record<string, string[]> = {
  succeeded: ['COMPLETED'],
  failed: ['FAILED'],
  timed_out: ['FAILED'],
  cancelled: ['CANCELLED', 'CANCELED', 'FAILED'],
};

/**
 * A step that ended after the engine was told to stop ended because of it: the engine
 * closes its API to new connections at once, so Draftsman sees even an end of the
 * step's own from then on as the engine's. (An end in the moment between the
 * signal and that close is the step's own: the engine was seen to start a container 38 ms
 * after its stop signal, which then ran `exit 3`. Such an end has the command's own code.)
 */
export const ENGINE_STOP_SLACK_MS = 0;

/** The code a command gives by itself when it ends in `exit N` and handles no signal; null otherwise. */
export function ownExit(command: string): number | null {
  if (/\btrap\b/.test(command)) return null;
  const m = /(?:^|;)\s*exit (\d+)\s*$/.exec(command);
  return m ? Number(m[1]) : null;
}

/** Lines a `seq 1 N` step must have stored, in order, unless its log says what is missing. */
const SEQ = /^seq 1 (\d+)$/;
const MARKED = /^\[draftsman\] (output truncated|output missing)/;

export function checkJob(job: ObservedJob, commands: Record<string, string>, probed: ProbedCancel | null = null): Violation[] {
  const v: Violation[] = [];
  const add = (invariant: Invariant, detail: string) => v.push({ job: job.id, invariant, detail });

  if (!job.status || !FINAL_STATUSES.includes(job.status)) add(INVARIANTS[0], `status ${job.status} in PostgreSQL`);
  else if (!job.temporal || !TEMPORAL_FOR[job.status]?.includes(job.temporal)) add(INVARIANTS[0], `${job.status} in PostgreSQL, ${job.temporal} in Temporal`);

  for (const [step, n] of Object.entries(job.starts)) if (n > 1) add(INVARIANTS[1], `${step} started ${n} times`);
  if (job.leftovers.length) add(INVARIANTS[2], job.leftovers.join(', '));

  for (const s of job.steps) {
    const name = `${s.kind}-${s.index}`;
    if (s.status === 'running') add(INVARIANTS[3], name);
    const command = commands[name] ?? '';
    // 137: SIGKILL reached it; 42 is its TERM handler, 0 an end of its own just before the stop
    // (a stop by the engine itself is the engine's, and shows as container_lost below).
    if (command.startsWith('trap "exit 42" TERM') && s.exitCode === 137 && s.reason !== 'container_lost') {
      add(INVARIANTS[4], `${name} ended ${s.exitCode}`);
    }
    const seq = SEQ.exec(command);
    if (seq && s.status === 'succeeded') {
      const lines = job.logs[name] ?? [];
      const marked = lines.some((l) => MARKED.test(l));
      const numbers = lines.filter((l) => !MARKED.test(l));
      const complete = numbers.length === Number(seq[1]) && numbers.every((l, i) => l === String(i + 1));
      const prefix = numbers.every((l, i) => l === String(i + 1));
      if (!complete && !(marked && prefix)) add(INVARIANTS[5], `${name}: ${numbers.length} of ${seq[1]} lines, ${marked ? 'marked' : 'unmarked'}`);
    }
    // Running when the engine was told to stop, or started while it stopped.
    const across = (job.engineOutages ?? []).find(
      ([down, up]) => s.startedAt && s.finishedAt && Date.parse(s.startedAt) < up && Date.parse(s.finishedAt) > down + ENGINE_STOP_SLACK_MS,
    );
    const unwatched = across !== undefined && (job.workerAway ?? []).some(([a, b]) => a <= across[0] && b >= across[0]);
    // Its own success (exit 0 came first), a stop of Draftsman's own, or lost with the engine.
    // The exit code of a command's own `exit N` is its own end too: the engine's stop gives
    // 143 or 137 (or a TERM handler's code), so such an end came before the engine's close.
    if (across !== undefined && !unwatched && s.status === 'failed' && s.reason !== 'container_lost' && s.exitCode !== ownExit(command)) {
      add(INVARIANTS[8], `${name} ran across the engine stop at ${new Date(across[0]).toISOString()} and ended failed ${s.exitCode}`);
    }
    if (s.status !== 'running') {
      const started = job.events.filter((e) => e === `step_started:${name}`).length;
      const finished = job.events.filter((e) => e === `step_finished:${name}`).length;
      if (started !== 1 || finished !== 1) add(INVARIANTS[6], `${name}: ${started} started, ${finished} finished events`);
    }
  }
  if (probed) checkProbed(job, probed, (detail) => add(INVARIANTS[7], detail));
  return v;
}

/**
 * Where a cancel landed decides what may still run: a step whose container was being
 * created, or had just started, is stopped (`cancelled`); after a step's end, or
 * between two steps, no later step runs, a loop does not go on in a next run; during
 * cleanup the job keeps the end it had.
 */
function checkProbed(job: ObservedJob, probed: ProbedCancel, add: (detail: string) => void): void {
  const names = job.steps.map((s) => `${s.kind}-${s.index}`);
  const at = names.indexOf(probed.step);
  /** A step that began after the cancel while the stack was whole. */
  const unexcused = (time: string | null) =>
    !(probed.at !== undefined && probed.faultBetween && probed.faultBetween(probed.at, time ? Date.parse(time) : Date.now()));
  if (probed.boundary === 'before-create' || probed.boundary === 'after-create') {
    // Stopped, or ended by itself before the cancel could reach it (a re-attached step may be near its end).
    const step = job.steps[at];
    const endedFirst = step?.finishedAt && probed.at !== undefined && Date.parse(step.finishedAt) <= probed.at + CANCEL_DELIVERY_MS;
    if (step && step.status !== 'cancelled' && !endedFirst && unexcused(step.finishedAt))
      add(`${probed.step} cancelled ${probed.boundary} ended ${step.status}`);
  } else if (probed.boundary === 'queued') {
    // Sent with the start, the cancel may reach the workflow only after its first task
    // scheduled the clone; no later step may start after the delivery time. The clone
    // itself may: its activity, scheduled before the cancel and picked up late on a loaded
    // machine, learns of the cancel only from a heartbeat, and a clone that ends before its
    // first one runs to its end (a known limit: nothing after it runs).
    const late = (s: { kind: string; index: number; startedAt: string | null; status: string }) =>
      s.startedAt !== null &&
      !(s.kind === 'clone' && s.index === 0) &&
      s.status !== 'cancelled' &&
      (probed.at === undefined || Date.parse(s.startedAt) > probed.at + CANCEL_DELIVERY_MS);
    const ran = job.steps.filter((s) => late(s) && unexcused(s.startedAt));
    if (ran.length) add(`${ran.map((s) => `${s.kind}-${s.index}`).join(', ')} ran after a cancel while queued`);
  } else if (probed.boundary === 'between-steps') {
    // The probe pauses before the step's claim: a step claimed then and recorded cancelled
    // with no exit code was stopped before its command started (it never ran).
    const step = at >= 0 ? job.steps[at]! : null;
    const neverRan = step?.status === 'cancelled' && step.exitCode === null;
    if (step && !neverRan && unexcused(step.startedAt)) add(`${probed.step} ran after a cancel between steps`);
  } else if (probed.boundary === 'at-step-end') {
    const later = at >= 0 ? job.steps.slice(at + 1).filter((s) => unexcused(s.startedAt)) : [];
    if (later.length) add(`${later.map((s) => `${s.kind}-${s.index}`).join(', ')} ran after a cancel at the end of ${probed.step}`);
  }
  // A job cancelled with its start may have finished within the cancel's delivery time (the steps check above holds it to that).
  if (probed.boundary !== 'during-cleanup' && probed.boundary !== 'queued' && job.status !== 'cancelled' && job.status !== null) {
    add(`cancelled ${probed.boundary} ${probed.step}, ended ${job.status}`);
  }
}
