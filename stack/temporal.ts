import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { SEARCH_ATTRIBUTES } from '../common/names';
import { projectRoot } from './paths';

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

/**
 * Starts `temporal server start-dev` on 127.0.0.1: in memory, or in `dbFile` so
 * that jobs survive a restart. The Web UI listens on `uiPort` unless headless.
 */
export async function startTemporalDevServer(opts: {
  cli: string;
  port: number;
  uiPort?: number;
  /** Serve the Web UI under this path, and have it decode payloads with this codec endpoint. */
  ui?: { publicPath: string; codecEndpoint: string };
  dbFile?: string;
  namespace?: string;
  logFile?: string;
}): Promise<DevServer> {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(opts.port), '--log-level', 'warn'];
  if (opts.uiPort) args.push('--ui-port', String(opts.uiPort));
  else args.push('--headless');
  if (opts.uiPort && opts.ui) args.push('--ui-public-path', opts.ui.publicPath, '--ui-codec-endpoint', opts.ui.codecEndpoint);
  if (opts.dbFile) args.push('--db-filename', opts.dbFile);
  for (const key of Object.values(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${key.name}=${key.type === 'KEYWORD_LIST' ? 'KeywordList' : 'Keyword'}`);
  if (opts.namespace && opts.namespace !== 'default') args.push('--namespace', opts.namespace);
  const out = opts.logFile ? fs.openSync(opts.logFile, 'a') : 'ignore';
  const child = spawn(opts.cli, args, { stdio: ['ignore', out, out] });
  killOnExit(child, 'SIGTERM');
  const exited = new Promise<never>((_, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`temporal dev server exited with code ${code}${opts.logFile ? ` (log: ${opts.logFile})` : ''}`)));
  });
  await Promise.race([waitForPort(opts.port, '127.0.0.1', 60_000), exited]);
  exited.catch(() => undefined);
  return {
    address: `127.0.0.1:${opts.port}`,
    uiUrl: opts.uiPort ? `http://127.0.0.1:${opts.uiPort}` : '',
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
      }),
  };
}
