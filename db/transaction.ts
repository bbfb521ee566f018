import type { Pool, PoolClient } from 'pg';

/**
 * Runs `body` in one transaction holding the advisory lock `lock` (released at commit or
 * rollback): one such body at a time across every process of the database. Rolled back
 * when it throws; the client goes back to the pool either way.
 */
export async function inLockedTransaction<T>(pool: Pool, lock: number, body: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [lock]);
    const result = await body(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
