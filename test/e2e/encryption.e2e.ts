import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { startTestStack, TEST_TOKENS, type TestStack } from '../../testing/stack';

let stack: TestStack;
let repo: GitFixture;
beforeAll(async () => {
  [stack, repo] = await Promise.all([startTestStack({ DRAFTSMAN_CODEC_CORS_ORIGINS: 'http://127.0.0.1:8233' }), startGitFixture(1)]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
});

interface JsonPayload {
  metadata: Record<string, string>;
  data: string;
}

test("the server's raw history holds no plaintext spec, and the codec endpoint decrypts it for a reader", async () => {
  const marker = 'plaintext-marker-7f3a';
  const res = await stack.api<{ id: string }>('POST', '/v1/jobs', {
    repo: repo.url,
    commit: repo.head,
    setup: [`echo ${marker}`],
    env: { MARKER: marker },
  });
  const id = res.body.id;
  expect((await stack.waitForEnd(id)).status).toBe('succeeded');

  // Raw history from the server, as a client without the key would see it.
  const { history } = await stack.client.workflowService.getWorkflowExecutionHistory({
    namespace: stack.config.TEMPORAL_NAMESPACE,
    execution: { workflowId: id },
  });
  const events = history?.events ?? [];
  expect(events.length).toBeGreaterThan(10);
  const raw = Buffer.from(JSON.stringify(events)).toString('latin1');
  const allPayloadBytes = Buffer.concat(
    events
      .flatMap((e) => [
        ...(e.workflowExecutionStartedEventAttributes?.input?.payloads ?? []),
        ...(e.activityTaskScheduledEventAttributes?.input?.payloads ?? []),
        ...(e.activityTaskCompletedEventAttributes?.result?.payloads ?? []),
        ...(e.workflowExecutionCompletedEventAttributes?.result?.payloads ?? []),
      ])
      .map((p) => Buffer.from(p.data ?? [])),
  ).toString('latin1');
  expect(allPayloadBytes.length).toBeGreaterThan(100);
  for (const text of [marker, 'echo ', '"setup"', repo.head.slice(0, 20)]) {
    expect(allPayloadBytes).not.toContain(text);
  }
  expect(raw).not.toContain(marker);
  const input = events[0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
  expect(Buffer.from(input.metadata!.encoding!).toString()).toBe('binary/encrypted');

  // The codec endpoint, as the Web UI calls it: CORS preflight, then decode with a read token.
  const preflight = await fetch(`${stack.apiUrl}/codec/decode`, {
    method: 'OPTIONS',
    headers: { origin: 'http://127.0.0.1:8233', 'access-control-request-method': 'POST' },
  });
  expect(preflight.status).toBe(204);
  expect(preflight.headers.get('access-control-allow-origin')).toBe('http://127.0.0.1:8233');
  const payloads: JsonPayload[] = [
    {
      metadata: Object.fromEntries(Object.entries(input.metadata!).map(([k, v]) => [k, Buffer.from(v!).toString('base64')])),
      data: Buffer.from(input.data!).toString('base64'),
    },
  ];
  const decode = (token?: string) =>
    fetch(`${stack.apiUrl}/codec/decode`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ payloads }),
    });
  expect((await decode()).status).toBe(401);
  const decoded = (await (await decode(TEST_TOKENS.reader)).json()) as { payloads: JsonPayload[] };
  const spec = JSON.parse(Buffer.from(decoded.payloads[0]!.data, 'base64').toString()) as { setup: string[] };
  expect(spec.setup).toEqual([`echo ${marker}`]);
});
