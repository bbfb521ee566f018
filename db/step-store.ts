/**
 * Steps in PostgreSQL: who runs each (the activity attempt that claimed it), whether
 * its command was launched, and its outcome with its audit event. Every write is keyed,
 * since the activities that make them may be retried.
 */
import type { Pool } from 'pg';
import type { StepKind, StepOutcome } from '../common/job';
import { type StepRow, stepOutcome } from './view';

export interface StepRecord {
  kind: StepKind;
  index: number;
  seq: number;
  /** The job's placement the step ran in (1 when absent): a moved job's steps run again as new steps. */
  placement?: number;
}

/**
 * A step's keys in the audit trail: the placement appears from the second on, so that
 * a moved job's steps are recorded again, and the first placement's keys stay as they were.
 */
export function stepEventKey(what: 'started' | 'finished', kind: StepKind, index: number, placement = 1): string {
  return `step-${what}:${placement > 1 ? `p${placement}:` : ''}${kind}-${index}`;
}

/** An activity attempt that a newer attempt of the same activity has taken a step from. */
export class StaleAttemptError extends Error {
  override readonly name = 'StaleAttemptError';
  constructor(
    readonly jobId: string,
    readonly step: string,
    readonly attempt: number,
  ) {
    super(`attempt ${attempt} no longer holds step ${step} of job ${jobId}: a newer attempt took it over`);
  }
}

/** The placement in an event's data: from the second placement on. */
export const placementField = (placement?: number) => (placement && placement > 1 ? { placement } : {});

/** What a claim answers: run the step, return its recorded end, or leave it to a newer attempt. */
export type StepClaim =
  { state: 'claimed'; launched: boolean; engineInterrupted: boolean } | { state: 'finished'; outcome: StepOutcome } | { state: 'stale'; attempt: number };

/** A step's outcome with where it sits in the job. */
export type RecordedOutcome = StepOutcome & { seq: number; placement?: number };

/**
 * Where a step's life is kept: who runs it, whether its command was launched, and how
 * it ended. Every method is safe to repeat, since the activities that call it may be
 * retried. PostgreSQL in production (PgStepStore); memory in tests of the phases
 * (MemoryStepStore).
 */
export interface StepStore {
  /**
   * Claims a step for an activity attempt, with its audit event. The row is created, or
   * taken over from an older attempt while it runs. Answers what the attempt must do:
   * run it (`claimed`, with whether an earlier attempt had launched its command), return
   * its recorded end (`finished`), or stop, because a newer attempt holds it (`stale`).
   */
  claim(jobId: string, step: StepRecord, attempt: number): Promise<StepClaim>;
  /** The engine has started the step's command (see claim). */
  launched(jobId: string, kind: StepKind, index: number, placement?: number): Promise<void>;
  /**
   * The attempt that owns the running step lost the engine while waiting for it (set),
   * or found its container still running afterwards (cleared).
   */
  engineInterrupted(jobId: string, kind: StepKind, index: number, attempt: number, interrupted: boolean, placement?: number): Promise<void>;
  /**
   * The step's outcome and its audit event; a step already finished keeps its outcome.
   * Given the attempt that ran it, a step a newer attempt has taken over is not recorded
   * (`stale`): that attempt records it, and the older one must leave its container alone.
   */
  record(jobId: string, o: RecordedOutcome, attempt?: number): Promise<'recorded' | 'finished' | 'stale'>;
  /** A step's recorded outcome, if it has finished: lets a retried activity return it instead of running again. */
  finished(jobId: string, kind: StepKind, index: number, placement?: number): Promise<StepOutcome | null>;
  /** Steps of the job still recorded as running: what a job's end must stop and record. */
  running(jobId: string): Promise<{ kind: StepKind; index: number; seq: number; placement: number }[]>;
  /**
   * The job's placeholder for each credential variable, made once (by `make`) the first
   * time it is asked for and the same for every later step, attempt and worker.
   */
  placeholders(jobId: string, envs: readonly string[], make: () => string): Promise<Record<string, string>>;
  /** The largest size of the job's workspace measured so far, kept for its ledger. */
  noteWorkspaceBytes(jobId: string, bytes: number): Promise<void>;
  /**
   * What the job has spent of a budget besides the step running now: CPU time of its
   * ended steps, bytes through the egress proxy either way, and when it started.
   */
  spent(jobId: string): Promise<Spent>;
}

/** A job's spending so far, as its budget counts it. */
export interface Spent {
  cpuSeconds: number;
  egressBytes: number;
  startedAt: string | null;
}

export class PgStepStore implements StepStore {
  constructor(private readonly pool: Pool) {}

  /** One round trip: it is on every step's path. */
  async claim(jobId: string, step: StepRecord, attempt: number): Promise<StepClaim> {
    const { rows } = await this.pool.query<StepRow & { attempt: number; launched: boolean; engine_interrupted: boolean; claimed: boolean }>(
      `WITH claim AS (
         INSERT INTO steps (job_id, kind, index, seq, status, started_at, attempt, placement) VALUES ($1, $2, $3, $4, 'running', now(), $7, $8)
         ON CONFLICT (job_id, placement, kind, index) DO UPDATE SET attempt = EXCLUDED.attempt
         WHERE steps.status = 'running' AND steps.attempt <= EXCLUDED.attempt
         RETURNING *
       ), event AS (
         INSERT INTO events (job_id, key, type, data) VALUES ($1, $5, 'step_started', $6)
         ON CONFLICT (job_id, key) DO NOTHING
       )
       SELECT *, true AS claimed FROM claim
       UNION ALL
       SELECT *, false AS claimed FROM steps
       WHERE job_id = $1 AND placement = $8 AND kind = $2 AND index = $3 AND NOT EXISTS (SELECT 1 FROM claim)`,
      [
        jobId,
        step.kind,
        step.index,
        step.seq,
        stepEventKey('started', step.kind, step.index, step.placement),
        JSON.stringify({ kind: step.kind, index: step.index, ...placementField(step.placement) }),
        attempt,
        step.placement ?? 1,
      ],
    );
    const r = rows[0]!;
    if (r.claimed) return { state: 'claimed', launched: r.launched, engineInterrupted: r.engine_interrupted };
    if (r.status !== 'running') return { state: 'finished', outcome: stepOutcome(r) };
    return { state: 'stale', attempt: r.attempt };
  }

  async launched(jobId: string, kind: StepKind, index: number, placement = 1): Promise<void> {
    await this.pool.query(`UPDATE steps SET launched = true WHERE job_id = $1 AND kind = $2 AND index = $3 AND placement = $4`, [
      jobId,
      kind,
      index,
      placement,
    ]);
  }

  async engineInterrupted(jobId: string, kind: StepKind, index: number, attempt: number, interrupted: boolean, placement = 1): Promise<void> {
    await this.pool.query(
      `UPDATE steps SET engine_interrupted = $5 WHERE job_id = $1 AND kind = $2 AND index = $3 AND attempt = $4 AND status = 'running' AND placement = $6`,
      [jobId, kind, index, attempt, interrupted, placement],
    );
  }

  /** One round trip, with the audit event. */
  async record(jobId: string, o: RecordedOutcome, attempt?: number): Promise<'recorded' | 'finished' | 'stale'> {
    const event = {
      kind: o.kind,
      index: o.index,
      ...placementField(o.placement),
      status: o.status,
      exitCode: o.exitCode,
      oomKilled: o.oomKilled ?? false,
      durationMs: o.startedAt && o.finishedAt ? Date.parse(o.finishedAt) - Date.parse(o.startedAt) : null,
      ...(o.reason ? { reason: o.reason } : {}),
    };
    const { rows } = await this.pool.query<{ recorded: boolean; before: string | null }>(
      `WITH step AS (
         INSERT INTO steps (job_id, kind, index, seq, status, exit_code, oom_killed, started_at, finished_at,
                            log_bytes, log_truncated, reason, placement, cpu_ms, peak_memory_bytes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE($8, now()), COALESCE($9, now()), $10, $11, $14, $16, $17, $18)
         ON CONFLICT (job_id, placement, kind, index) DO UPDATE SET
           status = EXCLUDED.status, exit_code = EXCLUDED.exit_code, oom_killed = EXCLUDED.oom_killed,
           started_at = COALESCE($8, steps.started_at), finished_at = EXCLUDED.finished_at,
           log_bytes = EXCLUDED.log_bytes, log_truncated = EXCLUDED.log_truncated, reason = EXCLUDED.reason,
           cpu_ms = EXCLUDED.cpu_ms, peak_memory_bytes = EXCLUDED.peak_memory_bytes
         WHERE steps.status = 'running' AND ($15::integer IS NULL OR steps.attempt <= $15)
         RETURNING 1
       ), event AS (
         INSERT INTO events (job_id, key, type, data) SELECT $1, $12, 'step_finished', $13 WHERE EXISTS (SELECT 1 FROM step)
         ON CONFLICT (job_id, key) DO NOTHING
       )
       SELECT EXISTS (SELECT 1 FROM step) AS recorded,
              (SELECT status FROM steps WHERE job_id = $1 AND placement = $16 AND kind = $2 AND index = $3) AS before`,
      [
        jobId,
        o.kind,
        o.index,
        o.seq,
        o.status,
        o.exitCode,
        o.oomKilled ?? false,
        o.startedAt,
        o.finishedAt,
        o.logBytes ?? 0,
        o.logTruncated ?? false,
        stepEventKey('finished', o.kind, o.index, o.placement),
        JSON.stringify(event),
        o.reason ?? null,
        attempt ?? null,
        o.placement ?? 1,
        o.cpuSeconds == null ? null : Math.round(o.cpuSeconds * 1000),
        o.peakMemoryBytes ?? null,
      ],
    );
    // `before` is the row as the statement found it (a CTE's changes are not visible to it).
    const r = rows[0]!;
    if (r.recorded) return 'recorded';
    return r.before === 'running' ? 'stale' : 'finished';
  }

  async finished(jobId: string, kind: StepKind, index: number, placement = 1): Promise<StepOutcome | null> {
    const { rows } = await this.pool.query<StepRow>(
      `SELECT * FROM steps WHERE job_id = $1 AND kind = $2 AND index = $3 AND placement = $4 AND status <> 'running'`,
      [jobId, kind, index, placement],
    );
    return rows[0] ? stepOutcome(rows[0]) : null;
  }

  async running(jobId: string): Promise<{ kind: StepKind; index: number; seq: number; placement: number }[]> {
    const { rows } = await this.pool.query<{ kind: StepKind; index: number; seq: number; placement: number }>(
      `SELECT kind, index, seq, placement FROM steps WHERE job_id = $1 AND status = 'running' ORDER BY seq`,
      [jobId],
    );
    return rows;
  }

  async placeholders(jobId: string, envs: readonly string[], make: () => string): Promise<Record<string, string>> {
    if (envs.length === 0) return {};
    // One statement: concurrent first steps (two attempts, two workers) agree on one placeholder each.
    await this.pool.query(
      `INSERT INTO job_credentials (job_id, env, placeholder) SELECT $1, e, p FROM unnest($2::text[], $3::text[]) AS t(e, p)
       ON CONFLICT (job_id, env) DO NOTHING`,
      [jobId, envs, envs.map(() => make())],
    );
    const { rows } = await this.pool.query<{ env: string; placeholder: string }>(
      'SELECT env, placeholder FROM job_credentials WHERE job_id = $1 AND env = ANY($2::text[])',
      [jobId, envs],
    );
    return Object.fromEntries(rows.map((r) => [r.env, r.placeholder]));
  }

  async noteWorkspaceBytes(jobId: string, bytes: number): Promise<void> {
    await this.pool.query('UPDATE jobs SET workspace_bytes = $2 WHERE id = $1 AND (workspace_bytes IS NULL OR workspace_bytes < $2)', [jobId, bytes]);
  }

  async spent(jobId: string): Promise<Spent> {
    const { rows } = await this.pool.query<{ cpu_ms: string | null; egress: string | null; started_at: Date | null }>(
      `SELECT (SELECT sum(cpu_ms) FROM steps WHERE job_id = $1 AND status <> 'running') AS cpu_ms,
              (SELECT bytes_in + bytes_out FROM job_egress WHERE job_id = $1) AS egress,
              (SELECT started_at FROM jobs WHERE id = $1) AS started_at`,
      [jobId],
    );
    const r = rows[0]!;
    return { cpuSeconds: Number(r.cpu_ms ?? 0) / 1000, egressBytes: Number(r.egress ?? 0), startedAt: r.started_at?.toISOString() ?? null };
  }
}
