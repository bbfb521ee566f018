// First: V8's memory flags must be set before anything allocates.
import '../common/memory';
import { Connection } from '@temporalio/client';
import { loadConfig, requireDatabaseUrl } from '../common/config';
import { createLogger } from '../common/logger';
import { Metrics } from '../common/metrics';
import { JobStore } from '../db/store';
import { listenApi } from './server';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.DRAFTSMAN_LOG_LEVEL, 'draftsman-api');
  const metrics = new Metrics({ processMetrics: true });
  const store = JobStore.connect(requireDatabaseUrl(config));
  await store.migrate();
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  const { server, url } = await listenApi(config, store, connection, { metrics, logger });
  logger.info({ url }, 'draftsman API listening');
  const stop = () => {
    server.close(() => {
      void Promise.allSettled([connection.close(), store.close()]).then(() => process.exit(0));
    });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
