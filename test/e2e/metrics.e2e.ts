import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { startTestStack, type TestStack } from '../../testing/stack';

let stack: TestStack;
let repo: GitFixture;
beforeAll(async () => {
  [stack, repo] = await Promise.all([startTestStack({ DRAFTSMAN_STEP_LOG_MAX_BYTES: '1024' }), startGitFixture(1)]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
});

/** The value of one series in Prometheus text format, or undefined when it is absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('after a job, /metrics exposes jobs, steps, container start, pickup, logs and requests', async () => {
  const res = await stack.api<{ id: string }>('POST', '/v1/jobs', {
    repo: repo.url,
    commit: repo.head,
    setup: ['seq 1 1000'],
    validate: ['echo ok', 'exit 3'],
  });
  const job = await stack.waitForEnd(res.body.id);
  expect(job.status).toBe('failed');

  const metrics = await fetch(`${stack.apiUrl}/metrics`, { headers: stack.authHeader });
  expect(metrics.headers.get('content-type')).toContain('text/plain');
  const text = await metrics.text();
  expect(sample(text, 'draftsman_jobs_submitted_total')).toBe(1);
  expect(sample(text, 'draftsman_jobs_finished_total{status="failed"}')).toBe(1);
  expect(sample(text, 'draftsman_step_duration_seconds_count{kind="validate"}')).toBe(2);
  expect(sample(text, 'draftsman_step_duration_seconds_count{kind="setup"}')).toBe(1);
  expect(sample(text, 'draftsman_step_duration_seconds_count{kind="clone"}')).toBe(1);
  expect(sample(text, 'draftsman_container_start_seconds_count')).toBe(4);
  expect(sample(text, 'draftsman_job_pickup_seconds_count')).toBe(1);
  expect(sample(text, 'draftsman_log_bytes_stored_total')).toBeGreaterThan(1000);
  expect(sample(text, 'draftsman_log_truncated_steps_total')).toBe(1);
  expect(sample(text, 'draftsman_running_containers')).toBe(0);
  expect(text).toContain('# TYPE draftsman_orphans_reaped_total counter');
  expect(sample(text, 'draftsman_http_requests_total{method="POST",route="/v1/jobs",status="202"}')).toBe(1);
});

test('the worker process serves /metrics and logs JSON lines that carry the job id and the step', async () => {
  const { freePort } = await import('../../testing/env');
  const { startWorkerProcess } = await import('../../testing/worker-process');
  const { JobsClient } = await import('../../client/jobs');
  const port = await freePort();
  const taskQueue = `${stack.config.DRAFTSMAN_TASK_QUEUE}-process`;
  const worker = await startWorkerProcess({
    TEMPORAL_ADDRESS: stack.config.TEMPORAL_ADDRESS,
    DATABASE_URL: stack.config.DATABASE_URL!,
    DRAFTSMAN_TASK_QUEUE: taskQueue,
    ...stack.workerEnv,
    DRAFTSMAN_WORKER_METRICS_PORT: String(port),
    DRAFTSMAN_LOG_LEVEL: 'INFO',
  });
  try {
    const { id } = await new JobsClient(stack.client, { taskQueue }).start({
      repo: repo.url,
      commit: repo.head,
      validate: ['true'],
    });
    expect((await stack.waitForEnd(id)).status).toBe('succeeded');
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(sample(text, 'draftsman_jobs_finished_total{status="succeeded"}')).toBe(1);
    expect(text).toContain('draftsman_process_resident_memory_bytes');
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok', worker: 'RUNNING', engine: 'ok' });

    const lines = worker
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const finished = lines.filter((l) => l.msg === 'step finished');
    expect(finished.map((l) => l.step)).toEqual(['clone-0', 'validate-0']);
    for (const l of finished) expect(l).toMatchObject({ jobId: id, service: 'draftsman-worker', exitCode: 0 });
    expect(lines.find((l) => l.msg === 'job finished')).toMatchObject({ jobId: id, status: 'succeeded' });
  } finally {
    worker.child.kill('SIGTERM');
    await worker.exited;
  }
});
