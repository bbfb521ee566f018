/** Idempotency keys in PostgreSQL (api/idempotency.ts says what they promise). */
import type { Pool } from 'pg';

export interface IdempotencyRecord {
  bodyHash: string;
  /** When the key was first used: part of the id of the job it started. */
  firstSeen: Date;
  /** The answer given to the first request, once it was given. */
  answer: { status: number; body: unknown } | null;
  /** Made by this claim: no other request holds the key. */
  fresh: boolean;
}

export class IdempotencyStore {
  constructor(
    private readonly pool: Pool,
    private readonly ttlHours: number,
  ) {}

  /**
   * The key's record, made now with this body's hash if there was none. Records older
   * than the TTL are forgotten first (this principal's, so the table stays bounded by
   * what its principals send in a day).
   */
  async claim(principal: string, route: string, key: string, bodyHash: string): Promise<IdempotencyRecord> {
    await this.pool.query(`DELETE FROM idempotency_keys WHERE principal = $1 AND created_at < now() - make_interval(hours => $2)`, [principal, this.ttlHours]);
    const { rowCount } = await this.pool.query(
      `INSERT INTO idempotency_keys (principal, route, key, body_hash) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
      [principal, route, key, bodyHash],
    );
    const record = await this.get(principal, route, key);
    // Forgotten by a concurrent claim's clean-up in between: claim again.
    if (!record) return this.claim(principal, route, key, bodyHash);
    return { ...record, fresh: rowCount === 1 };
  }

  async get(principal: string, route: string, key: string): Promise<Omit<IdempotencyRecord, 'fresh'> | null> {
    const { rows } = await this.pool.query<{ body_hash: string; created_at: Date; status: number | null; response: unknown }>(
      `SELECT body_hash, created_at, status, response FROM idempotency_keys WHERE principal = $1 AND route = $2 AND key = $3`,
      [principal, route, key],
    );
    const r = rows[0];
    if (!r) return null;
    return { bodyHash: r.body_hash, firstSeen: r.created_at, answer: r.status === null ? null : { status: r.status, body: r.response } };
  }

  /** Frees a key whose request was refused, answer unsaved: a retry then runs afresh. */
  async release(principal: string, route: string, key: string): Promise<void> {
    await this.pool.query(`DELETE FROM idempotency_keys WHERE principal = $1 AND route = $2 AND key = $3 AND status IS NULL`, [principal, route, key]);
  }

  /** Keeps the first answer; a later one (a duplicate that ran at the same time) changes nothing. */
  async answer(principal: string, route: string, key: string, status: number, body: unknown): Promise<void> {
    await this.pool.query(`UPDATE idempotency_keys SET status = $4, response = $5 WHERE principal = $1 AND route = $2 AND key = $3 AND status IS NULL`, [
      principal,
      route,
      key,
      status,
      JSON.stringify(body),
    ]);
  }
}
