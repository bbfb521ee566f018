import { Client, Connection } from '@temporalio/client';
import { JobsClient } from '../client/jobs';
import { loadConfig, requireDatabaseUrl } from '../common/config';
import { JobStore } from '../db/store';
import { createApp } from './app';

async function main(): Promise<void> {
  const config = loadConfig();
  const store = JobStore.connect(requireDatabaseUrl(config));
  await store.migrate();
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  const app = createApp({
    store,
    jobs: new JobsClient(client, { taskQueue: config.DRAFTSMAN_TASK_QUEUE }),
    config,
    log: (line) => console.error(line),
  });
  const server = app.listen(config.PORT, config.DRAFTSMAN_API_HOST, () => {
    console.log(`draftsman API on http://${config.DRAFTSMAN_API_HOST}:${config.PORT}`);
  });
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
