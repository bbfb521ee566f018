import path from 'node:path';
import { type EmbeddedPg, startEmbeddedPostgres } from '../../stack/postgres';
import { type DevServer, startTemporalDevServer, temporalCliPath } from '../../stack/temporal';
import { freePort, TEST_DATA_DIR } from './env';
import { type GitFixture, startGitFixture } from './git-fixture';
import { sleep, waitForContainer } from './helpers';
import { leftovers, startTestStack, type TestStack } from './stack';

// This file has a Temporal server (with a state file) and a PostgreSQL of its own,
// so that it can restart them in the middle of a job.
const dir = path.join(TEST_DATA_DIR, `restarts-${process.pid}`);
let temporalPort: number;
let pgPort: number;
let temporal: DevServer;
let pg: EmbeddedPg;
let stack: TestStack;
let repo: GitFixture;

const startTemporal = () =>
  startTemporalDevServer({
    cli: temporalCliPath(path.resolve('data')),
    port: temporalPort,
    dbFile: path.join(dir, 'temporal.db'),
    logFile: path.join(dir, 'temporal.log'),
  });
const startPg = () => startEmbeddedPostgres({ dir: path.join(dir, 'postgres'), port: pgPort });

beforeAll(async () => {
  pgPort = await freePort();
  pg = await startPg();
  temporalPort = await freePort();
  temporal = await startTemporal();
  [stack, repo] = await Promise.all([
    startTestStack({ TEMPORAL_ADDRESS: temporal.address, DATABASE_URL: pg.url }),
    startGitFixture(1),
  ]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
  await Promise.allSettled([temporal?.stop(), pg?.stop()]);
});

const EXPECTED_TRAIL = [
  'created',
  'started',
  'step_started:clone-0',
  'step_finished:clone-0',
  'step_started:setup-0',
  'step_finished:setup-0',
  'step_started:validate-0',
  'step_finished:validate-0',
  'cleaned_up',
  'finished',
];

async function runThrough(restart: () => Promise<void>): Promise<void> {
  const { id } = await stack.jobs.start({
    repo: repo.url,
    commit: repo.head,
    setup: ['echo ran >> runs; sleep 5'],
    validate: ['test "$(wc -l < runs)" -eq 1'],
  });
  await waitForContainer(stack.runner, { jobId: id, kind: 'setup', index: 0 });
  await restart();
  const job = await stack.waitForEnd(id, 120_000);
  expect(job.status).toBe('succeeded');
  expect(job.steps.map((s) => `${s.kind}-${s.index}:${s.exitCode}`)).toEqual(['clone-0:0', 'setup-0:0', 'validate-0:0']);
  const events = await stack.store.events(id);
  const trail = events.map((e) => (e.data.kind ? `${e.type}:${e.data.kind}-${e.data.index}` : e.type));
  expect(trail).toEqual(EXPECTED_TRAIL);
  const { rows } = await stack.store.pool.query('SELECT count(*)::int AS n FROM steps WHERE job_id = $1', [id]);
  expect(rows[0].n).toBe(3);
  expect(await leftovers(stack.docker, id)).toEqual([]);
}

test('a Temporal server restarted (same state file) in the middle of a job: the job completes, the trail is whole', async () => {
  await runThrough(async () => {
    await temporal.stop();
    await sleep(1000);
    temporal = await startTemporal();
  });
});

test('a PostgreSQL restarted in the middle of a job: the job completes, no gap and no duplicate in the trail', async () => {
  await runThrough(async () => {
    await pg.stop();
    await sleep(3000);
    pg = await startPg();
  });
});
