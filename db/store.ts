import { Pool } from 'pg';
import type { Approval, ApprovalGate, JobStatus, JobView, ResolvedJobSpec } from '../common/job';
import { FINAL_STATUSES } from '../common/job';
import { GroupStore } from './group-store';
import type { ListPosition } from './list-cursor';
import { migrate } from './migrations';
import { LogStore } from './log-store';
import { PgStepStore, placementField, type StepStore } from './step-store';
import { type JobRow, ledgerOf, type StepRow, type StepTotals, jobView } from './view';

export interface JobOutcome {
  status: JobStatus;
  loop: { iterations: number; converged: boolean } | null;
  error?: string;
}

export interface AuditEvent {
  id: number;
  type: string;
  data: Record<string, unknown>;
  at: string;
}

/** The placement in an event's key, from the second on: the first placement's keys are those of versions before moves. */
const placementKey = (placement?: number) => (placement && placement > 1 ? `:p${placement}` : '');

/** What a job list may be narrowed to; `after` is where the previous page ended. */
export interface JobListFilter {
  status?: JobStatus;
  repo?: string;
  commit?: string;
  principal?: string;
  label?: { key: string; value: string };
  /** Free text: a job id or commit prefix, or part of the repository or the principal. */
  q?: string;
  createdAfter?: string;
  createdBefore?: string;
  after?: ListPosition;
  limit: number;
}

/** A budget's gate as its `awaiting_approval` event says it: the limit crossed and the step frozen there. */
export interface BudgetGateEvent {
  reason: 'budget_exceeded';
  step: string;
  budget: string;
  limit: number;
  used: number;
  timeoutSeconds: number;
  onTimeout: 'reject';
}

/** Who started a job, and in which API request (none for the SDK), as its `created` event says. */
export interface Submitter {
  principal: string;
  requestId?: string;
  /** The group (best-of-N) it is an attempt of. */
  group?: string;
}

/** A run id that differs from the one recorded: the job id was used before. */
export class DuplicateJobIdError extends Error {
  override readonly name = 'DuplicateJobIdError';
  constructor(readonly jobId: string) {
    super(`job id ${jobId} was already used by another run`);
  }
}

const JOB_COLUMNS = `id, status, repo, commit, principal, created_at, started_at, finished_at,
  loop_iterations, loop_converged, error, waiting, spec -> 'labels' AS labels,
  (SELECT json_build_object('bytes', p.bytes, 'truncated', p.truncated) FROM job_patches p WHERE p.job_id = jobs.id) AS patch,
  (spec -> 'loop') IS NOT NULL AND spec -> 'loop' <> 'null'::jsonb AS has_loop,
  CASE WHEN host_wait_since IS NOT NULL AND finished_at IS NULL THEN queue_position END AS queue_position, placement, group_id`;
const FINAL = FINAL_STATUSES as readonly string[];

/** How long a connection (or a free client of the pool) may take to come. */
const CONNECT_TIMEOUT_MS = 15_000;
/** How long one query may take, as its caller sees it (the longest are migrations and the patch's write). */
const QUERY_TIMEOUT_MS = 120_000;

/**
 * Jobs and their audit trail in PostgreSQL, with their steps and the steps' output in
 * stores of their own. Every write is idempotent (keyed upserts, events deduplicated by
 * key) because the activities that call it may be retried.
 */
export class JobStore {
  /** Steps' output. */
  readonly logs: LogStore;
  /** Steps: their claims by activity attempts and their outcomes. */
  readonly steps: StepStore;
  /** Groups of attempts forked from one kept workspace. */
  readonly groups: GroupStore;

  constructor(readonly pool: Pool) {
    this.logs = new LogStore(pool);
    this.steps = new PgStepStore(pool);
    this.groups = new GroupStore(pool);
  }

  static connect(databaseUrl: string, max = 10): JobStore {
    const pool = new Pool({
      connectionString: databaseUrl,
      max,
      // A database that hangs (a server killed under its connections, a pool whose
      // clients are all stuck) fails a query instead of holding its caller forever:
      // an activity then fails and is retried, rather than heartbeating on, stuck.
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      query_timeout: QUERY_TIMEOUT_MS,
    });
    // An idle client losing its server (a restart) must not crash the process.
    pool.on('error', () => undefined);
    return new JobStore(pool);
  }

  migrate(): Promise<number[]> {
    return migrate(this.pool);
  }

  close(): Promise<void> {
    return this.pool.end();
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  /**
   * The API's record of a job it has just started (on `taskQueue`, whose line it joins
   * once a worker accepts it); never overwrites what the worker wrote.
   */
  async recordQueued(jobId: string, runId: string, repo: string, commit: string, spec: unknown, by: Submitter, taskQueue?: string): Promise<void> {
    await this.pool.query(
      `INSERT INTO jobs (id, run_id, status, repo, commit, spec, principal, submitted_to) VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7)
       ON CONFLICT (id) DO NOTHING`,
      [jobId, runId, repo, commit, JSON.stringify(spec), by.principal, taskQueue ?? null],
    );
    await this.event(jobId, 'created', 'created', { ...by });
  }

  /**
   * The worker's acceptance of a job's spec; the job stays queued until it starts.
   * A row of another run (a duplicate job id) is left as it is, spec included.
   */
  async recordAccepted(jobId: string, runId: string, spec: ResolvedJobSpec, by?: Submitter): Promise<void> {
    const { rows } = await this.pool.query<{ run_id: string | null }>(
      `INSERT INTO jobs (id, run_id, status, repo, commit, spec, principal) VALUES ($1, $2, 'queued', $3, $4, $5, $6)
       ON CONFLICT (id) DO UPDATE SET
         run_id = COALESCE(jobs.run_id, EXCLUDED.run_id), spec = EXCLUDED.spec,
         principal = COALESCE(EXCLUDED.principal, jobs.principal), updated_at = now()
       WHERE jobs.run_id IS NULL OR jobs.run_id = EXCLUDED.run_id
       RETURNING run_id`,
      [jobId, runId, spec.repo, spec.commit, JSON.stringify(spec), by?.principal ?? null],
    );
    if (rows[0]?.run_id !== runId) throw new DuplicateJobIdError(jobId);
    await this.event(jobId, 'created', 'created', { ...by });
  }

  /** Marks the job running (first time only). */
  async recordStarted(jobId: string, image: string): Promise<void> {
    await this.pool.query(
      `UPDATE jobs SET status = 'running', waiting = NULL, started_at = COALESCE(started_at, now()), updated_at = now()
       WHERE id = $1 AND status = 'queued'`,
      [jobId],
    );
    await this.event(jobId, 'started', 'started', { image });
  }

  /** Why a queued job cannot start yet; recorded once per distinct reason in the audit trail. */
  async recordWaiting(jobId: string, reason: string, eventKey: string): Promise<void> {
    await this.pool.query(`UPDATE jobs SET waiting = $2, updated_at = now() WHERE id = $1 AND status = 'queued'`, [jobId, reason]);
    await this.event(jobId, eventKey, 'waiting', { reason });
  }

  /** The job waits at its approval gate (once: a repeat records nothing new). */
  /** The job waits at a gate: its spec's (`before` a phase), or its budget's (`key` names it: one gate per step stopped there). */
  async recordAwaitingApproval(jobId: string, gate: ApprovalGate | BudgetGateEvent, placement = 1, key = ''): Promise<void> {
    await this.pool.query(`UPDATE jobs SET status = 'awaiting_approval', updated_at = now() WHERE id = $1 AND status = 'running'`, [jobId]);
    await this.event(jobId, `awaiting-approval${placementKey(placement)}${key}`, 'awaiting_approval', { ...gate, ...placementField(placement) });
  }

  /** The gate's decision; an approved job runs again (a rejected one ends through jobFinished). */
  async recordApproval(jobId: string, approval: Approval, placement = 1, key = ''): Promise<void> {
    if (approval.decision === 'approve') {
      await this.pool.query(`UPDATE jobs SET status = 'running', updated_at = now() WHERE id = $1 AND status = 'awaiting_approval'`, [jobId]);
    }
    await this.event(jobId, `approval${placementKey(placement)}${key}`, approval.decision === 'approve' ? 'approved' : 'rejected', {
      ...approval,
      ...placementField(placement),
    });
  }

  async savePatch(jobId: string, data: Buffer, truncated: boolean): Promise<void> {
    await this.pool.query(
      `INSERT INTO job_patches (job_id, data, bytes, truncated) VALUES ($1, $2, $3, $4)
       ON CONFLICT (job_id) DO UPDATE SET data = EXCLUDED.data, bytes = EXCLUDED.bytes, truncated = EXCLUDED.truncated`,
      [jobId, data, data.length, truncated],
    );
  }

  /** The job's spec: as a worker accepted it (defaults filled in), or before that as submitted. */
  async getSpec(jobId: string): Promise<ResolvedJobSpec | null> {
    const { rows } = await this.pool.query<{ spec: ResolvedJobSpec | null }>(`SELECT spec FROM jobs WHERE id = $1`, [jobId]);
    return rows[0]?.spec ?? null;
  }

  async getPatch(jobId: string): Promise<{ data: Buffer; truncated: boolean } | null> {
    const { rows } = await this.pool.query<{ data: Buffer; truncated: boolean }>('SELECT data, truncated FROM job_patches WHERE job_id = $1', [jobId]);
    return rows[0] ?? null;
  }

  /** Status and end of a job, without its steps: what a log follower polls. */
  async jobState(jobId: string): Promise<{ status: JobStatus; finished: boolean } | null> {
    const { rows } = await this.pool.query<{ status: JobStatus; finished: boolean }>(
      'SELECT status, finished_at IS NOT NULL AS finished FROM jobs WHERE id = $1',
      [jobId],
    );
    return rows[0] ?? null;
  }

  async jobCreatedAt(jobId: string): Promise<Date | null> {
    const { rows } = await this.pool.query<{ created_at: Date }>('SELECT created_at FROM jobs WHERE id = $1', [jobId]);
    return rows[0]?.created_at ?? null;
  }

  /** Jobs among `ids` whose status is final. */
  async endedJobs(ids: readonly string[]): Promise<Set<string>> {
    const { rows } = await this.pool.query<{ id: string }>('SELECT id FROM jobs WHERE id = ANY($1::text[]) AND status = ANY($2::text[])', [ids, FINAL]);
    return new Set(rows.map((r) => r.id));
  }

  /**
   * Of the given jobs, those moved away from the host of `hostQueue` (placed again after
   * a host was lost, elsewhere or not yet): what they left on that host is an earlier
   * placement's, and is removed as a job's end would remove it.
   */
  async movedJobs(ids: readonly string[], hostQueue: string): Promise<Set<string>> {
    const { rows } = await this.pool.query<{ id: string }>(
      `SELECT id FROM jobs WHERE id = ANY($1::text[]) AND finished_at IS NULL AND placement > 1 AND (host_queue IS NULL OR host_queue <> $2)`,
      [ids, hostQueue],
    );
    return new Set(rows.map((r) => r.id));
  }

  async recordJanitorAction(a: { action: string; type: string; name: string; jobId: string; reason: string }) {
    await this.pool.query('INSERT INTO janitor_actions (action, type, name, job_id, reason) VALUES ($1, $2, $3, $4, $5)', [
      a.action,
      a.type,
      a.name,
      a.jobId,
      a.reason,
    ]);
  }

  /** A job whose spec was refused by the worker (started through the SDK, not the API). */
  async recordRejected(jobId: string, runId: string, error: string, by?: Submitter): Promise<void> {
    await this.pool.query(
      `INSERT INTO jobs (id, run_id, status, error, finished_at, principal) VALUES ($1, $2, 'failed', $3, now(), $4)
       ON CONFLICT (id) DO UPDATE SET status = 'failed', error = EXCLUDED.error, finished_at = now(),
         principal = COALESCE(EXCLUDED.principal, jobs.principal), updated_at = now()
       WHERE jobs.status = 'queued'`,
      [jobId, runId, error, by?.principal ?? null],
    );
    await this.event(jobId, 'created', 'created', { ...by });
    await this.event(jobId, 'finished', 'finished', { status: 'failed', error });
  }

  async jobFinished(jobId: string, o: JobOutcome): Promise<void> {
    await this.pool.query(
      `UPDATE jobs SET status = $2, loop_iterations = $3, loop_converged = $4, error = $5,
         finished_at = now(), updated_at = now(), host_wait_since = NULL
       WHERE id = $1 AND status <> ALL($6::text[])`,
      [jobId, o.status, o.loop?.iterations ?? null, o.loop?.converged ?? null, o.error ?? null, FINAL],
    );
    await this.event(jobId, 'finished', 'finished', { status: o.status, error: o.error ?? null, loop: o.loop });
  }

  /**
   * The job's host was lost in `placement`: its steps of that placement still running end
   * `failed` (reason host_lost), the `host_lost` event is recorded (with the step that
   * ran, as the workflow saw it or else as the store has it), and a job that moves
   * leaves the host (its room) for the line, as its next placement. Once per placement.
   */
  async hostLost(jobId: string, placement: number, lost: { host: string; step: string | null; moving: boolean }): Promise<void> {
    const waiting = `its host ${lost.host} was lost; waiting for another (placement ${placement + 1})`;
    await this.pool.query(
      `WITH lost_steps AS (
         UPDATE steps SET status = 'failed', reason = 'host_lost', finished_at = now()
          WHERE job_id = $1 AND placement = $2 AND status = 'running' RETURNING kind, index, seq
       ), moved AS (
         UPDATE jobs SET host_queue = NULL, placement = $2 + 1, host_wait_since = now(), queue_position = NULL,
                         status = 'queued', waiting = $5, updated_at = now()
          WHERE id = $1 AND placement = $2 AND $4 AND finished_at IS NULL RETURNING 1
       )
       INSERT INTO events (job_id, key, type, data)
       VALUES ($1, 'host-lost:' || $2::int, 'host_lost',
               $3::jsonb || jsonb_build_object('step', coalesce($6, (SELECT kind || '-' || index FROM lost_steps ORDER BY seq DESC LIMIT 1))))
       ON CONFLICT (job_id, key) DO NOTHING`,
      [jobId, placement, JSON.stringify({ host: lost.host, placement, movedTo: lost.moving ? placement + 1 : null }), lost.moving, waiting, lost.step],
    );
  }

  /** Appends an audit event once: a second call with the same key is ignored. */
  async event(jobId: string, key: string, type: string, data: Record<string, unknown>): Promise<void> {
    await this.pool.query(`INSERT INTO events (job_id, key, type, data) VALUES ($1, $2, $3, $4) ON CONFLICT (job_id, key) DO NOTHING`, [
      jobId,
      key,
      type,
      JSON.stringify(data),
    ]);
  }

  /** An audit event's data, or null when the job has no event of that key. */
  async eventData(jobId: string, key: string): Promise<Record<string, unknown> | null> {
    const { rows } = await this.pool.query<{ data: Record<string, unknown> }>('SELECT data FROM events WHERE job_id = $1 AND key = $2', [jobId, key]);
    return rows[0]?.data ?? null;
  }

  async getJob(jobId: string): Promise<JobView | null> {
    const { rows } = await this.pool.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = $1`, [jobId]);
    const row = rows[0];
    if (!row) return null;
    const [steps, egress, credentials, usage] = await Promise.all([
      // The steps of the job's current placement (row.placement): a moved job shows the steps it runs again.
      this.pool.query<StepRow>('SELECT * FROM steps WHERE job_id = $1 AND placement = $2 ORDER BY seq', [jobId, row.placement ?? 1]),
      this.pool.query<{ connections: string; denied: string; bytes_in: string; bytes_out: string }>(
        'SELECT connections, denied, bytes_in, bytes_out FROM job_egress WHERE job_id = $1',
        [jobId],
      ),
      this.pool.query<{ env: string; secret: string; host: string; requests: string; first_at: Date; last_at: Date }>(
        'SELECT env, secret, host, requests, first_at, last_at FROM job_credential_use WHERE job_id = $1 ORDER BY env, host',
        [jobId],
      ),
      // Every step of every placement: the ledger counts what ran, moved or not.
      this.pool.query<StepTotals>(
        `SELECT count(*) AS steps, sum(cpu_ms) AS cpu_ms, max(peak_memory_bytes) AS peak, (SELECT workspace_bytes FROM jobs WHERE id = $1) AS workspace
           FROM steps WHERE job_id = $1`,
        [jobId],
      ),
    ]);
    const view = jobView(row, steps.rows);
    const e = egress.rows[0];
    if (e) view.egress = { connections: Number(e.connections), denied: Number(e.denied), bytesIn: Number(e.bytes_in), bytesOut: Number(e.bytes_out) };
    view.ledger = ledgerOf(view, usage.rows[0]!);
    if (credentials.rows.length) {
      view.credentialUse = credentials.rows.map((c) => ({
        env: c.env,
        secret: c.secret,
        host: c.host,
        requests: Number(c.requests),
        firstAt: c.first_at.toISOString(),
        lastAt: c.last_at.toISOString(),
      }));
    }
    return view;
  }

  /** Newest first, optionally only jobs in one status. */
  /**
   * A page of jobs, newest first, with the position of its last job when more follow.
   * Keyset pagination on (created_at, id): jobs created while a client pages appear
   * before its first page, never shifting the pages it has yet to read.
   */
  async listJobs(filter: JobListFilter): Promise<{ jobs: JobView[]; next: ListPosition | null }> {
    const params: unknown[] = [];
    const where: string[] = [];
    const add = (sql: (n: string) => string, value: unknown) => {
      params.push(value);
      where.push(sql(`$${params.length}`));
    };
    if (filter.status) add((n) => `status = ${n}`, filter.status);
    if (filter.repo) add((n) => `repo = ${n}`, filter.repo);
    if (filter.commit) add((n) => `commit = ${n}`, filter.commit);
    if (filter.principal) add((n) => `principal = ${n}`, filter.principal);
    if (filter.label) add((n) => `spec -> 'labels' @> ${n}::jsonb`, JSON.stringify({ [filter.label.key]: filter.label.value }));
    if (filter.q) {
      // LIKE's own characters in the text are matched as themselves.
      const q = filter.q.replace(/[\\%_]/g, (c) => `\\${c}`);
      add((n) => `(id LIKE ${n} || '%' OR commit LIKE lower(${n}) || '%' OR repo ILIKE '%' || ${n} || '%' OR principal ILIKE '%' || ${n} || '%')`, q);
    }
    if (filter.createdAfter) add((n) => `created_at > ${n}`, filter.createdAfter);
    if (filter.createdBefore) add((n) => `created_at < ${n}`, filter.createdBefore);
    if (filter.after) {
      params.push(filter.after.createdUs, filter.after.id);
      where.push(`(created_at, id) < (TIMESTAMPTZ 'epoch' + $${params.length - 1}::bigint * INTERVAL '1 microsecond', $${params.length})`);
    }
    params.push(filter.limit + 1);
    const { rows } = await this.pool.query<JobRow & { created_us: string }>(
      `SELECT ${JOB_COLUMNS}, floor(extract(epoch FROM created_at) * 1000000)::bigint::text AS created_us
         FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY created_at DESC, id DESC LIMIT $${params.length}`,
      params,
    );
    const more = rows.length > filter.limit;
    const page = rows.slice(0, filter.limit);
    const last = page[page.length - 1];
    return { jobs: await this.withSteps(page), next: more && last ? { createdUs: last.created_us, id: last.id } : null };
  }

  /** Job views of rows, with their steps (one query for all). */
  private async withSteps(rows: JobRow[]): Promise<JobView[]> {
    if (rows.length === 0) return [];
    // The steps of each job's current placement: a moved job shows the steps it runs again.
    const steps = await this.pool.query<StepRow>(
      'SELECT s.* FROM steps s JOIN jobs j ON j.id = s.job_id AND j.placement = s.placement WHERE s.job_id = ANY($1::text[]) ORDER BY s.seq',
      [rows.map((r) => r.id)],
    );
    const byJob = new Map<string, StepRow[]>();
    for (const s of steps.rows) byJob.set(s.job_id, [...(byJob.get(s.job_id) ?? []), s]);
    return rows.map((r) => jobView(r, byJob.get(r.id) ?? []));
  }

  async events(jobId: string): Promise<AuditEvent[]> {
    const { rows } = await this.pool.query<{ id: string; type: string; data: Record<string, unknown>; at: Date }>(
      'SELECT id, type, data, at FROM events WHERE job_id = $1 ORDER BY id',
      [jobId],
    );
    return rows.map((r) => ({ id: Number(r.id), type: r.type, data: r.data, at: r.at.toISOString() }));
  }
}
