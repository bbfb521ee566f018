/**
 * The stack a benchmark runs against: PostgreSQL, a Temporal dev server, the
 * Docker engine, an in-process worker and API, all on loopback, all stopped at the end.
 */
import fs from 'node:fs';
import type { Server } from 'node:http';
import path from 'node:path';
import { Client } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection } from '@temporalio/worker';
import Docker from 'dockerode';
import { createApp } from '../api/app';
import { Authenticator, parseTokens } from '../api/auth';

const BENCH_TOKEN = 'bench-token-0123456789abcdef';
import { JobsClient } from '../client/jobs';
import { type Config, loadConfig } from '../common/config';
import { createLogger } from '../common/logger';
import { JobStore } from '../db/store';
import { startEgressService } from '../egress/service';
import { GIT_HOST, startGitServer } from '../testing/git-fixture';
import type { DockerRunner } from '../runner/docker/docker-runner';
import { type EmbeddedPg, startEmbeddedPostgres } from '../stack/postgres';
import { type DevServer, startTemporalDevServer, temporalCliPath } from '../stack/temporal';
import { freePort, TEST_PAYLOAD_KEYS } from '../testing/env';
import { dataConverterFor } from '../common/codec';
import { createWorker, dockerRunnerFromConfig, type HostWorker, installRuntime } from '../worker/worker';

export interface BenchStack {
  config: Config;
  dir: string;
  bundlePath: string;
  store: JobStore;
  runner: DockerRunner;
  docker: Docker;
  client: Client;
  jobs: JobsClient;
  apiUrl: string;
  authHeader: Record<string, string>;
  /** The servers the benchmark started, for their CPU time. */
  pids: { temporal: number; postgres: number };
  stop(): Promise<void>;
}

export async function startBenchStack(env: Record<string, string> = {}, exceptions: string[] = []): Promise<BenchStack> {
  installRuntime('ERROR');
  const dir = path.resolve('data', `bench-${process.pid}`);
  fs.mkdirSync(dir, { recursive: true });
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const pg: EmbeddedPg = await startEmbeddedPostgres({ dir: path.join(dir, 'postgres'), port: await freePort() });
    stops.push(() => pg.stop());
    const temporal: DevServer = await startTemporalDevServer({
      cli: temporalCliPath(path.resolve('data')),
      logFile: path.join(dir, 'temporal.log'),
    });
    stops.unshift(() => temporal.stop());
    // One git server for every fixture of the run: steps reach it through the egress proxy, by one exception.
    const git = await startGitServer(fs.mkdtempSync(path.join(dir, 'git-')));
    stops.push(() => git.stop());
    process.env.DRAFTSMAN_TEST_GIT_ROOT = git.root;
    process.env.DRAFTSMAN_TEST_GIT_PORT = String(git.port);
    const bundle = await bundleWorkflowCode({ workflowsPath: require.resolve('../workflows'), logger: new DefaultLogger('ERROR') });
    const bundlePath = path.join(dir, 'workflow-bundle.js');
    fs.writeFileSync(bundlePath, bundle.code);

    const config = loadConfig({
      TEMPORAL_ADDRESS: temporal.address,
      DATABASE_URL: pg.url,
      DRAFTSMAN_TASK_QUEUE: 'bench',
      // (And the servers a measure's steps reach, such as the warm-start measure's registry stand-in.)
      DRAFTSMAN_EGRESS_EXCEPTIONS: [`${GIT_HOST}:${git.port}`, ...exceptions].join(','),
      DRAFTSMAN_JANITOR_INTERVAL_SECONDS: '0',
      DRAFTSMAN_DATA_DIR: dir,
      DRAFTSMAN_PAYLOAD_KEYS: TEST_PAYLOAD_KEYS,
      // Worker processes of a measure get the same, so that the harness's runner sees their steps.
      DRAFTSMAN_DEPLOYMENT_ID: 'bench',
      ...env,
    });
    const store = JobStore.connect(pg.url);
    await store.migrate();
    stops.unshift(() => store.close());
    const docker = new Docker();
    const runner = dockerRunnerFromConfig(config, docker);
    const egress = await startEgressService(config, store.pool, createLogger('ERROR', 'bench-egress'));
    stops.unshift(() => egress.stop());
    const connection = await NativeConnection.connect({ address: temporal.address });
    stops.unshift(() => connection.close());
    const client = new Client({ connection, dataConverter: dataConverterFor(config) });
    const jobs = new JobsClient(client, { taskQueue: config.DRAFTSMAN_TASK_QUEUE });
    const authHeader = { authorization: `Bearer ${BENCH_TOKEN}` };
    const app = createApp({ store, jobs, config, auth: new Authenticator(parseTokens(`bench:read+write:${BENCH_TOKEN}`, 'bench'), 1_000_000) });
    const server: Server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    stops.unshift(() => new Promise((r) => server.close(r)));
    const apiUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    return {
      config,
      dir,
      bundlePath,
      store,
      runner,
      docker,
      client,
      jobs,
      apiUrl,
      authHeader,
      pids: { temporal: temporal.process.pid!, postgres: pg.pid },
      async stop() {
        for (const stop of stops) await stop().catch(() => undefined);
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const stop of stops) await stop().catch(() => undefined);
    throw err;
  }
}

/** An in-process worker on the stack's task queue (or another). */
export async function benchWorker(stack: BenchStack, overrides: Partial<Config> = {}): Promise<{ worker: HostWorker; close(): Promise<void> }> {
  const connection = await NativeConnection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  const worker = await createWorker({
    config: { ...stack.config, ...overrides },
    store: stack.store,
    runner: stack.runner,
    connection,
    workflowBundle: { codePath: stack.bundlePath },
  });
  return { worker, close: () => connection.close() };
}
