/**
 * Concurrency keys on the real stack, with room for one job at a time: jobs over their
 * key's limit wait queued (never refused), keys take turns, a waiting job says why, and
 * a cancel of a waiting job ends it at once.
 */
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { waitFor } from '../../testing/helpers';
import { startTestStack, type TestStack } from '../../testing/stack';

let stack: TestStack;
let repoA: GitFixture;
let repoB: GitFixture;

beforeAll(async () => {
  [stack, repoA, repoB] = await Promise.all([startTestStack({ DRAFTSMAN_HOST_CAPACITY: '1' }), startGitFixture(1), startGitFixture(1)]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repoA?.stop(), repoB?.stop()]);
});

type Trail = { events: { type: string; at: string }[] };
const placedAt = async (id: string) => (await stack.api<Trail>('GET', `/v1/jobs/${id}/events`)).body.events.find((e) => e.type === 'placed')?.at ?? null;

test("3 jobs of repository A then 3 of B, key repo limit 1, room for one job: B's first starts before A's third, and the keys take turns", async () => {
  const spec = (repo: GitFixture) => ({ repo: repo.url, commit: repo.head, setup: ['sleep 1'], concurrency: { key: 'repo', limit: 1 } });
  const a: string[] = [];
  const b: string[] = [];
  for (let i = 0; i < 3; i++) a.push(await stack.submit(spec(repoA)));
  for (let i = 0; i < 3; i++) b.push(await stack.submit(spec(repoB)));
  // While A's first runs, A's others wait for their key, and B's first for room.
  await waitFor(
    async () => (await stack.api<{ waiting?: string }>('GET', `/v1/jobs/${a[1]}`)).body.waiting?.startsWith('waiting for its concurrency key repo:') ?? false,
    "A's second waiting for its key",
    { timeoutMs: 30_000 },
  );
  const ended = await Promise.all([...a, ...b].map((id) => stack.waitForEnd(id, 120_000)));
  expect(ended.map((j) => j.status)).toEqual([...a, ...b].map(() => 'succeeded'));
  const at = new Map(await Promise.all([...a, ...b].map(async (id) => [id, await placedAt(id)] as const)));
  const order = [...at.entries()]
    .sort((x, y) => x[1]!.localeCompare(y[1]!))
    .map(([id]) => (a.includes(id) ? `A${a.indexOf(id) + 1}` : `B${b.indexOf(id) + 1}`));
  expect(order).toEqual(['A1', 'B1', 'A2', 'B2', 'A3', 'B3']);
});

test('a cancel of a job waiting for its key ends it at once, with no step run', async () => {
  const spec = { repo: repoA.url, commit: repoA.head, setup: ['sleep 5'], concurrency: { key: 'one-at-a-time', limit: 1 } };
  const running = await stack.submit(spec);
  const waiting = await stack.submit(spec);
  await waitFor(
    async () =>
      (await stack.api<{ waiting?: string }>('GET', `/v1/jobs/${waiting}`)).body.waiting ===
      'waiting for its concurrency key key:one-at-a-time: 1 of its jobs hold a host (limit 1)',
    'the second job waiting for its key',
    { timeoutMs: 30_000 },
  );
  const asked = Date.now();
  expect((await stack.api('POST', `/v1/jobs/${waiting}/cancel`, { reason: 'not needed' })).status).toBe(202);
  const end = await stack.waitForEnd(waiting, 30_000);
  expect(end).toMatchObject({ status: 'cancelled', steps: [] });
  // Ended while the first still runs its 5 s step.
  expect(Date.now() - asked).toBeLessThan(4_000);
  expect((await stack.waitForEnd(running, 60_000)).status).toBe('succeeded');
});
