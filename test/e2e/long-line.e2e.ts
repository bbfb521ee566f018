import fs from 'node:fs';
import { JobsClient } from '../../client/jobs';
import { truncationMarker } from '../../activities/step-log';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { startTestStack, type TestStack } from '../../testing/stack';
import { startWorkerProcess, type WorkerProcess } from '../../testing/worker-process';

// A step printing 300 MB with no newline, run by a worker process of its own so that
// its peak resident memory (VmHWM) is the step's cost alone.
const BYTES = 300_000_000;
/** The bound stated in docs/reliability.md: the parser holds at most 64 KiB of a line. */
const PEAK_BOUND_MIB = 300;
const LOG_CAP = 4 * 2 ** 20;

let stack: TestStack;
let repo: GitFixture;
let worker: WorkerProcess;
const taskQueue = `long-line-${process.pid}`;

beforeAll(async () => {
  [stack, repo] = await Promise.all([startTestStack(), startGitFixture(1)]);
  worker = await startWorkerProcess({
    TEMPORAL_ADDRESS: stack.config.TEMPORAL_ADDRESS,
    DATABASE_URL: stack.config.DATABASE_URL!,
    DRAFTSMAN_TASK_QUEUE: taskQueue,
    ...stack.workerEnv,
    DRAFTSMAN_STEP_LOG_MAX_BYTES: String(LOG_CAP),
  });
});
afterAll(async () => {
  worker?.child.kill('SIGTERM');
  await worker?.exited;
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
});

const vmHwmMiB = (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

test(`300 MB on one line: the worker's peak memory stays under ${PEAK_BOUND_MIB} MiB, the log is cut with a marker, the next job runs`, async () => {
  const jobs = new JobsClient(stack.client, { taskQueue });
  const { id } = await jobs.start({ repo: repo.url, commit: repo.head, setup: [`head -c ${BYTES} /dev/zero | tr '\\0' a`], validate: ['true'] });
  const job = await stack.waitForEnd(id, 300_000);
  expect(job.status).toBe('succeeded');
  expect(job.steps.find((s) => s.kind === 'setup')).toMatchObject({ logTruncated: true });
  const lines = (await stack.store.logs.read(id, { afterId: 0, step: { kind: 'setup', index: 0 }, limit: 10_000 })).flatMap((c) => c.lines.map((l) => l.x));
  expect(lines.at(-1)).toBe(truncationMarker({ bytes: LOG_CAP, of: 'step' }));
  expect(lines.slice(0, -1).every((l) => /^a+$/.test(l) && l.length <= 64 * 1024)).toBe(true);

  const next = await jobs.start({ repo: repo.url, commit: repo.head, setup: ['echo fine'] });
  expect((await stack.waitForEnd(next.id)).status).toBe('succeeded');

  const peak = vmHwmMiB(worker.child.pid!);
  console.log(`worker VmHWM after a 300 MB line: ${peak.toFixed(0)} MiB`);
  expect(peak).toBeLessThan(PEAK_BOUND_MIB);
}, 400_000);
