/**
 * Browser sessions: a person signs in with an API token once, and the browser then holds
 * only a random session id in an HttpOnly cookie. Rows keep the id's digest, never the
 * id, so a read of the table opens no session. Shared by every API process.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Pool } from 'pg';

export interface Session {
  /** The token's name the session was opened with: the principal of its requests. */
  principal: string;
  /** A digest of the token it was opened with (not the token's own digest): which token it answers for, not which name. */
  binding: Buffer;
  /** The token's scopes when it was opened: a token whose scopes shrank since ends its sessions. */
  scopes: string[];
  /** Sent back in X-CSRF-Token by every state-changing request of the session. */
  csrf: string;
  expiresAt: Date;
}

const digest = (id: string) => createHash('sha256').update(id).digest();

export class SessionStore {
  constructor(private readonly pool: Pool) {}

  async open(token: { principal: string; binding: Buffer; scopes: readonly string[] }, hours: number): Promise<Session & { id: string }> {
    const id = randomBytes(32).toString('base64url');
    const csrf = randomBytes(24).toString('base64url');
    const { principal, binding } = token;
    const scopes = [...token.scopes];
    const { rows } = await this.pool.query<{ expires_at: Date }>(
      `INSERT INTO sessions (id_digest, principal, csrf, expires_at, token_binding, scopes) VALUES ($1, $2, $3, now() + make_interval(hours => $4), $5, $6)
       RETURNING expires_at`,
      [digest(id), principal, csrf, hours, binding, scopes],
    );
    // Expired sessions go as new ones come: the table stays the size of the live ones.
    await this.pool.query('DELETE FROM sessions WHERE expires_at < now()');
    return { id, principal, binding, scopes, csrf, expiresAt: rows[0]!.expires_at };
  }

  async find(id: string): Promise<Session | null> {
    const { rows } = await this.pool.query<{ principal: string; csrf: string; expires_at: Date; token_binding: Buffer | null; scopes: string[] | null }>(
      'SELECT principal, csrf, expires_at, token_binding, scopes FROM sessions WHERE id_digest = $1 AND expires_at > now()',
      [digest(id)],
    );
    const r = rows[0];
    if (!r?.token_binding || !r.scopes) return null;
    return { principal: r.principal, binding: r.token_binding, scopes: r.scopes, csrf: r.csrf, expiresAt: r.expires_at };
  }

  async close(id: string): Promise<void> {
    await this.pool.query('DELETE FROM sessions WHERE id_digest = $1', [digest(id)]);
  }
}
