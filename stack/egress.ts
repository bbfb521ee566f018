/**
 * The embedded start's egress service: a process of its own (dist/egress/main.js), so
 * that a crash of the API and worker process does not cut a running step's way out,
 * restarted if it dies. Its output goes to <data>/logs/egress.log.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../common/paths';
import { killOnExit } from './temporal';

export interface EgressProcess {
  stop(): Promise<void>;
}

/** How long to wait between restarts of a service that keeps dying. */
const RESTART_DELAY_MS = 1_000;

export async function startEgressProcess(env: NodeJS.ProcessEnv, logFile: string, say: (line: string) => void): Promise<EgressProcess> {
  const entry = path.join(projectRoot(), 'dist', 'egress', 'main.js');
  let child: ChildProcess | null = null;
  let stopping = false;
  // Ctrl-C reaches the whole process group, this child included: it stops by itself then, and is not restarted.
  const parentStops = () => (stopping = true);
  process.once('SIGINT', parentStops);
  process.once('SIGTERM', parentStops);
  const log = fs.openSync(logFile, 'a');

  const spawnOnce = () =>
    new Promise<void>((resolve, reject) => {
      const c = spawn(process.execPath, [entry], { env, stdio: ['ignore', log, log, 'ipc'] });
      child = c;
      killOnExit(c, 'SIGTERM');
      let ready = false;
      c.on('message', (m) => {
        if (!ready && m === 'ready') {
          ready = true;
          resolve();
        }
      });
      c.once('exit', (code, signal) => {
        if (!ready) reject(new Error(`the egress service exited before it was ready (${code ?? signal}); see ${logFile}`));
        else if (!stopping) {
          say(`the egress service exited (${code ?? signal}); restarting it`);
          setTimeout(() => void spawnOnce().catch((err: Error) => say(err.message)), RESTART_DELAY_MS);
        }
      });
    });

  await spawnOnce();
  return {
    async stop() {
      stopping = true;
      const c = child as ChildProcess | null;
      if (c && c.exitCode === null && c.signalCode === null) {
        await new Promise<void>((resolve) => {
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
        });
      }
      fs.closeSync(log);
    },
  };
}
