/**
 * Webhooks on the real stack: a receiver of the test's own on 127.0.0.1 that fails the
 * first deliveries, an API (its dispatcher) and a worker restarted while it fails; every
 * event arrives, retries carry the delivery's id, every signature verifies.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { JobsClient } from '../../client/jobs';
import { WebhookStore } from '../../db/webhook-store';
import { WebhookDispatcher } from '../../webhooks/dispatcher';
import { verify } from '../../webhooks/signing';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { startTestStack, TEST_TOKENS, type TestStack } from '../../testing/stack';
import { startWorkerProcess, type WorkerProcess } from '../../testing/worker-process';

interface Received {
  headers: Record<string, string | undefined>;
  body: string;
  answered: number;
  at: number;
}

let stack: TestStack;
let repo: GitFixture;
let receiver: http.Server;
let port: number;
const received: Received[] = [];
const failFirst = 3;

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const answered = received.length < failFirst ? 500 : 204;
      received.push({ headers: req.headers as Record<string, string>, body, answered, at: Date.now() });
      res.statusCode = answered;
      res.end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  port = (receiver.address() as AddressInfo).port;
  [stack, repo] = await Promise.all([startTestStack({ DRAFTSMAN_WEBHOOK_EXCEPTIONS: `127.0.0.1:${port}` }), startGitFixture(1)]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repo?.stop(), new Promise((r) => receiver?.close(r))]);
});

const until = async (what: string, ok: () => boolean | Promise<boolean>, ms = 60_000) => {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

test('registering needs the admin scope and a target the rules allow', async () => {
  const reader = { authorization: `Bearer ${TEST_TOKENS.reader}` };
  expect((await stack.api('POST', '/v1/webhooks', { url: `http://127.0.0.1:${port}/` }, reader)).status).toBe(403);
  for (const url of ['http://127.0.0.1:1/', 'http://10.0.0.1/', 'http://169.254.169.254/', 'file:///etc/passwd', 'https://u:p@example.com/']) {
    const refused = await stack.api<{ code: string; field: string }>('POST', '/v1/webhooks', { url });
    expect([url, refused.status, refused.body.field]).toEqual([url, 400, 'url']);
  }
  expect((await stack.api('POST', '/v1/webhooks', { url: 'https://example.com/', events: ['job.nope'] })).status).toBe(400);
  expect((await stack.api('GET', '/v1/webhooks/wh_nope')).status).toBe(404);
});

test('every event reaches a receiver that fails the first 3 deliveries, across an API and a worker restart; retries keep their id; signatures verify', async () => {
  const created = await stack.api<{ id: string; secret: string }>('POST', '/v1/webhooks', {
    url: `http://127.0.0.1:${port}/hook`,
    description: 'test receiver',
  });
  expect(created.status).toBe(201);
  const { id: endpoint, secret } = created.body;
  expect(secret).toMatch(/^whsec_/);
  expect((await stack.api<Record<string, unknown>>('GET', `/v1/webhooks/${endpoint}`)).body).not.toHaveProperty('secret');

  const store = new WebhookStore(stack.store.pool);
  const dispatcher = (log: string[]) =>
    new WebhookDispatcher({
      store,
      exceptions: [{ host: '127.0.0.1', port }],
      retrySeconds: [1, 1, 1, 1, 1, 1],
      endpoints: [endpoint],
      pollMs: 100,
      log: (l) => log.push(l),
    }).start();
  const taskQueue = `${stack.config.DRAFTSMAN_TASK_QUEUE}-webhooks`;
  const env = {
    TEMPORAL_ADDRESS: stack.config.TEMPORAL_ADDRESS,
    DATABASE_URL: stack.config.DATABASE_URL!,
    DRAFTSMAN_TASK_QUEUE: taskQueue,
    ...stack.workerEnv,
  };
  const logs: string[] = [];
  let worker: WorkerProcess = await startWorkerProcess(env);
  let first: WebhookDispatcher | null = dispatcher(logs);
  let second: WebhookDispatcher | null = null;
  try {
    const { id: jobId } = await new JobsClient(stack.client, { taskQueue }).start({
      repo: repo.url,
      commit: repo.head,
      setup: ['sleep 2'],
      validate: ['true'],
    });
    // While the receiver still fails: the API goes (its dispatcher with it), the worker is killed, both come back.
    await until('two failed deliveries', () => received.length >= 2);
    await first.stop();
    first = null;
    worker.child.kill('SIGKILL');
    await worker.exited;
    worker = await startWorkerProcess(env);
    second = dispatcher(logs);

    const job = await stack.waitForEnd(jobId);
    expect(job.status).toBe('succeeded');
    const deliveries = async () =>
      (
        await stack.api<{ deliveries: { id: string; status: string; eventType: string; lastStatus: number; attempts: number }[] }>(
          'GET',
          `/v1/webhooks/${endpoint}/deliveries?limit=100`,
        )
      ).body.deliveries;
    await until('every delivery delivered', async () => {
      const all = await deliveries();
      return all.length > 0 && all.every((d) => d.status === 'delivered') && all.some((d) => d.eventType === 'job.ended');
    });
    const listed = await deliveries();
    const types = listed.map((d) => d.eventType);
    expect(types.filter((t) => t === 'job.started')).toHaveLength(1);
    expect(types.filter((t) => t === 'job.ended')).toHaveLength(1);
    // clone, setup and validate
    expect(types.filter((t) => t === 'job.step_finished').length).toBeGreaterThanOrEqual(3);
    for (const d of listed) expect(d.lastStatus).toBe(204);

    // The receiver's view: every delivery accepted once at least, retries with the same id, all signed.
    const accepted = new Set(received.filter((r) => r.answered === 204).map((r) => r.headers['webhook-id']));
    expect([...accepted].sort()).toEqual(listed.map((d) => d.id).sort());
    const failed = received.filter((r) => r.answered === 500);
    expect(failed).toHaveLength(3);
    for (const f of failed) expect(accepted.has(f.headers['webhook-id'])).toBe(true);
    for (const r of received) {
      expect(verify(secret, r.headers, r.body, Math.floor(r.at / 1000))).toBe(true);
      const payload = JSON.parse(r.body) as { type: string; data: { jobId: string } };
      expect(payload.data.jobId).toBe(jobId);
      expect(payload.type).toMatch(/^job\./);
    }
    const ended = received.find((r) => (JSON.parse(r.body) as { type: string }).type === 'job.ended')!;
    expect(JSON.parse(ended.body)).toMatchObject({ data: { status: 'succeeded' } });

    // Rotation: a redelivery carries the new secret's signature and the old one's.
    const rotated = await stack.api<{ secret: string }>('POST', `/v1/webhooks/${endpoint}/rotate`);
    expect(rotated.status).toBe(200);
    const before = received.length;
    const redo = listed[0]!.id;
    expect((await stack.api('POST', `/v1/webhooks/${endpoint}/deliveries/${redo}/redeliver`)).status).toBe(202);
    await until('the redelivery', () => received.length > before);
    const again = received[received.length - 1]!;
    expect(again.headers['webhook-id']).toBe(redo);
    expect(verify(rotated.body.secret, again.headers, again.body, Math.floor(again.at / 1000))).toBe(true);
    expect(verify(secret, again.headers, again.body, Math.floor(again.at / 1000))).toBe(true);
    expect((await stack.api('POST', `/v1/webhooks/${endpoint}/deliveries/msg_${'0'.repeat(32)}/redeliver`)).status).toBe(404);
  } finally {
    await Promise.allSettled([first?.stop(), second?.stop()]);
    worker.child.kill('SIGTERM');
    await worker.exited;
    expect((await stack.api('DELETE', `/v1/webhooks/${endpoint}`)).status).toBe(204);
    expect((await stack.api('GET', `/v1/webhooks/${endpoint}`)).status).toBe(404);
  }
});
