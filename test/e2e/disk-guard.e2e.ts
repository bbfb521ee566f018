import path from 'node:path';
import { NativeConnection } from '@temporalio/worker';
import { JobsClient } from '../../client/jobs';
import type { JobView } from '../../common/job';
import { createWorker, type HostWorker } from '../../worker/worker';
import { TEST_DATA_DIR } from '../../testing/env';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { waitFor } from '../../testing/helpers';
import { leftovers, startTestStack, type TestStack } from '../../testing/stack';

let stack: TestStack;
let repo: GitFixture;
beforeAll(async () => {
  [stack, repo] = await Promise.all([startTestStack(), startGitFixture(1)]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
});

async function workerWithFloor(taskQueue: string, floorMb: number): Promise<{ worker: HostWorker; close(): Promise<void> }> {
  const connection = await NativeConnection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  const worker = await createWorker({
    config: { ...stack.config, DRAFTSMAN_TASK_QUEUE: taskQueue, DRAFTSMAN_MIN_FREE_DISK_MB: floorMb },
    store: stack.store,
    runner: stack.runner,
    connection,
    workflowBundle: { codePath: path.join(TEST_DATA_DIR, 'workflow-bundle.js') },
  });
  return { worker, close: () => connection.close() };
}

test('below the free-disk floor a job stays queued saying why, and starts once there is room', async () => {
  const taskQueue = `${stack.config.DRAFTSMAN_TASK_QUEUE}-disk`;
  const jobs = new JobsClient(stack.client, { taskQueue });
  const { id } = await jobs.start({ repo: repo.url, commit: repo.head, validate: ['true'] });

  // No machine has a billion MiB free: this worker must hold the job back.
  const full = await workerWithFloor(taskQueue, 1_000_000_000);
  await full.worker.runUntil(
    waitFor(async () => Boolean((await stack.api<JobView>('GET', `/v1/jobs/${id}`)).body.waiting), 'the job to wait for disk', {
      timeoutMs: 30_000,
      everyMs: 100,
    }),
  );
  await full.close();
  const waiting = (await stack.api<JobView>('GET', `/v1/jobs/${id}`)).body;
  expect(waiting.status).toBe('queued');
  expect(waiting.waiting).toMatch(/waiting for disk space: \d+ MiB free .* below the floor of 1000000000 MiB/);
  expect(waiting.steps).toEqual([]);
  expect(await leftovers(stack.docker, id)).toEqual([]);

  const roomy = await workerWithFloor(taskQueue, 1);
  try {
    const job = await roomy.worker.runUntil(stack.waitForEnd(id, 60_000));
    expect(job.status).toBe('succeeded');
    expect(job.waiting).toBeUndefined();
    const events = await stack.store.events(id);
    expect(events.filter((e) => e.type === 'waiting')).toHaveLength(1);
  } finally {
    await roomy.close();
  }
});
