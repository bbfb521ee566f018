/**
 * What only the database's administrator does: the application's role, shared by the
 * embedded start (stack/postgres.ts) and compose's one-shot database set-up
 * (db/main.ts). Draftsman's services connect as a role that owns Draftsman's database
 * and nothing more, never as the superuser.
 */
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/** The application's role: not a superuser, owner of Draftsman's database and its objects. */
export const APP_ROLE = 'draftsman_app';
export const DATABASE = 'draftsman';

/** A string as an SQL literal (for the statements that take no parameters). */
export const literal = (v: string) => `'${v.replace(/'/g, "''")}'`;

/**
 * The application's role: it logs in, owns Draftsman's database, and may not do what a
 * superuser may (run programs on the host with COPY ... TO PROGRAM, create roles, read
 * what it was not granted). Idempotent: also how an older cluster is upgraded, and how
 * a new password takes effect.
 */
export async function ensureAppRole(admin: Client, password: string): Promise<void> {
  const { rowCount } = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [APP_ROLE]);
  const attributes = `LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD ${literal(password)}`;
  await admin.query(rowCount ? `ALTER ROLE ${APP_ROLE} ${attributes}` : `CREATE ROLE ${APP_ROLE} ${attributes}`);
  const db = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
  if (!db.rowCount) await admin.query(`CREATE DATABASE ${DATABASE} OWNER ${APP_ROLE}`);
  else await admin.query(`ALTER DATABASE ${DATABASE} OWNER TO ${APP_ROLE}`);
}

/**
 * Tables, sequences and views of Draftsman's schema that another role owns (the superuser,
 * in versions that connected as it) pass to the application's role. `db` is an admin
 * connection to Draftsman's database.
 */
export async function handOver(db: Client): Promise<void> {
  await db.query(`
    DO $$
    DECLARE r record;
    BEGIN
      FOR r IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S', 'v', 'p') AND pg_get_userbyid(c.relowner) <> '${APP_ROLE}'
                 AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))
      LOOP
        EXECUTE format('ALTER %s public.%I OWNER TO ${APP_ROLE}', CASE r.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END, r.relname);
      END LOOP;
    END $$`);
}

/**
 * A connected client once the server accepts connections. The port opens before
 * that, and after a crash the server replays its WAL first ("the database system is
 * starting up", SQLSTATE 57P03), which can take seconds: each try needs a new
 * client, since a pg Client that failed to connect cannot connect again.
 */
export async function connectWhenReady(url: string, timeoutMs: number, giveUp: (err: unknown) => boolean = () => false): Promise<Client> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new Client({ connectionString: url });
    try {
      await client.connect();
      return client;
    } catch (err) {
      await client.end().catch(() => undefined);
      if (giveUp(err) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Compose's database set-up, run before the services on every `up`: the application's
 * password is generated once into `passwordFile` (a volume the services mount
 * read-only), the role made or upgraded with it, and what the superuser owns handed
 * over. A lost file is made anew, and the role takes the new password.
 */
export async function setUpApplicationRole(adminUrl: string, passwordFile: string, log: (line: string) => void): Promise<void> {
  let password = fs.existsSync(passwordFile) ? fs.readFileSync(passwordFile, 'utf8').trim() : '';
  if (!password) {
    password = randomBytes(24).toString('base64url');
    // Written (and synced) before the role takes it: a crash in between leaves it known.
    const tmp = `${passwordFile}.tmp`;
    fs.writeFileSync(tmp, `${password}\n`, { mode: 0o600, flush: true });
    fs.renameSync(tmp, passwordFile);
    log(`generated the application role's password in ${passwordFile}`);
  }
  const server = new URL(adminUrl);
  server.pathname = '/postgres';
  const admin = await connectWhenReady(server.toString(), 60_000);
  try {
    await ensureAppRole(admin, password);
  } finally {
    await admin.end();
  }
  const db = new URL(adminUrl);
  db.pathname = `/${DATABASE}`;
  const inDb = await connectWhenReady(db.toString(), 10_000);
  try {
    await handOver(inDb);
  } finally {
    await inDb.end();
  }
  log(`${APP_ROLE} owns ${DATABASE} and its objects`);
}
