import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../common/names';
import { projectRoot } from '../common/paths';

export interface DevServer {
  address: string;
  uiUrl: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * The Temporal CLI: TEMPORAL_CLI if set, else where bootstrap.sh puts it (the
 * data folder's bin/, or the project's own data/bin/), else `temporal` on PATH.
 */
export function temporalCliPath(dataDir: string): string {
  if (process.env.TEMPORAL_CLI) return process.env.TEMPORAL_CLI;
  const candidates = [path.join(dataDir, 'bin', 'temporal'), path.join(projectRoot(), 'data', 'bin', 'temporal')];
  return candidates.find((c) => fs.existsSync(c)) ?? 'temporal';
}

/** A child server must not outlive the process that started it, whatever way that process ends. */
export function killOnExit(child: ChildProcess, signal: NodeJS.Signals): void {
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  process.once('exit', kill);
  child.once('exit', () => process.removeListener('exit', kill));
}

export function waitForPort(port: number, host: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const socket = net.connect(port, host);
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

/** A free port on 127.0.0.1 at the time of asking (another process may take it before it is used). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface DevServerOptions {
  cli: string;
  /** The frontend's port; when absent, free ones are chosen (the UI's too) and a start that lost a port to another process is tried again on new ones. */
  port?: number;
  /** The Web UI's port; headless when neither this nor `ui` is given. */
  uiPort?: number;
  /** A Web UI (on a port chosen here unless `uiPort` is given); with a path and codec endpoint, served under that path and decoding through that endpoint. */
  ui?: true | { publicPath: string; codecEndpoint: string };
  dbFile?: string;
  namespace?: string;
  logFile?: string;
}

/** Attempts of a start on ports chosen here: each free when chosen, so a clash needs two races lost in a row to fail twice. */
const FREE_PORT_ATTEMPTS = 3;

/**
 * Starts `temporal server start-dev` on 127.0.0.1: in memory, or in `dbFile` so
 * that jobs survive a restart. The Web UI listens on `uiPort` unless headless.
 * Ready means the server answers for its namespace, not only that its port is
 * open: an open port can be another process's (the dev server binds free ports of
 * its own for its internal services, and so do other servers on the machine),
 * and a server that lost its port to one exits soon after.
 */
export async function startTemporalDevServer(opts: DevServerOptions): Promise<DevServer> {
  const chosen = opts.port === undefined;
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await freePort());
    const uiPort = opts.uiPort ?? (opts.ui ? await freePort() : undefined);
    try {
      return await startOnce({ ...opts, port, uiPort });
    } catch (err) {
      if (!chosen || !(err instanceof DevServerExitedError) || attempt >= FREE_PORT_ATTEMPTS) throw err;
    }
  }
}

/** The dev server process ended before it was ready (a port taken, a bad flag, a broken database file). */
export class DevServerExitedError extends Error {
  constructor(code: number | null, logFile?: string) {
    super(`temporal dev server exited with code ${code} before it was ready${logFile ? ` (log: ${logFile})` : ''}`);
    this.name = 'DevServerExitedError';
  }
}

async function startOnce(opts: DevServerOptions & { port: number }): Promise<DevServer> {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(opts.port), '--log-level', 'warn'];
  if (opts.uiPort) args.push('--ui-port', String(opts.uiPort));
  else args.push('--headless');
  if (opts.uiPort && opts.ui && opts.ui !== true) args.push('--ui-public-path', opts.ui.publicPath, '--ui-codec-endpoint', opts.ui.codecEndpoint);
  if (opts.dbFile) args.push('--db-filename', opts.dbFile);
  for (const key of Object.values(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${key.name}=${key.type === 'KEYWORD_LIST' ? 'KeywordList' : 'Keyword'}`);
  const namespace = opts.namespace ?? 'default';
  if (namespace !== 'default') args.push('--namespace', namespace);
  const out = opts.logFile ? fs.openSync(opts.logFile, 'a') : 'ignore';
  const child = spawn(opts.cli, args, { stdio: ['ignore', out, out] });
  if (typeof out === 'number') fs.closeSync(out);
  killOnExit(child, 'SIGTERM');
  const exited = new Promise<never>((_, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new DevServerExitedError(code, opts.logFile)));
  });
  exited.catch(() => undefined);
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    });
  const address = `127.0.0.1:${opts.port}`;
  try {
    await Promise.race([waitForPort(opts.port, '127.0.0.1', 60_000).then(() => waitForNamespace(address, namespace, 60_000)), exited]);
    // The UI is its own listener, opened after the frontend's: a clash there ends the process too.
    if (opts.uiPort) await Promise.race([waitForPort(opts.uiPort, '127.0.0.1', 30_000), exited]);
  } catch (err) {
    await stop();
    throw err;
  }
  return { address, uiUrl: opts.uiPort ? `http://127.0.0.1:${opts.uiPort}` : '', process: child, stop };
}

/** Until the frontend at `address` describes `namespace`: the server is then up, and it is this one's. */
async function waitForNamespace(address: string, namespace: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const connection = await Connection.connect({ address, connectTimeout: timeoutMs });
  try {
    for (;;) {
      try {
        await connection.withDeadline(Date.now() + 2_000, () => connection.workflowService.describeNamespace({ namespace }));
        return;
      } catch (err) {
        if (Date.now() > deadline)
          throw new Error(`the Temporal frontend at ${address} did not describe namespace ${namespace} within ${timeoutMs} ms: ${String(err)}`, { cause: err });
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } finally {
    await connection.close();
  }
}
