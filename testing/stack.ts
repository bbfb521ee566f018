import type { Server } from 'node:http';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import Docker from 'dockerode';
import { createApp } from '../api/app';
import { Authenticator, parseTokens } from '../api/auth';
import { JobsClient } from '../client/jobs';
import { dataConverterFor } from '../common/codec';
import { type Config, loadConfig } from '../common/config';
import type { JobView } from '../common/job';
import { LABEL_DEPLOYMENT, LABEL_MANAGED, LABEL_READY } from '../common/names';
import { holderName } from '../runner/docker/convert';
import { createLogger } from '../common/logger';
import { Metrics } from '../common/metrics';
import { JobStore } from '../db/store';
import { type EgressService, startEgressService } from '../egress/service';
import type { DockerRunner } from '../runner/docker/docker-runner';
import type { WorkerWrap } from '../worker/main';
import { createWorker, dockerRunnerFromConfig, type HostWorker, installRuntime, type WorkerDeps } from '../worker/worker';
import { TEST_DATA_DIR, TEST_PAYLOAD_KEYS } from './env';
import { GIT_HOST } from './git-fixture';

export const TEST_TOKENS = { admin: 'test-admin-token-0123456789', reader: 'test-reader-token-0123456789' };
const authHeader = { authorization: `Bearer ${TEST_TOKENS.admin}` };

export interface TestStack {
  config: Config;
  /** Authorization header with the admin (read+write+approve+admin) token. */
  authHeader: Record<string, string>;
  metrics: Metrics;
  apiUrl: string;
  store: JobStore;
  jobs: JobsClient;
  client: Client;
  docker: Docker;
  runner: DockerRunner;
  egress: EgressService;
  /** What a worker process started beside this stack needs to serve its jobs (the same egress sockets). */
  workerEnv: Record<string, string>;
  api<T = unknown>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; headers: Headers; body: T }>;
  /** POST /v1/jobs with the admin token; fails unless it is accepted. Answers the job's id. */
  submit(spec: Record<string, unknown>): Promise<string>;
  waitForEnd(jobId: string, timeoutMs?: number): Promise<JobView>;
  /** Settles when the stack's worker stops (shut down, or drained). */
  workerStopped(): Promise<void>;
  /** A new worker of the same host in place of the stack's (shut down first if it runs): a restart. */
  replaceWorker(): Promise<void>;
  stop(): Promise<void>;
}

let stacks = 0;

/** The suite's git server, which steps reach through the egress proxy by this operator exception. */
export const gitException = () => `${GIT_HOST}:${process.env.DRAFTSMAN_TEST_GIT_PORT}`;

/**
 * A worker, an API and an egress service of their own per test file, on the shared
 * Temporal server and PostgreSQL, with a task queue and a socket folder of their own
 * so that files never share work.
 */
export async function startTestStack(
  env: Record<string, string> = {},
  opts: { docker?: Docker; test?: WorkerDeps['test']; wrap?: WorkerWrap } = {},
): Promise<TestStack> {
  // Named after the test file under jest; the benchmark and the campaign run it outside jest.
  const testPath = (globalThis as { expect?: { getState(): { testPath?: string } } }).expect?.getState().testPath ?? 'x';
  const taskQueue = `test-${path.basename(testPath).replace(/\W/g, '-')}-${process.pid}`;
  const config = loadConfig({
    TEMPORAL_ADDRESS: process.env.DRAFTSMAN_TEST_TEMPORAL_ADDRESS,
    DATABASE_URL: process.env.DRAFTSMAN_TEST_DATABASE_URL,
    DRAFTSMAN_TASK_QUEUE: taskQueue,
    DRAFTSMAN_EGRESS_SOCKET_DIR: path.join(TEST_DATA_DIR, `eg-${process.pid}-${stacks++}`),
    DRAFTSMAN_EGRESS_EXCEPTIONS: gitException(),
    DRAFTSMAN_STOP_GRACE_SECONDS: '2',
    DRAFTSMAN_DEPLOYMENT_ID: 'test',
    DRAFTSMAN_PAYLOAD_KEYS: TEST_PAYLOAD_KEYS,
    ...env,
  });
  installRuntime('ERROR');
  const store = JobStore.connect(config.DATABASE_URL!);
  await store.migrate();
  // The machine's engine, or a private one (a test of the engine's own configuration).
  const docker = opts.docker ?? new Docker();
  const runner = dockerRunnerFromConfig(config, docker);
  const metrics = new Metrics();
  const egress = await startEgressService(config, store.pool, createLogger('ERROR', 'test-egress'), metrics);

  const nativeConnection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const newWorker = () =>
    createWorker({
      config,
      // Faults come from wrapping what the worker is built on (testing/faults.ts).
      store: opts.wrap?.store ? opts.wrap.store(store) : store,
      runner: opts.wrap?.runner ? opts.wrap.runner(runner) : runner,
      connection: nativeConnection,
      workflowBundle: { codePath: path.join(TEST_DATA_DIR, 'workflow-bundle.js') },
      metrics,
      test: { ...opts.test, ...(opts.wrap?.stepContext ? { stepContext: opts.wrap.stepContext } : {}) },
    });
  let worker: HostWorker = await newWorker();
  let workerRun = worker.run();

  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  const dataConverter = dataConverterFor(config);
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE, dataConverter });
  const jobs = new JobsClient(client, { taskQueue });
  const auth = new Authenticator(
    parseTokens(`admin:read+write+approve+admin:${TEST_TOKENS.admin},reader:read:${TEST_TOKENS.reader}`, 'test'),
    config.DRAFTSMAN_API_RATE_PER_MINUTE,
  );
  const app = createApp({ store, jobs, auth, codec: dataConverter?.payloadCodecs[0], config, metrics, log: (l) => console.error(l) });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as { port: number };
  const apiUrl = `http://127.0.0.1:${port}`;

  /** A request with the admin token unless `headers` says otherwise (authorization '' sends none). */
  async function api<T>(method: string, p: string, body?: unknown, headers: Record<string, string> = {}) {
    const all: Record<string, string> = { ...authHeader, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers };
    if (all.authorization === '') delete all.authorization;
    const res = await fetch(`${apiUrl}${p}`, {
      method,
      headers: all,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : null) as T };
  }

  async function submit(spec: Record<string, unknown>): Promise<string> {
    const res = await api<{ id: string }>('POST', '/v1/jobs', spec);
    if (res.status !== 202) throw new Error(`job refused: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.id;
  }

  async function waitForEnd(jobId: string, timeoutMs = 120_000): Promise<JobView> {
    await client.workflow
      .getHandle(jobId)
      .result()
      .catch(() => undefined);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // Tolerates a database that is restarting under the test.
      const job = await store.getJob(jobId).catch(() => null);
      if (job?.finishedAt) return job;
      if (Date.now() > deadline) throw new Error(`job ${jobId} did not end: ${JSON.stringify(job)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  return {
    config,
    authHeader,
    metrics,
    apiUrl,
    store,
    jobs,
    client,
    docker,
    runner,
    egress,
    workerEnv: { DRAFTSMAN_EGRESS_SOCKET_DIR: config.DRAFTSMAN_EGRESS_SOCKET_DIR! },
    api,
    submit,
    waitForEnd,
    workerStopped: () => workerRun,
    async replaceWorker() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await workerRun;
      worker = await newWorker();
      workerRun = worker.run();
    },
    async stop() {
      await new Promise((r) => server.close(r));
      worker.shutdown();
      await workerRun;
      await egress.stop();
      await connection.close();
      await nativeConnection.close();
      await store.close();
    },
  };
}

/** Containers and volumes of Draftsman that still exist for the given job. */
export async function leftovers(docker: Docker, jobId: string): Promise<string[]> {
  const filters = JSON.stringify({ label: [`${LABEL_MANAGED}=true`, `org.draftsman.job=${jobId}`] });
  // A network holder made ready before its job has no job label: it is the job's by its name.
  const taken = JSON.stringify({ label: [`${LABEL_MANAGED}=true`, LABEL_READY] });
  const [containers, ready, volumes] = await Promise.all([
    docker.listContainers({ all: true, filters }),
    docker.listContainers({ all: true, filters: taken }),
    docker.listVolumes({ filters }),
  ]);
  const holders = ready.filter((c) => c.Names[0] === `/${holderName(jobId, c.Labels[LABEL_DEPLOYMENT] ?? '')}`);
  return [...[...containers, ...holders].map((c) => c.Names[0] ?? c.Id), ...(volumes.Volumes ?? []).map((v) => v.Name)];
}
