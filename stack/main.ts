/**
 * `npm start`: the whole stack in one foreground process with embedded defaults.
 * A Temporal dev server (state file and Web UI), PostgreSQL (embedded unless
 * DATABASE_URL is set), the worker and the API. Ctrl-C stops everything.
 */
// First: V8's memory flags must be set before anything allocates.
import '../common/memory';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { listenApi } from '../api/server';
import { loadConfig } from '../common/config';
import { createLogger } from '../common/logger';
import { Metrics } from '../common/metrics';
import { JobStore } from '../db/store';
import { ensureJanitorSchedule, sweepHostOnStart } from '../worker/janitor-schedule';
import { createWorker, dockerRunnerFromConfig, ensureSearchAttributes, installRuntime } from '../worker/worker';
import { startEgressProcess } from './egress';
import { startEmbeddedPostgres } from './postgres';
import { startTemporalDevServer, temporalCliPath, waitForPort } from './temporal';
import { TEMPORAL_UI_PATH } from '../api/temporal-ui';

/** A credential of the local stack's own, made once and kept (owner-only) in the data folder. */
function localCredential(dataDir: string, name: string, make: () => string): string {
  const file = path.join(dataDir, name);
  if (!fs.existsSync(file)) fs.writeFileSync(file, `${make()}\n`, { mode: 0o600 });
  return fs.readFileSync(file, 'utf8').trim();
}

const say = (line: string) => console.log(`[draftsman] ${line}`);

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.DRAFTSMAN_LOG_LEVEL, 'draftsman');
  installRuntime(config.DRAFTSMAN_LOG_LEVEL, logger);
  // One process: the API's /metrics serves the worker's series too.
  const metrics = new Metrics({ processMetrics: true });
  const dataDir = path.resolve(config.DRAFTSMAN_DATA_DIR);
  fs.mkdirSync(path.join(dataDir, 'logs'), { recursive: true });
  const stops: (() => Promise<unknown>)[] = [];
  if (!config.DRAFTSMAN_PAYLOAD_KEYS) {
    // No keys configured: one key of the local stack's own, kept in the data folder.
    config.DRAFTSMAN_PAYLOAD_KEYS = localCredential(dataDir, 'payload-key', () => `local:${randomBytes(32).toString('base64')}`);
  }

  // PostgreSQL first: the dev server picks free ports for its internal services.
  let databaseUrl = config.DATABASE_URL;
  if (!databaseUrl) {
    say(`starting the embedded PostgreSQL on 127.0.0.1:${config.DRAFTSMAN_EMBEDDED_PG_PORT} (data: ${dataDir}/postgres)`);
    const pg = await startEmbeddedPostgres({ dir: path.join(dataDir, 'postgres'), port: config.DRAFTSMAN_EMBEDDED_PG_PORT, log: say });
    databaseUrl = pg.url;
    stops.push(() => pg.stop());
  }

  const [host, portText] = config.TEMPORAL_ADDRESS.split(':');
  const temporalPort = Number(portText ?? 7233);
  let uiUrl = '(external server)';
  const local = host === 'localhost' || host === '127.0.0.1';
  const running = await waitForPort(temporalPort, '127.0.0.1', 0).then(
    () => true,
    () => false,
  );
  if (local && !running) {
    say(`starting the Temporal dev server on ${config.TEMPORAL_ADDRESS} (state: ${dataDir}/temporal.db)`);
    const server = await startTemporalDevServer({
      cli: temporalCliPath(dataDir),
      port: temporalPort,
      uiPort: config.DRAFTSMAN_TEMPORAL_UI_PORT,
      // Served by the API under /temporal, behind its sign-in: the UI then decodes payloads
      // through the API's codec with the session's cookie (api/temporal-ui.ts).
      ui: { publicPath: TEMPORAL_UI_PATH, codecEndpoint: `http://${config.DRAFTSMAN_API_HOST}:${config.PORT}/codec` },
      dbFile: path.join(dataDir, 'temporal.db'),
      namespace: config.TEMPORAL_NAMESPACE,
      logFile: path.join(dataDir, 'logs', 'temporal.log'),
    });
    config.DRAFTSMAN_TEMPORAL_UI_PROXY ??= server.uiUrl;
    uiUrl = '';
    stops.push(() => server.stop());
  }

  const store = JobStore.connect(databaseUrl);
  await store.migrate();
  stops.unshift(() => store.close());

  if (config.DRAFTSMAN_STEP_EGRESS === 'proxy' && !config.DRAFTSMAN_INSECURE_STEP_NETWORK) {
    say(`starting the egress service (sockets: ${config.DRAFTSMAN_EGRESS_SOCKET_DIR})`);
    const egress = await startEgressProcess({ ...process.env, DATABASE_URL: databaseUrl }, path.join(dataDir, 'logs', 'egress.log'), say);
    // Stopped after the worker (the stops run once it has): a step being stopped keeps its way out to the end.
    stops.unshift(() => egress.stop());
  }

  say('bundling workflows and starting the worker');
  const nativeConnection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  await ensureSearchAttributes(nativeConnection, config.TEMPORAL_NAMESPACE);
  await ensureJanitorSchedule(nativeConnection, config);
  const worker = await createWorker({
    config,
    store,
    runner: dockerRunnerFromConfig(config),
    connection: nativeConnection,
    metrics,
    logger,
  });
  const workerDone = worker.run();
  await sweepHostOnStart(nativeConnection, config, worker, logger);

  let tokenNote = 'from DRAFTSMAN_API_TOKENS / DRAFTSMAN_API_TOKENS_FILE';
  if (!config.DRAFTSMAN_API_TOKENS && !config.DRAFTSMAN_API_TOKENS_FILE) {
    // No tokens configured: one token of the local stack's own with every scope, kept in the data folder.
    const tokenFile = path.join(dataDir, 'api-token');
    config.DRAFTSMAN_API_TOKENS = `local:read+write+approve+admin:${localCredential(dataDir, 'api-token', () => randomBytes(24).toString('base64url'))}`;
    tokenNote = `in ${tokenFile}  (curl -H "Authorization: Bearer $(cat ${tokenFile})" ...)`;
  }
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  const { server, url: apiUrl } = await listenApi(config, store, connection, { metrics, logger });

  say('ready');
  say(`  API            ${apiUrl}  (POST /v1/jobs, GET /v1/jobs, GET /health)`);
  say(`  API token      ${tokenNote}`);
  say(`  Temporal       ${config.TEMPORAL_ADDRESS}  namespace ${config.TEMPORAL_NAMESPACE}, task queue ${config.DRAFTSMAN_TASK_QUEUE}, host ${worker.hostId}`);
  say(`  Temporal UI    ${uiUrl || `${apiUrl}${TEMPORAL_UI_PATH}/  (sign in with the API token; payloads shown decrypted)`}`);
  say(`  PostgreSQL     ${databaseUrl.replace(/:[^:@/]+@/, ':***@')}`);
  say(`  data folder    ${dataDir}`);
  say('press Ctrl-C to stop');

  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    say('stopping');
    await new Promise((r) => server.close(r));
    await connection.close();
    // The worker stops itself on SIGINT/SIGTERM; on other paths we ask it to.
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await workerDone.catch(() => undefined);
    await nativeConnection.close();
    for (const stop of stops) await stop().catch(() => undefined);
    say('stopped');
    process.exit(0);
  };
  // The worker installs its own SIGINT/SIGTERM handling; ours stops the rest in order.
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
  await workerDone;
  if (!stopping) await shutdown();
}

main().catch((err) => {
  console.error(`[draftsman] ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
