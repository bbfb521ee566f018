import { NativeConnection } from '@temporalio/worker';
import { loadConfig, requireDatabaseUrl } from '../common/config';
import { JobStore } from '../db/store';
import { createWorker, dockerRunnerFromConfig, ensureJanitorSchedule, ensureSearchAttributes, installRuntime } from './worker';

async function main(): Promise<void> {
  const config = loadConfig();
  installRuntime(config.DRAFTSMAN_LOG_LEVEL);
  const store = JobStore.connect(requireDatabaseUrl(config));
  await store.migrate();
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  await ensureSearchAttributes(connection, config.TEMPORAL_NAMESPACE);
  await ensureJanitorSchedule(connection, config);
  const worker = await createWorker({ config, store, runner: dockerRunnerFromConfig(config), connection });
  console.log(`draftsman worker polling task queue ${config.DRAFTSMAN_TASK_QUEUE} on ${config.TEMPORAL_ADDRESS}`);
  // Worker.run() installs SIGINT/SIGTERM handlers that shut it down gracefully.
  await worker.run();
  await connection.close();
  await store.close();
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
