import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { type EmbeddedPg, startEmbeddedPostgres } from '../../stack/postgres';
import { type DevServer, startTemporalDevServer, temporalCliPath } from '../../stack/temporal';
import { freePort, TEST_DATA_DIR } from '../../testing/env';
import { type GitServer, startGitServer } from '../../testing/git-fixture';
import { buildDist } from '../../testing/worker-process';

/**
 * Starts what every end-to-end test shares: PostgreSQL, a Temporal dev server
 * (in memory) and the workflow bundle. The Docker engine and the runner image
 * are set up by `npm test`'s bootstrap before jest starts.
 */
export default async function globalSetup(): Promise<void> {
  fs.rmSync(TEST_DATA_DIR, { recursive: true, force: true });
  // Tests that run the entry points as processes (worker, `npm start`, bench) use dist/.
  buildDist();
  fs.mkdirSync(TEST_DATA_DIR, { recursive: true });
  const dataDir = path.resolve(process.env.DRAFTSMAN_DATA_DIR ?? 'data');

  let pg: EmbeddedPg | undefined;
  let temporal: DevServer | undefined;
  let gitServer: GitServer | undefined;
  try {
    // One git server for every file: steps reach it through the egress proxy, with one exception for its port.
    const gitRoot = path.join(TEST_DATA_DIR, 'git');
    fs.mkdirSync(gitRoot, { recursive: true });
    gitServer = await startGitServer(gitRoot);
    // PostgreSQL before the dev server, which takes free ports of its own as it starts.
    pg = await startEmbeddedPostgres({ dir: path.join(TEST_DATA_DIR, 'postgres'), port: await freePort() });
    const [server, bundle] = await Promise.all([
      startTemporalDevServer({
        cli: temporalCliPath(dataDir),
        logFile: path.join(TEST_DATA_DIR, 'temporal.log'),
      }),
      bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), logger: new DefaultLogger('WARN') }),
    ]);
    temporal = server;
    fs.writeFileSync(path.join(TEST_DATA_DIR, 'workflow-bundle.js'), bundle.code);
  } catch (err) {
    // Leave no process behind when set-up fails half way.
    await Promise.allSettled([pg?.stop(), temporal?.stop(), gitServer?.stop()]);
    throw err;
  }

  process.env.DRAFTSMAN_TEST_TEMPORAL_ADDRESS = temporal.address;
  process.env.DRAFTSMAN_TEST_DATABASE_URL = pg.url;
  process.env.DRAFTSMAN_TEST_GIT_ROOT = gitServer.root;
  process.env.DRAFTSMAN_TEST_GIT_PORT = String(gitServer.port);
  (globalThis as Record<string, unknown>).__draftsmanStack = { temporal, pg, gitServer };
}
