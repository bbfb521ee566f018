/**
 * The embedded PostgreSQL's credentials: a generated password, and an application role
 * that is no superuser, for new clusters and for clusters made by older versions (the
 * fixed password `draftsman`, everything owned by the superuser), upgraded in place.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { JobStore } from '../../db/store';
import { APP_ROLE } from '../../db/admin';
import { startEmbeddedPostgres } from '../../stack/postgres';
import { freePort, TEST_DATA_DIR } from '../../testing/env';

const root = path.join(TEST_DATA_DIR, `pg-roles-${process.pid}`);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

async function query(url: string, sql: string): Promise<{ ok: true } | { ok: false; code: string }> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(sql);
    return { ok: true };
  } catch (err) {
    return { ok: false, code: (err as { code: string }).code };
  } finally {
    await c.end();
  }
}

/**
 * What the application's role may not do, each with its positive control for the
 * superuser. The program reads its input: one that exits first (`true`) races PostgreSQL's
 * write to it, which then fails with a broken pipe.
 */
async function expectConfined(url: string, adminUrl: string): Promise<void> {
  await query(adminUrl, 'CREATE SCHEMA IF NOT EXISTS other; CREATE TABLE IF NOT EXISTS other.t (x int)');
  for (const sql of ["COPY (SELECT 1) TO PROGRAM 'cat > /dev/null'", 'CREATE ROLE intruder', 'SELECT * FROM other.t', "ALTER ROLE draftsman PASSWORD 'x'"]) {
    expect([sql, await query(url, sql)]).toEqual([sql, { ok: false, code: '42501' }]);
  }
  expect(await query(adminUrl, "COPY (SELECT 1) TO PROGRAM 'cat > /dev/null'")).toEqual({ ok: true });
  expect(await query(adminUrl, 'SELECT * FROM other.t')).toEqual({ ok: true });
  // The role itself: not a superuser, and no way to make roles or databases.
  const c = new Client({ connectionString: adminUrl });
  await c.connect();
  const { rows } = await c.query('SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = $1', [APP_ROLE]);
  await c.end();
  expect(rows).toEqual([{ rolsuper: false, rolcreaterole: false, rolcreatedb: false }]);
}

test('a new cluster: a generated password kept owner-only, and the application runs as a role that may not do what a superuser may', async () => {
  const dir = path.join(root, 'new', 'postgres');
  const pg = await startEmbeddedPostgres({ dir, port: await freePort() });
  try {
    expect(new URL(pg.url).username).toBe(APP_ROLE);
    expect(decodeURIComponent(new URL(pg.adminUrl).password)).not.toBe('draftsman');
    expect(fs.statSync(path.join(root, 'new', 'postgres-credentials.json')).mode & 0o777).toBe(0o600);
    const store = JobStore.connect(pg.url);
    await store.migrate();
    await store.close();
    await expectConfined(pg.url, pg.adminUrl);
    // The old fixed password is refused.
    const legacy = pg.adminUrl.replace(/:[^:@/]+@/, ':draftsman@');
    await expect(query(legacy, 'SELECT 1')).rejects.toMatchObject({ code: '28P01' });
  } finally {
    await pg.stop();
  }
});

test('a cluster of an older version (fixed password, tables owned by the superuser) is upgraded in place at its next start', async () => {
  const dir = path.join(root, 'old', 'postgres');
  const port = await freePort();
  // Made as an older version left it: the superuser's password `draftsman`, no application
  // role, the database and its tables owned by the superuser.
  const first = await startEmbeddedPostgres({ dir, port });
  const admin = new Client({ connectionString: first.adminUrl.replace(/\/draftsman$/, '/postgres') });
  await admin.connect();
  await admin.query('ALTER DATABASE draftsman OWNER TO draftsman');
  await admin.query(`DROP ROLE ${APP_ROLE}`);
  await admin.query("ALTER ROLE draftsman PASSWORD 'draftsman'");
  await admin.end();
  const legacyUrl = first.adminUrl.replace(/:[^:@/]+@/, ':draftsman@');
  const old = JobStore.connect(legacyUrl);
  await old.migrate();
  await old.pool.query(`INSERT INTO jobs (id, status) VALUES ('kept', 'succeeded')`);
  await old.close();
  await first.stop();
  fs.rmSync(path.join(root, 'old', 'postgres-credentials.json'));

  const pg = await startEmbeddedPostgres({ dir, port });
  try {
    const store = JobStore.connect(pg.url);
    await store.migrate();
    // The application's role owns what the old version made, and reads and writes it.
    expect((await store.jobState('kept'))?.status).toBe('succeeded');
    await store.pool.query(`UPDATE jobs SET status = 'failed' WHERE id = 'kept'`);
    await store.close();
    await expectConfined(pg.url, pg.adminUrl);
    await expect(query(legacyUrl, 'SELECT 1')).rejects.toMatchObject({ code: '28P01' });
  } finally {
    await pg.stop();
  }
});
