/**
 * What the egress service reads and writes in PostgreSQL: a job's spec and running
 * step (to decide), its refusals (as audit events) and its use (counters).
 */
import type { Pool } from 'pg';
import type { JobStatus, ResolvedJobSpec } from '../common/job';

export interface EgressJobView {
  status: JobStatus;
  spec: Partial<ResolvedJobSpec> | null;
  /** The step running now (a job runs one at a time), if any. */
  running: { kind: string; index: number } | null;
  /** The placeholders its steps hold, by credential variable (made at the first step that holds one). */
  placeholders: Record<string, string>;
}

/** Requests the proxy sent with a credential's value to one host. */
export interface CredentialUse {
  env: string;
  secret: string;
  host: string;
  requests: number;
}

export interface EgressUse {
  connections: number;
  denied: number;
  bytesIn: number;
  bytesOut: number;
}

export class EgressStore {
  constructor(private readonly pool: Pool) {}

  async view(jobId: string): Promise<EgressJobView | null> {
    const { rows } = await this.pool.query<{
      status: JobStatus;
      spec: Partial<ResolvedJobSpec> | null;
      kind: string | null;
      index: number | null;
      placeholders: Record<string, string> | null;
    }>(
      `SELECT j.status, j.spec, s.kind, s.index,
              (SELECT json_object_agg(env, placeholder) FROM job_credentials WHERE job_id = j.id) AS placeholders
         FROM jobs j
         LEFT JOIN LATERAL (
           SELECT kind, index FROM steps WHERE job_id = j.id AND status = 'running' ORDER BY seq DESC LIMIT 1
         ) s ON true
        WHERE j.id = $1`,
      [jobId],
    );
    const r = rows[0];
    if (!r) return null;
    return {
      status: r.status,
      spec: r.spec,
      running: r.kind === null ? null : { kind: r.kind, index: r.index ?? 0 },
      placeholders: r.placeholders ?? {},
    };
  }

  /**
   * A refused connection, as an audit event: one per step and target (a step that
   * retries a refused host in a loop adds one event, and the counter counts them all),
   * at most `cap` per job; past it, one `egress_denied_capped` event says so.
   */
  async denied(jobId: string, d: { step: string | null; host: string; port: number; reason: string; detail?: string }, cap = Infinity): Promise<void> {
    const { rows } = await this.pool.query<{ n: string }>(`SELECT count(*) AS n FROM events WHERE job_id = $1 AND type = 'egress_denied'`, [jobId]);
    if (Number(rows[0]?.n ?? 0) < cap) {
      // A credential's misuse is listed apart from the same target's other refusals.
      const misuse = d.reason === 'credential_misuse' ? ':credential_misuse' : '';
      await this.pool.query(`INSERT INTO events (job_id, key, type, data) VALUES ($1, $2, 'egress_denied', $3) ON CONFLICT (job_id, key) DO NOTHING`, [
        jobId,
        `egress_denied:${d.step ?? '-'}:${d.host}:${d.port}${misuse}`,
        JSON.stringify(d),
      ]);
    } else {
      // Past the cap, one event says the rest were counted and not listed.
      await this.pool.query(
        `INSERT INTO events (job_id, key, type, data) VALUES ($1, 'egress_denied:capped', 'egress_denied_capped', $2) ON CONFLICT (job_id, key) DO NOTHING`,
        [jobId, JSON.stringify({ listed: cap, why: `more than ${cap} refused targets: the rest are counted (job_egress.denied), not listed` })],
      );
    }
    await this.add(jobId, { connections: 0, denied: 1, bytesIn: 0, bytesOut: 0 });
  }

  async add(jobId: string, u: EgressUse): Promise<void> {
    await this.pool.query(
      `INSERT INTO job_egress (job_id, connections, denied, bytes_in, bytes_out) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (job_id) DO UPDATE SET
         connections = job_egress.connections + EXCLUDED.connections, denied = job_egress.denied + EXCLUDED.denied,
         bytes_in = job_egress.bytes_in + EXCLUDED.bytes_in, bytes_out = job_egress.bytes_out + EXCLUDED.bytes_out,
         updated_at = now()`,
      [jobId, u.connections, u.denied, u.bytesIn, u.bytesOut],
    );
  }

  /**
   * Requests sent with a credential, counted per variable and host; the first on a host
   * is also an audit event (`credential_used`). Never the value.
   */
  async credentialUsed(jobId: string, uses: readonly CredentialUse[]): Promise<void> {
    for (const u of uses) {
      await this.pool.query(
        `INSERT INTO job_credential_use (job_id, env, secret, host, requests) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (job_id, env, host) DO UPDATE SET requests = job_credential_use.requests + EXCLUDED.requests, last_at = now()`,
        [jobId, u.env, u.secret, u.host, u.requests],
      );
      await this.pool.query(`INSERT INTO events (job_id, key, type, data) VALUES ($1, $2, 'credential_used', $3) ON CONFLICT (job_id, key) DO NOTHING`, [
        jobId,
        `credential_used:${u.env}:${u.host}`,
        JSON.stringify({ env: u.env, secret: u.secret, host: u.host }),
      ]);
    }
  }

  async use(jobId: string): Promise<EgressUse | null> {
    const { rows } = await this.pool.query<{ connections: string; denied: string; bytes_in: string; bytes_out: string }>(
      'SELECT connections, denied, bytes_in, bytes_out FROM job_egress WHERE job_id = $1',
      [jobId],
    );
    const r = rows[0];
    return r ? { connections: Number(r.connections), denied: Number(r.denied), bytesIn: Number(r.bytes_in), bytesOut: Number(r.bytes_out) } : null;
  }
}
