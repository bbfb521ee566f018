import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { type EmbeddedPg, startEmbeddedPostgres } from '../../stack/postgres';
import { type DevServer, startTemporalDevServer, temporalCliPath } from '../../stack/temporal';
import { freePort, TEST_DATA_DIR } from './env';

/**
 * Starts what every end-to-end test shares: a Temporal dev server (in memory),
 * PostgreSQL, and the workflow bundle. The Docker engine and the runner image
 * are set up by `npm test`'s bootstrap before jest starts.
 */
export default async function globalSetup(): Promise<void> {
  fs.rmSync(TEST_DATA_DIR, { recursive: true, force: true });
  fs.mkdirSync(TEST_DATA_DIR, { recursive: true });
  const dataDir = path.resolve(process.env.DRAFTSMAN_DATA_DIR ?? 'data');

  const [temporalPort, pgPort] = [await freePort(), await freePort()];
  const started = await Promise.allSettled([
    startTemporalDevServer({
      cli: temporalCliPath(dataDir),
      port: temporalPort,
      logFile: path.join(TEST_DATA_DIR, 'temporal.log'),
    }),
    startEmbeddedPostgres({ dir: path.join(TEST_DATA_DIR, 'postgres'), port: pgPort }),
    bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), logger: undefined }),
  ]);
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    // Stop whatever did start, so a failed set-up leaves no process behind.
    await Promise.allSettled(started.map((r) => (r.status === 'fulfilled' && 'stop' in r.value ? r.value.stop() : null)));
    throw failed.reason;
  }
  const [temporal, pg, bundle] = started.map((r) => (r as PromiseFulfilledResult<unknown>).value) as [
    DevServer,
    EmbeddedPg,
    { code: string },
  ];
  fs.writeFileSync(path.join(TEST_DATA_DIR, 'workflow-bundle.js'), bundle.code);

  process.env.DRAFTSMAN_TEST_TEMPORAL_ADDRESS = temporal.address;
  process.env.DRAFTSMAN_TEST_DATABASE_URL = pg.url;
  (globalThis as Record<string, unknown>).__draftsmanStack = { temporal, pg };
}
