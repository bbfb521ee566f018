import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { startTestStack, type TestStack } from '../../testing/stack';

// A step that prints megabytes as fast as it can: the worker stores all of it while the
// engine rotates its own log file, and the API pages through it to the client.
const LINES = 125_000; // 100 bytes each: 12.5 MB
let stack: TestStack;
let repo: GitFixture;
beforeAll(async () => {
  [stack, repo] = await Promise.all([startTestStack({ DRAFTSMAN_STEP_LOG_MAX_BYTES: String(16 * 2 ** 20) }), startGitFixture(1)]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
});

test('12.5 MB printed at full speed is stored whole: every line once, in order, none cut', async () => {
  const res = await stack.api<{ id: string }>('POST', '/v1/jobs', {
    repo: repo.url,
    commit: repo.head,
    setup: [`seq -f '%099.0f' 1 ${LINES}`],
  });
  expect(res.status).toBe(202);
  const job = await stack.waitForEnd(res.body.id);
  expect(job.status).toBe('succeeded');
  const setup = job.steps.find((s) => s.kind === 'setup')!;
  expect(setup).toMatchObject({ logBytes: LINES * 100, logTruncated: false });

  const stream = await fetch(`${stack.apiUrl}/v1/jobs/${job.id}/logs?step=setup-0`, { headers: stack.authHeader });
  expect(stream.status).toBe(200);
  const text = await stream.text();
  const numbers = text
    .trimEnd()
    .split('\n')
    .map((l) => Number((JSON.parse(l) as { text: string }).text));
  expect(numbers.length).toBe(LINES);
  const gaps = numbers.filter((n, i) => n !== i + 1);
  expect(gaps.slice(0, 5)).toEqual([]);
}, 180_000);
