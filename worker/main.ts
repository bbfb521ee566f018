// First: V8's memory flags must be set before anything allocates.
import '../common/memory';
import http from 'node:http';
import { NativeConnection } from '@temporalio/worker';
import Docker from 'dockerode';
import { loadConfig, requireDatabaseUrl } from '../common/config';
import { createLogger } from '../common/logger';
import { Metrics } from '../common/metrics';
import { JobStore } from '../db/store';
import type { ActivityDeps } from '../activities/deps';
import type { Runner } from '../runner/runner';
import { ensureJanitorSchedule, sweepHostOnStart } from './janitor-schedule';
import { createWorker, dockerRunnerFromConfig, ensureSearchAttributes, installRuntime } from './worker';

/** How a test worker wraps what the worker is built on (testing/faults.ts); production passes none. */
export interface WorkerWrap {
  runner?: <R extends Runner>(runner: R) => R;
  store?: (store: JobStore) => JobStore;
  stepContext?: ActivityDeps['stepContext'];
}

/** The worker process: config from the environment, its dependencies, its health server; resolves when it stops. */
export async function runWorkerProcess(wrap: WorkerWrap = {}): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.DRAFTSMAN_LOG_LEVEL, 'draftsman-worker');
  installRuntime(config.DRAFTSMAN_LOG_LEVEL, logger);
  const metrics = new Metrics({ processMetrics: true });
  const ownStore = JobStore.connect(requireDatabaseUrl(config));
  await ownStore.migrate();
  const store = wrap.store ? wrap.store(ownStore) : ownStore;
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  await ensureSearchAttributes(connection, config.TEMPORAL_NAMESPACE);
  await ensureJanitorSchedule(connection, config);
  const docker = new Docker();
  const runner = dockerRunnerFromConfig(config, docker);
  const worker = await createWorker({
    config,
    store,
    runner: wrap.runner ? wrap.runner(runner) : runner,
    connection,
    metrics,
    logger,
    ...(wrap.stepContext ? { test: { stepContext: wrap.stepContext } } : {}),
  });
  await sweepHostOnStart(connection, config, worker, logger);

  /**
   * Healthy: the worker polls and its engine answers. An engine that hangs holds every
   * step of this host (each attempt gives up and is retried), so it shows here.
   */
  const health = async () => {
    const engine = await (docker.ping as (opts: { abortSignal: AbortSignal }) => Promise<unknown>)
      .call(docker, { abortSignal: AbortSignal.timeout(5_000) })
      .then(
        () => 'ok',
        (err: Error) => `error: ${err.name === 'AbortError' ? 'no answer in 5 s' : err.message}`,
      );
    const state = worker.getState();
    return {
      healthy: state === 'RUNNING' && engine === 'ok',
      body: { status: state === 'RUNNING' && engine === 'ok' ? 'ok' : 'unavailable', worker: state, engine },
    };
  };

  const metricsServer =
    config.DRAFTSMAN_WORKER_METRICS_PORT === 0
      ? null
      : http
          .createServer((req, res) => {
            if (req.url === '/metrics') {
              void metrics.render().then(({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body));
            } else if (req.url === '/health') {
              void health().then(({ healthy, body }) => res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(body)));
            } else {
              res.writeHead(404).end();
            }
          })
          .listen(config.DRAFTSMAN_WORKER_METRICS_PORT, config.DRAFTSMAN_API_HOST);

  // Tests and operators wait for this line; it says the worker takes work.
  logger.info(
    { taskQueue: config.DRAFTSMAN_TASK_QUEUE, hostQueue: worker.host.options.taskQueue, host: worker.hostId, temporal: config.TEMPORAL_ADDRESS },
    `draftsman worker polling task queue ${config.DRAFTSMAN_TASK_QUEUE} (host ${worker.hostId})`,
  );
  // Worker.run() installs SIGINT/SIGTERM handlers that shut it down gracefully.
  await worker.run();
  metricsServer?.close();
  await connection.close();
  await ownStore.close();
}

if (require.main === module) {
  runWorkerProcess().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
