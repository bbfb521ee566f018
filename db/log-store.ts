/**
 * Steps' output in PostgreSQL, in chunks as the followers store it: where a re-attached
 * follower resumes, how much of the job's cap the steps used, and the reads of the API.
 */
import type { Pool } from 'pg';
import type { StepKind } from '../common/job';
import { StaleAttemptError } from './step-store';

export interface LogProgress {
  nextChunk: number;
  lines: number;
  bytes: number;
  truncated: boolean;
}

/** A stored line: time, stream (o: stdout, e: stderr) and text. Short keys, since logs are the bulk of the data. */
export interface StoredLogLine {
  t: string;
  s: 'o' | 'e';
  x: string;
}

export interface LogChunkWrite {
  kind: StepKind;
  index: number;
  /** 1 when absent. */
  placement?: number;
  chunk: number;
  firstLine: number;
  lines: StoredLogLine[];
  bytes: number;
  truncated: boolean;
}

/** Where a step's output is written as it runs (the follow phase's side of LogStore). */
export interface StepLogStore {
  /** How much of a step's output is stored: where a re-attached follower resumes. */
  progress(jobId: string, kind: StepKind, index: number, placement?: number): Promise<LogProgress>;
  /** Output stored for a job's steps other than `except`: what they used of the job's log cap. */
  otherStepsBytes(jobId: string, except: { kind: StepKind; index: number; placement?: number }): Promise<number>;
  /**
   * Stores one chunk of a step's output once (a retried write of the same chunk is
   * ignored). With `attempt`, only while that activity attempt holds the step: a
   * stale attempt's write is refused with StaleAttemptError.
   */
  append(jobId: string, chunk: LogChunkWrite, attempt?: number): Promise<void>;
}

export class LogStore implements StepLogStore {
  constructor(private readonly pool: Pool) {}

  /** How much of a step's output is stored: where a re-attached follower resumes. */
  async progress(jobId: string, kind: StepKind, index: number, placement = 1): Promise<LogProgress> {
    const { rows } = await this.pool.query<{ next_chunk: number; lines: number; bytes: number; truncated: boolean }>(
      `SELECT COALESCE(max(chunk) + 1, 0)::int AS next_chunk, COALESCE(sum(lines), 0)::int AS lines,
              COALESCE(sum(bytes), 0)::int AS bytes, COALESCE(bool_or(truncated), false) AS truncated
       FROM step_log_chunks WHERE job_id = $1 AND kind = $2 AND index = $3 AND placement = $4`,
      [jobId, kind, index, placement],
    );
    const r = rows[0]!;
    return { nextChunk: r.next_chunk, lines: r.lines, bytes: r.bytes, truncated: r.truncated };
  }

  /** Output stored for a job's steps other than `except`: what they used of the job's log cap. */
  async otherStepsBytes(jobId: string, except: { kind: StepKind; index: number; placement?: number }): Promise<number> {
    const { rows } = await this.pool.query<{ bytes: string }>(
      `SELECT COALESCE(sum(bytes), 0)::bigint AS bytes FROM step_log_chunks WHERE job_id = $1 AND NOT (kind = $2 AND index = $3 AND placement = $4)`,
      [jobId, except.kind, except.index, except.placement ?? 1],
    );
    return Number(rows[0]!.bytes);
  }

  /**
   * Stores one chunk of a step's output once (a retried write of the same chunk is
   * ignored). With `attempt`, only while that activity attempt holds the step: a
   * stale attempt's write is refused with StaleAttemptError.
   */
  async append(jobId: string, chunk: LogChunkWrite, attempt?: number): Promise<void> {
    const { rowCount } = await this.pool.query(
      `INSERT INTO step_log_chunks (job_id, kind, index, chunk, first_line, lines, bytes, truncated, data, placement)
       SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $11
       WHERE $10::int IS NULL OR EXISTS (
         SELECT 1 FROM steps WHERE job_id = $1 AND placement = $11 AND kind = $2 AND index = $3 AND attempt = $10)
       ON CONFLICT (job_id, placement, kind, index, chunk) DO NOTHING`,
      [
        jobId,
        chunk.kind,
        chunk.index,
        chunk.chunk,
        chunk.firstLine,
        chunk.lines.length,
        chunk.bytes,
        chunk.truncated,
        chunk.lines.map((l) => JSON.stringify(l)).join('\n'),
        attempt ?? null,
        chunk.placement ?? 1,
      ],
    );
    if (rowCount === 0 && attempt !== undefined) {
      const { rows } = await this.pool.query<{ attempt: number }>(
        'SELECT attempt FROM steps WHERE job_id = $1 AND kind = $2 AND index = $3 AND placement = $4',
        [jobId, chunk.kind, chunk.index, chunk.placement ?? 1],
      );
      if ((rows[0]?.attempt ?? attempt) !== attempt) throw new StaleAttemptError(jobId, `${chunk.kind}-${chunk.index}`, attempt);
    }
  }

  /** Stored output of a job after chunk id `afterId`, in the order it was written. */
  async read(jobId: string, opts: { afterId: number; step?: { kind: string; index: number }; limit: number }) {
    const params: unknown[] = [jobId, opts.afterId, opts.limit];
    let stepFilter = '';
    if (opts.step) {
      params.push(opts.step.kind, opts.step.index);
      stepFilter = 'AND kind = $4 AND index = $5';
    }
    const { rows } = await this.pool.query<{ id: string; kind: string; index: number; truncated: boolean; data: string }>(
      `SELECT id, kind, index, truncated, data FROM step_log_chunks
       WHERE job_id = $1 AND id > $2 ${stepFilter} ORDER BY id LIMIT $3`,
      params,
    );
    return rows.map((r) => ({
      id: Number(r.id),
      step: `${r.kind}-${r.index}`,
      lines: r.data ? r.data.split('\n').map((l) => JSON.parse(l) as StoredLogLine) : [],
    }));
  }
}
