import type { Pool } from 'pg';

/** The channel on which a job's row, log chunks and audit events announce a change (migration 9). */
export const JOB_CHANGES_CHANNEL = 'draftsman_jobs';

/** Audit events a log stream carries between its lines. */
export const STREAMED_EVENT_TYPES = ['step_started', 'step_finished'] as const;
export type StreamedEventType = (typeof STREAMED_EVENT_TYPES)[number];

export interface StreamedEvent {
  id: number;
  type: StreamedEventType;
  data: Record<string, unknown>;
}

/** The queries of the API's shared job readers (api/job-feed.ts), beside JobStore's. */
export class FeedStore {
  constructor(readonly pool: Pool) {}

  /** Where a job's log and audit trail end now (0 when empty). */
  async position(jobId: string): Promise<{ chunk: number; event: number }> {
    const { rows } = await this.pool.query<{ chunk: string | null; event: string | null }>(
      `SELECT (SELECT max(id) FROM step_log_chunks WHERE job_id = $1) AS chunk,
              (SELECT max(id) FROM events WHERE job_id = $1) AS event`,
      [jobId],
    );
    return { chunk: Number(rows[0]?.chunk ?? 0), event: Number(rows[0]?.event ?? 0) };
  }

  /** The job's step events after audit event `afterId`, in order. */
  async stepEvents(jobId: string, afterId: number): Promise<StreamedEvent[]> {
    const { rows } = await this.pool.query<{ id: string; type: StreamedEventType; data: Record<string, unknown> }>(
      'SELECT id, type, data FROM events WHERE job_id = $1 AND id > $2 AND type = ANY($3::text[]) ORDER BY id',
      [jobId, afterId, STREAMED_EVENT_TYPES],
    );
    return rows.map((r) => ({ id: Number(r.id), type: r.type, data: r.data }));
  }
}
