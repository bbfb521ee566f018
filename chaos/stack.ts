/**
 * The stack a chaos campaign runs against, every part restartable on its own: an
 * embedded PostgreSQL, a Temporal dev server keeping its state in a file (so that a
 * restart keeps every workflow), worker processes, and a private Docker engine
 * (chaos/engine.ts) that can be restarted under running steps.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import type Docker from 'dockerode';
import { JobsClient } from '../client/jobs';
import { dataConverterFor } from '../common/codec';
import { loadConfig } from '../common/config';
import { createLogger } from '../common/logger';
import { JobStore } from '../db/store';
import { startEgressService } from '../egress/service';
import { type PrivateEngine, removeEngineFolder, startPrivateEngine } from '../testing/private-engine';
import { type EmbeddedPg, startEmbeddedPostgres } from '../stack/postgres';
import { type DevServer, startTemporalDevServer, temporalCliPath } from '../stack/temporal';
import { freePort, TEST_PAYLOAD_KEYS } from '../testing/env';
import { startWorkerProcess, type WorkerProcess } from '../testing/worker-process';

export interface ChaosStack {
  dir: string;
  store: JobStore;
  client: Client;
  jobs: JobsClient;
  docker: Docker;
  worker: WorkerProcess;
  /** Every line the workers printed, across restarts (for the probe's announcements). */
  workerLines(): string[];
  /** Workers that exited by themselves (each was started again). */
  workerCrashes(): number;
  engine: PrivateEngine;
  restartWorker(how: 'SIGKILL' | 'SIGTERM'): Promise<void>;
  pauseWorker(ms: number): Promise<void>;
  restartTemporal(how: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** PostgreSQL stopped (fast shutdown or SIGKILL), down for `downMs`, started again. */
  restartPostgres(how: 'SIGINT' | 'SIGKILL', downMs: number): Promise<void>;
  /** The Docker engine stopped (gracefully, or SIGKILL), down for `downMs`, started again. */
  restartEngine(how: 'SIGTERM' | 'SIGKILL', downMs: number): Promise<void>;
  /** Worker, Temporal and PostgreSQL killed at once, then started again. */
  killControlPlane(): Promise<void>;
  stop(): Promise<void>;
}

export async function startChaosStack(opts: {
  name: string;
  deployment: string;
  /** Images the steps use, copied into the private engine. */
  images: string[];
  workerEnv?: Record<string, string>;
  /** host:port the steps may reach on loopback through the egress proxy (the git fixture). */
  egressExceptions: string[];
  log: (l: string) => void;
}): Promise<ChaosStack> {
  const dir = path.resolve('data', `chaos-${opts.name}-${process.pid}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const [pgPort, temporalPort] = [await freePort(), await freePort()];
  const pgDir = path.join(dir, 'postgres');
  let pg: EmbeddedPg = await startEmbeddedPostgres({ dir: pgDir, port: pgPort });
  const startTemporal = () =>
    startTemporalDevServer({
      cli: temporalCliPath(path.resolve('data')),
      port: temporalPort,
      dbFile: path.join(dir, 'temporal.db'),
      logFile: path.join(dir, 'temporal.log'),
    });
  // A start that fails half-way (an engine that does not come up) stops what it started.
  let temporal: DevServer;
  let engine: Awaited<ReturnType<typeof startPrivateEngine>>;
  try {
    temporal = await startTemporal();
    try {
      engine = await startPrivateEngine({ dataRoot: path.join(dir, 'engine'), images: opts.images, log: opts.log });
    } catch (err) {
      await temporal.stop().catch(() => undefined);
      throw err;
    }
  } catch (err) {
    await pg.stop().catch(() => undefined);
    throw err;
  }
  const bundle = await bundleWorkflowCode({ workflowsPath: require.resolve('../workflows'), logger: new DefaultLogger('ERROR') });
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  fs.writeFileSync(bundlePath, bundle.code);

  const taskQueue = `chaos-${opts.name}`;
  const socketDir = path.join(dir, 'eg');
  const config = loadConfig({
    TEMPORAL_ADDRESS: temporal.address,
    DATABASE_URL: pg.url,
    DRAFTSMAN_PAYLOAD_KEYS: TEST_PAYLOAD_KEYS,
    DRAFTSMAN_EGRESS_SOCKET_DIR: socketDir,
    DRAFTSMAN_EGRESS_EXCEPTIONS: opts.egressExceptions.join(','),
  });
  const store = JobStore.connect(pg.url);
  await store.migrate();
  // The host's egress service: beside the workers, untouched by the faults aimed at them.
  const egress = await startEgressService({ ...config, DRAFTSMAN_DEPLOYMENT_ID: opts.deployment }, store.pool, createLogger('ERROR', 'chaos-egress'));
  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection, dataConverter: dataConverterFor(config) });
  const jobs = new JobsClient(client, { taskQueue });
  const workerEnv = {
    TEMPORAL_ADDRESS: temporal.address,
    DATABASE_URL: pg.url,
    DRAFTSMAN_TASK_QUEUE: taskQueue,
    DRAFTSMAN_WORKFLOW_BUNDLE: bundlePath,
    DRAFTSMAN_DEPLOYMENT_ID: opts.deployment,
    DRAFTSMAN_EGRESS_SOCKET_DIR: socketDir,
    DRAFTSMAN_STOP_GRACE_SECONDS: '2',
    // An engine that hangs fails a request in 15 s, not a minute: within the end bound.
    DRAFTSMAN_ENGINE_REQUEST_SECONDS: '15',
    DRAFTSMAN_LOOP_ITERATIONS_PER_RUN: '2',
    DRAFTSMAN_DATA_DIR: dir,
    DOCKER_HOST: engine.host,
    // The production default (the tests' worker processes keep none): jobs take holders made ahead,
    // across worker kills and engine restarts; the campaign's engine goes with everything on it.
    DRAFTSMAN_READY_HOLDERS: '2',
    ...opts.workerEnv,
  };

  const lines: string[] = [];
  let expectedExit = false;
  let stopping = false;
  let crashes = 0;
  const launch = async (): Promise<WorkerProcess> => {
    // The production worker with the chaos probe wrapped around its runner and store.
    const w = await startWorkerProcess(workerEnv, 'dist/testing/worker-main.js');
    let seen = 0;
    const collect = () => {
      const out = w.output();
      const complete = out.lastIndexOf('\n') + 1;
      if (complete > seen) {
        lines.push(...out.slice(seen, complete).split('\n').filter(Boolean));
        seen = complete;
      }
    };
    w.child.stdout!.on('data', collect);
    void w.exited.then((code) => {
      collect();
      if (expectedExit || stopping) return;
      // As a supervisor would (compose restarts it): said, counted, and started again.
      opts.log(`worker ${w.child.pid} exited by itself (${code}):\n${w.output().split('\n').slice(-30).join('\n')}`);
      crashes++;
      void launch().then((next) => (stack.worker = next));
    });
    return w;
  };
  const stopWorker = async (w: WorkerProcess, signal: NodeJS.Signals) => {
    expectedExit = true;
    w.child.kill('SIGCONT');
    w.child.kill(signal);
    await Promise.race([w.exited, sleep(20_000)]);
    w.child.kill('SIGKILL');
    await w.exited;
    expectedExit = false;
  };
  const startPostgres = async () => {
    // After a SIGKILL the server's children notice their parent's death and exit; until
    // they have, the old shared memory is in use and a new server refuses to start.
    for (let attempt = 0; ; attempt++) {
      try {
        return await startEmbeddedPostgres({ dir: pgDir, port: pgPort });
      } catch (err) {
        if (attempt >= 20) throw err;
        await sleep(500);
      }
    }
  };

  const stack: ChaosStack = {
    dir,
    store,
    client,
    jobs,
    docker: engine.docker,
    engine,
    worker: await launch(),
    workerLines: () => lines,
    workerCrashes: () => crashes,
    async restartWorker(how) {
      await stopWorker(stack.worker, how);
      stack.worker = await launch();
    },
    async pauseWorker(ms) {
      stack.worker.child.kill('SIGSTOP');
      await sleep(ms);
      stack.worker.child.kill('SIGCONT');
    },
    async restartTemporal(how) {
      if (how === 'SIGKILL') {
        temporal.process.kill('SIGKILL');
        await new Promise((r) => temporal.process.once('exit', r));
      } else {
        await temporal.stop();
      }
      temporal = await startTemporal();
    },
    async restartPostgres(how, downMs) {
      if (how === 'SIGKILL') process.kill(pg.pid, 'SIGKILL');
      else await pg.stop();
      await sleep(downMs);
      pg = await startPostgres();
    },
    async restartEngine(how, downMs) {
      await engine.restart(how, downMs);
    },
    async killControlPlane() {
      expectedExit = true;
      stack.worker.child.kill('SIGKILL');
      temporal.process.kill('SIGKILL');
      process.kill(pg.pid, 'SIGKILL');
      await stack.worker.exited;
      expectedExit = false;
      await sleep(500);
      pg = await startPostgres();
      temporal = await startTemporal();
      stack.worker = await launch();
    },
    async stop() {
      stopping = true;
      await stopWorker(stack.worker, 'SIGTERM').catch(() => undefined);
      await egress.stop().catch(() => undefined);
      await connection.close().catch(() => undefined);
      await store.close().catch(() => undefined);
      await temporal.stop().catch(() => undefined);
      await pg.stop().catch(() => undefined);
      await engine.stop().catch((err: unknown) => opts.log(`stopping the private engine: ${String(err)}`));
      // A postmaster killed by a fault may have left children that outlived it.
      try {
        execFileSync('pkill', ['-KILL', '-f', pgDir]);
      } catch {
        // none left
      }
      await removeEngineFolder(dir);
    },
  };
  return stack;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
