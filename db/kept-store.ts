import type { Pool } from 'pg';

/** A kept volume: a saved dependency cache or a workspace kept after setup, on one host. */
export interface Kept {
  id: string;
  kind: 'cache' | 'snapshot';
  /** The host queue of the host whose engine holds the volume, and that host's id (when it is known). */
  hostQueue: string;
  host?: string | null;
  scope: string;
  /** The cache's name; '' for a kept workspace. */
  name: string;
  key: string;
  /** The job that saved it. */
  jobId: string;
  /** The commit of a kept workspace; '' for a cache. */
  commit: string;
  bytes: number;
  createdAt: string;
  lastUsedAt: string;
}

interface Row {
  id: string;
  kind: 'cache' | 'snapshot';
  host_queue: string;
  scope: string;
  name: string;
  key: string;
  job_id: string;
  commit: string;
  bytes: string;
  created_at: Date;
  last_used_at: Date;
  host_id?: string | null;
}

const toKept = (r: Row): Kept => ({
  id: r.id,
  kind: r.kind,
  hostQueue: r.host_queue,
  scope: r.scope,
  name: r.name,
  key: r.key,
  jobId: r.job_id,
  commit: r.commit,
  bytes: Number(r.bytes),
  createdAt: r.created_at.toISOString(),
  lastUsedAt: r.last_used_at.toISOString(),
  ...(r.host_id !== undefined ? { host: r.host_id } : {}),
});

/** A kept row with the id of its host. */
const WITH_HOST = 'SELECT k.*, h.id AS host_id FROM kept k LEFT JOIN hosts h ON h.task_queue = k.host_queue';

const likePrefix = (prefix: string) => `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * The record of kept volumes. A volume is in use only once its row exists: a save
 * writes a new volume first and commits it here, so a save cut short leaves a volume
 * no row names (the janitor removes it), never a row naming half a copy.
 */
export class KeptStore {
  constructor(private readonly pool: Pool) {}

  /**
   * The entry a job restores, marked used: `key` itself, else the newest entry whose key
   * starts with the first of `prefixes` that has one (in the job's scope, on its host).
   */
  async restore(
    where: { hostQueue: string; kind: Kept['kind']; scope: string; name: string },
    key: string,
    prefixes: readonly string[],
  ): Promise<(Kept & { exact: boolean }) | null> {
    const base = [where.hostQueue, where.kind, where.scope, where.name];
    const exact = await this.pool.query<Row>(
      `UPDATE kept SET last_used_at = now() WHERE host_queue = $1 AND kind = $2 AND scope = $3 AND name = $4 AND key = $5 RETURNING *`,
      [...base, key],
    );
    if (exact.rows[0]) return { ...toKept(exact.rows[0]), exact: true };
    for (const prefix of prefixes) {
      const { rows } = await this.pool.query<Row>(
        `UPDATE kept SET last_used_at = now() WHERE id = (
           SELECT id FROM kept WHERE host_queue = $1 AND kind = $2 AND scope = $3 AND name = $4 AND key LIKE $5
            ORDER BY created_at DESC, id LIMIT 1) RETURNING *`,
        [...base, likePrefix(prefix)],
      );
      if (rows[0]) return { ...toKept(rows[0]), exact: false };
    }
    return null;
  }

  /** The workspace a job kept after its setup (name '') or a loop step (`loop-2`), in `scope` (on any host), marked used. */
  async keptBy(jobId: string, scope: string, name = ''): Promise<Kept | null> {
    const { rows } = await this.pool.query<Row>(
      `UPDATE kept SET last_used_at = now() WHERE id = (SELECT id FROM kept WHERE kind = 'snapshot' AND job_id = $1 AND scope = $2 AND name = $3 ORDER BY created_at DESC LIMIT 1) RETURNING *`,
      [jobId, scope, name],
    );
    return rows[0] ? toKept(rows[0]) : null;
  }

  /** The points (`setup`, `loop-<k>`) at which a job kept its workspace, in `scope`, without marking them used. */
  async pointsKeptBy(jobId: string, scope: string): Promise<string[]> {
    const { rows } = await this.pool.query<{ name: string }>(`SELECT DISTINCT name FROM kept WHERE kind = 'snapshot' AND job_id = $1 AND scope = $2`, [
      jobId,
      scope,
    ]);
    return rows.map((r) => (r.name === '' ? 'setup' : r.name));
  }

  /** Forgets every workspace a job kept (their volumes are then no row's, and the janitor removes them); how many. */
  async forgetKeptBy(jobId: string): Promise<number> {
    const { rowCount } = await this.pool.query(`DELETE FROM kept WHERE kind = 'snapshot' AND job_id = $1`, [jobId]);
    return rowCount ?? 0;
  }

  /**
   * Commits a saved volume under its key. False when an entry of that key exists already
   * (another job saved it first): the caller removes its own copy.
   */
  async commit(k: Omit<Kept, 'createdAt' | 'lastUsedAt'>): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `INSERT INTO kept (id, kind, host_queue, scope, name, key, job_id, commit, bytes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (host_queue, kind, scope, name, key) DO NOTHING`,
      [k.id, k.kind, k.hostQueue, k.scope, k.name, k.key, k.jobId, k.commit, k.bytes],
    );
    return rowCount === 1;
  }

  /** Whether a row names this volume (a save that committed before its worker went away). */
  async exists(id: string): Promise<boolean> {
    const { rowCount } = await this.pool.query('SELECT 1 FROM kept WHERE id = $1', [id]);
    return rowCount === 1;
  }

  async list(filter: { kind?: Kept['kind']; hostQueue?: string; scope?: string } = {}): Promise<Kept[]> {
    const { rows } = await this.pool.query<Row>(
      `${WITH_HOST} WHERE ($1::text IS NULL OR k.kind = $1) AND ($2::text IS NULL OR k.host_queue = $2) AND ($3::text IS NULL OR k.scope = $3)
        ORDER BY k.last_used_at DESC, k.id LIMIT 1000`,
      [filter.kind ?? null, filter.hostQueue ?? null, filter.scope ?? null],
    );
    return rows.map(toKept);
  }

  async get(id: string): Promise<Kept | null> {
    const { rows } = await this.pool.query<Row>(`${WITH_HOST} WHERE k.id = $1`, [id]);
    return rows[0] ? toKept(rows[0]) : null;
  }

  /** Forgets an entry (its volume is then no row's, and the host's janitor removes it). */
  async remove(id: string): Promise<Kept | null> {
    const { rows } = await this.pool.query<Row>(
      'WITH k AS (DELETE FROM kept WHERE id = $1 RETURNING *) SELECT k.*, h.id AS host_id FROM k LEFT JOIN hosts h ON h.task_queue = k.host_queue',
      [id],
    );
    return rows[0] ? toKept(rows[0]) : null;
  }

  /** The ids of a host's entries, for the janitor's sweep of volumes no row names. */
  async idsOn(hostQueue: string): Promise<Set<string>> {
    const { rows } = await this.pool.query<{ id: string }>('SELECT id FROM kept WHERE host_queue = $1', [hostQueue]);
    return new Set(rows.map((r) => r.id));
  }

  /**
   * The hosts placement prefers for a job of `scope`: the one holding the workspace `from`
   * kept (when it starts from one), then those holding entries of the scope, most recently
   * used first.
   */
  async hostsOf(scope: string, from?: string): Promise<string[]> {
    const { rows } = await this.pool.query<{ host_queue: string }>(
      `SELECT host_queue FROM kept WHERE scope = $1 GROUP BY host_queue
        ORDER BY bool_or(kind = 'snapshot' AND job_id = $2) DESC, max(last_used_at) DESC`,
      [scope, from ?? null],
    );
    return rows.map((r) => r.host_queue);
  }
}
