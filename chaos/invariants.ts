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
  /** Containers and volumes of the job still on the engine. */
  leftovers: string[];
  /** `start` events the engine reported, by step name. */
  starts: Record<string, number>;
  /** When the campaign asked to cancel it (ms), if it did. */
  cancelledAt: number | null;
}

export const INVARIANTS = [
  'one terminal status, the same in Temporal and PostgreSQL',
  'each step started at most once (engine events)',
  'nothing left on the engine',
  'no step still running after the job ended',
  'SIGTERM before SIGKILL for a stopped step that traps it',
  'log complete or marked',
  'audit trail: each ended step started once and finished once',
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

/** Lines a `seq 1 N` step must have stored, in order, unless its log says what is missing. */
const SEQ = /^seq 1 (\d+)$/;
const MARKED = /^\[draftsman\] (output truncated|output missing)/;

export function checkJob(job: ObservedJob, commands: Record<string, string>): Violation[] {
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
    if ((s.status === 'cancelled' || s.status === 'timed_out') && command.startsWith('trap "exit 42" TERM') && s.exitCode !== null && s.exitCode !== 42) {
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
    if (s.status !== 'running') {
      const started = job.events.filter((e) => e === `step_started:${name}`).length;
      const finished = job.events.filter((e) => e === `step_finished:${name}`).length;
      if (started !== 1 || finished !== 1) add(INVARIANTS[6], `${name}: ${started} started, ${finished} finished events`);
    }
  }
  return v;
}
