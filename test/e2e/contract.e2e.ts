/**
 * The API against its own document, by an external property-based tester: schemathesis
 * (infra/scripts/ensure-schemathesis.sh) generates requests for every operation from
 * /openapi.json, valid and not, and checks every answer (status codes, content types,
 * headers, response schemas, that invalid input is refused and valid input accepted).
 * Jobs it starts go to a task queue no worker serves, so nothing runs; this API has no
 * webhook dispatcher, so the endpoints it registers receive nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createApp } from '../../api/app';
import { Authenticator, parseTokens } from '../../api/auth';
import { JobsClient } from '../../client/jobs';
import { dataConverterFor } from '../../common/codec';
import { TEST_DATA_DIR } from '../../testing/env';
import { listen, runTool } from '../../testing/helpers';
import { startTestStack, TEST_TOKENS, type TestStack } from '../../testing/stack';

const SCHEMATHESIS = path.join(TEST_DATA_DIR, '..', 'tools', 'schemathesis', 'bin', 'schemathesis');

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

test('schemathesis finds no difference between the API and its OpenAPI document', async () => {
  const taskQueue = `contract-no-worker-${process.pid}`;
  const app = createApp({
    store: stack.store,
    jobs: new JobsClient(stack.jobs.client, { taskQueue }),
    codec: dataConverterFor(stack.config)?.payloadCodecs[0],
    config: stack.config,
    auth: new Authenticator(parseTokens(`contract:read+write+approve+admin:${TEST_TOKENS.admin}`, 'test'), 1_000_000),
  });
  const server = await listen(app);
  const scratch = path.join(TEST_DATA_DIR, `schemathesis-${process.pid}`);
  fs.mkdirSync(scratch, { recursive: true });
  try {
    const run = await runTool(
      SCHEMATHESIS,
      [
        '--config-file',
        path.join(__dirname, '..', 'contract', 'schemathesis.toml'),
        'run',
        `${server.url}/openapi.json`,
        '--url',
        server.url,
        '--checks',
        'all',
        '--max-examples',
        '15',
        '--seed',
        '20261203',
        '--workers',
        '2',
        '--header',
        `Authorization: Bearer ${TEST_TOKENS.admin}`,
        '--request-timeout',
        '30',
        '--max-time',
        '90',
        '--no-color',
        '--generation-database',
        'none',
      ],
      // Its cache goes to a folder of its own, removed after.
      { cwd: scratch, timeout: 240_000, env: { ...process.env, SCHEMATHESIS_TELEMETRY: 'false' } },
    );
    if (process.env.CONTRACT_OUT) fs.writeFileSync(process.env.CONTRACT_OUT, run.out);
    // Its counts in one line of the test log. Its own summary stays out of a passing run's
    // log: it ends in a pytest-like "N warnings in Ns" line, which log readers that look
    // for a test runner's summary take for a run of no test.
    const counts = /Tested: (\d+)[\s\S]*?(\d+) generated, (\d+) passed(?:, (\d+) skipped)?\s*\n/.exec(run.out);
    if (run.code !== 0 || !counts) throw new Error(`schemathesis exited ${run.code}:\n${run.out.slice(-8000)}`);
    const [, operations, generated, ok, skipped = '0'] = counts;
    console.log(`schemathesis: ${operations} operations, ${generated} cases generated, ${ok} conforming, ${skipped} skipped`);
    expect(Number(ok)).toBe(Number(generated));
  } finally {
    await server.close();
    fs.rmSync(scratch, { recursive: true, force: true });
    // The jobs it started never ran: their workflows and rows go.
    const ids: string[] = [];
    for await (const w of stack.client.workflow.list({ query: `TaskQueue = "${taskQueue}"` })) ids.push(w.workflowId);
    await Promise.all(
      ids.map((id) =>
        stack.client.workflow
          .getHandle(id)
          .terminate('contract test over')
          .catch(() => undefined),
      ),
    );
    await stack.store.pool.query('DELETE FROM jobs WHERE id = ANY($1::text[])', [ids]);
    // And the webhook endpoints it registered (this API sends no deliveries).
    await stack.store.pool.query("DELETE FROM webhook_endpoints WHERE created_by = 'contract'");
    console.log(`removed ${ids.length} jobs the run started`);
  }
}, 300_000);
