/**
 * Warm starts on the real stack: dependency caches scoped by repository and principal,
 * saved only after setup succeeded and only from a private copy, never writable by the
 * loop; a save cut short leaves the last good cache; the budget evicts the least recently
 * used; workspaces kept after setup, restored for the same setup and for forks; a cache
 * or a workspace that setup wrote a secret into is not kept.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../activities';
import type { Kept } from '../../db/kept-store';
import { KeptStore } from '../../db/kept-store';
import { keptVolumeName } from '../../runner/docker/volumes';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { probed } from '../../testing/faults';
import { startTestStack, type TestStack } from '../../testing/stack';

const SECRET = 'warm-Secret/Value+42';
let stack: TestStack;
let repo: GitFixture;
let kept: KeptStore;
/** Jobs whose saving the probe cuts short, and what the test saw at that moment. */
const cutAtSaving = new Map<string, (at: { jobId: string; step: string | null }) => Promise<void>>();
/** By cache name: what happens right after a job's volume was made from a kept one, before the restore checks its entry. */
const atRestore = new Map<string, () => Promise<void>>();

beforeAll(async () => {
  process.env.DRAFTSMAN_SECRET_WARM_TOKEN = SECRET;
  [stack, repo] = await Promise.all([
    startTestStack(
      { DRAFTSMAN_SECRET_GRANTS: 'admin=warm-token, sdk:*=warm-token' },
      {
        wrap: probed(async (boundary, at) => {
          const restoring = boundary === 'at-restore' && at.step ? atRestore.get(at.step) : undefined;
          if (restoring) {
            atRestore.delete(at.step!);
            await restoring();
            return;
          }
          const cut = boundary === 'at-cache-save' ? cutAtSaving.get(at.jobId) : undefined;
          if (!cut) return;
          cutAtSaving.delete(at.jobId);
          await cut(at);
          // The worker is gone at this instant: nothing after the copy runs (no commit).
          throw new Error('worker lost while saving (test probe)');
        }),
      },
    ),
    startGitFixture(2),
  ]);
  kept = new KeptStore(stack.store.pool);
});
afterAll(async () => {
  // The kept volumes this file made, and their rows.
  for (const k of (await kept?.list()) ?? []) {
    if (!k.scope.startsWith(`repo=${repo?.url}`)) continue;
    await kept.remove(k.id);
    await stack.runner.removeKept(k.id).catch(() => undefined);
  }
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
  delete process.env.DRAFTSMAN_SECRET_WARM_TOKEN;
});

type Trail = { events: { type: string; data: Record<string, unknown> }[] };
const events = async (id: string) => (await stack.api<Trail>('GET', `/v1/jobs/${id}/events`)).body.events;
const eventOf = async (id: string, type: string) => (await events(id)).find((e) => e.type === type)?.data;
const logsOf = async (id: string) => (await fetch(`${stack.apiUrl}/v1/jobs/${id}/logs`, { headers: stack.authHeader })).text();
const scopeOf = (principal: string) => `repo=${repo.url} principal=${principal}`;

/** Every file of a kept volume with its sha256, read by a container of its own: what "byte for byte" compares. */
async function digest(id: string): Promise<string> {
  const container = await stack.docker.createContainer({
    Image: 'draftsman-runner:latest',
    User: '0:0',
    Cmd: ['sh', '-c', 'cd /k && find . -type f | sort | xargs -r sha256sum'],
    HostConfig: { Mounts: [{ Type: 'volume', Source: keptVolumeName(id, 'test'), Target: '/k', ReadOnly: true }], NetworkMode: 'none' },
  });
  try {
    await container.start();
    await container.wait();
    const raw = (await container.logs({ stdout: true, stderr: true })) as unknown as Buffer;
    // The engine's stream headers are control bytes.
    // eslint-disable-next-line no-control-regex
    return raw.toString('latin1').replace(/[\x00-\x08]/g, '');
  } finally {
    await container.remove({ force: true });
  }
}

const entries = async (principal: string, name: string): Promise<Kept[]> =>
  (await kept.list({ kind: 'cache', scope: scopeOf(principal) })).filter((k) => k.name === name);

// Setup prints what the cache held, then writes its own mark there.
const cacheSetup = (name: string) =>
  `if [ -f /cache/${name}/pkg ]; then echo "found $(cat /cache/${name}/pkg)"; else echo "found nothing"; fi; echo "by $DRAFTSMAN_JOB_ID" > /cache/${name}/pkg`;
const cacheSpec = (name: string, extra: Record<string, unknown> = {}) => ({
  repo: repo.url,
  commit: repo.head,
  setup: [cacheSetup(name)],
  caches: [{ name, key: `${name}-{{ hashFiles('marker') }}`, restoreKeys: [`${name}-`] }],
  ...extra,
});

test("principal B with A's key misses (no file) while A's second job hits; a loop step cannot write the cache", async () => {
  const a1 = await stack.submit(cacheSpec('deps'));
  expect((await stack.waitForEnd(a1)).status).toBe('succeeded');
  const miss = await eventOf(a1, 'cache_miss');
  expect(miss).toMatchObject({ name: 'deps', key: expect.stringMatching(/^deps-[0-9a-f]{64}$/) });
  expect(await eventOf(a1, 'cache_saved')).toMatchObject({ name: 'deps', key: miss!.key });
  expect(await logsOf(a1)).toContain('found nothing');

  // A's second job: the same key hits, its setup sees A's first file; its loop cannot write the cache.
  const loop = 'if echo poison > /cache/deps/pkg 2>/dev/null; then echo loop-wrote-cache; else echo loop-refused; fi; ls /cache/deps 2>&1 | head -1';
  const a2 = await stack.submit(cacheSpec('deps', { loop: { command: loop, maxIterations: 1 } }));
  expect((await stack.waitForEnd(a2)).status).toBe('succeeded');
  expect(await eventOf(a2, 'cache_hit')).toMatchObject({ name: 'deps', key: miss!.key, restored: miss!.key, exact: true });
  const a2logs = await logsOf(a2);
  expect(a2logs).toContain(`found by ${a1}`);
  expect(a2logs).toContain('loop-refused');
  expect(a2logs).not.toContain('loop-wrote-cache');
  // A hit on its own key is not saved again: A's entry is the one A's first job saved.
  expect(await eventOf(a2, 'cache_saved')).toBeUndefined();
  const [entry] = await entries('admin', 'deps');
  expect(entry).toMatchObject({ key: miss!.key, jobId: a1 });

  // B (a job started with the SDK: principal sdk:...) with the same key: a miss, no file.
  const b = await stack.jobs.start(cacheSpec('deps') as never);
  const bEnd = await stack.waitForEnd(b.id);
  expect(bEnd.status).toBe('succeeded');
  expect(bEnd.principal).toMatch(/^sdk:/);
  expect(await eventOf(b.id, 'cache_miss')).toMatchObject({ name: 'deps', key: miss!.key });
  expect(await eventOf(b.id, 'cache_hit')).toBeUndefined();
  expect(await logsOf(b.id)).toContain('found nothing');
  // B's save went to B's scope; A's entry is untouched.
  expect(await entries(bEnd.principal!, 'deps')).toEqual([expect.objectContaining({ jobId: b.id, key: miss!.key })]);
  expect((await entries('admin', 'deps')).map((k) => k.jobId)).toEqual([a1]);
});

test("a cache with a path is the workspace's directory in every step; setup skips its install on an exact hit; what a loop writes there stays in the job", async () => {
  // Setup installs only when the lock's own entry was not restored (GitHub Actions' cache-hit).
  const setup =
    'echo "hit=$DRAFTSMAN_CACHE_MODS_HIT at $DRAFTSMAN_CACHE_MODS"; [ "$DRAFTSMAN_CACHE_MODS_HIT" = exact ] || { mkdir -p mods/pkg && echo "installed by $DRAFTSMAN_JOB_ID" > mods/pkg/index; }';
  const loop = 'echo "loop sees $(cat mods/pkg/index)"; echo poison > mods/pkg/index; echo "loop wrote $(cat mods/pkg/index)"; echo change > loop-notes';
  const spec = {
    repo: repo.url,
    commit: repo.head,
    setup: [setup],
    caches: [{ name: 'mods', key: "mods-{{ hashFiles('marker') }}", path: 'mods' }],
    loop: { command: loop, maxIterations: 1 },
    validate: ['echo "validate sees $(cat mods/pkg/index)"'],
  };
  const first = await stack.submit(spec);
  expect((await stack.waitForEnd(first)).status).toBe('succeeded');
  const firstLogs = await logsOf(first);
  expect(firstLogs).toContain('hit=miss at /workspace/mods');
  expect(firstLogs).toContain(`loop sees installed by ${first}`);
  expect(firstLogs).toContain('validate sees poison');
  expect(await eventOf(first, 'cache_saved')).toMatchObject({ name: 'mods' });
  // The cache's directory is no change of the job's: its patch leaves it out.
  const patch = await fetch(`${stack.apiUrl}/v1/jobs/${first}/patch`, { headers: stack.authHeader });
  const diff = await patch.text();
  expect(diff).toContain('loop-notes');
  expect(diff).not.toContain('mods/pkg');

  // The second job: an exact hit, no install; its loop sees what setup left, not the first loop's write.
  const second = await stack.submit(spec);
  expect((await stack.waitForEnd(second)).status).toBe('succeeded');
  expect(await eventOf(second, 'cache_hit')).toMatchObject({ name: 'mods', exact: true });
  const secondLogs = await logsOf(second);
  expect(secondLogs).toContain('hit=exact at /workspace/mods');
  expect(secondLogs).toContain(`loop sees installed by ${first}`);
  expect(secondLogs).not.toContain(`installed by ${second}`);
});

test('two jobs with one key at once each fill their own copy; one save wins whole, the other copy is removed', async () => {
  // Both restore before either saves (setup waits), so both miss and both save; each writes several files.
  const setup = 'for f in a b c; do echo "$f by $DRAFTSMAN_JOB_ID" > /cache/conc/$f; done; sleep 3';
  const spec = { ...cacheSpec('conc'), setup: [setup] };
  const before = new Set((await stack.runner.listKept()).map((k) => k.id));
  const [one, two] = await Promise.all([stack.submit(spec), stack.submit(spec)]);
  const ends = await Promise.all([stack.waitForEnd(one), stack.waitForEnd(two)]);
  expect(ends.map((e) => e.status)).toEqual(['succeeded', 'succeeded']);
  for (const id of [one, two]) expect(await eventOf(id, 'cache_miss')).toMatchObject({ name: 'conc' });
  const saves = await Promise.all([one, two].map((id) => eventOf(id, 'cache_saved')));
  expect(saves.filter((d) => d?.saved === false)).toEqual([expect.objectContaining({ why: 'another job saved this key first' })]);

  // One entry, every file from one job: the winner's.
  const [entry, ...more] = await entries('admin', 'conc');
  expect(more).toEqual([]);
  const files = await digest(entry!.id);
  expect(files.match(/\.\/[abc]/g)).toEqual(['./a', './b', './c']);
  const restored = await stack.submit({ ...cacheSpec('conc'), setup: ['cat /cache/conc/a /cache/conc/b /cache/conc/c'] });
  expect((await stack.waitForEnd(restored)).status).toBe('succeeded');
  const logs = await logsOf(restored);
  for (const f of ['a', 'b', 'c']) expect(logs).toContain(`${f} by ${entry!.jobId}`);
  // The loser's copy is gone: the only kept volume the two jobs made is the entry's.
  const made = (await stack.runner.listKept()).map((k) => k.id).filter((id) => !before.has(id));
  expect(made).toEqual([entry!.id]);
});

test('a failed setup leaves the previous cache byte for byte and saves nothing; the same job succeeding saves', async () => {
  const first = await stack.submit({ ...cacheSpec('fail'), commit: repo.commits[0] });
  expect((await stack.waitForEnd(first)).status).toBe('succeeded');
  const [before] = await entries('admin', 'fail');
  const bytes = await digest(before!.id);
  expect(bytes).toContain('./pkg');

  // Another commit: another key, restored from the first by the prefix; setup rewrites the file, then fails.
  const failed = await stack.submit({ ...cacheSpec('fail'), setup: [cacheSetup('fail'), 'echo more > /cache/fail/extra; exit 3'] });
  expect((await stack.waitForEnd(failed)).status).toBe('failed');
  expect(await eventOf(failed, 'cache_hit')).toMatchObject({ restored: before!.key, exact: false });
  expect(await eventOf(failed, 'cache_saved')).toBeUndefined();
  expect((await entries('admin', 'fail')).map((k) => k.id)).toEqual([before!.id]);
  expect(await digest(before!.id)).toBe(bytes);

  // The control: the same setup without the failure saves under the new key.
  const ok = await stack.submit({ ...cacheSpec('fail'), setup: [cacheSetup('fail'), 'echo more > /cache/fail/extra'] });
  expect((await stack.waitForEnd(ok)).status).toBe('succeeded');
  expect(await eventOf(ok, 'cache_saved')).toMatchObject({ name: 'fail' });
  expect(await entries('admin', 'fail')).toHaveLength(2);
  expect(await digest(before!.id)).toBe(bytes);
});

test('a worker lost exactly at saving leaves the last good cache; the retry saves, and the janitor removes the copy cut short', async () => {
  const first = await stack.submit({ ...cacheSpec('cut'), commit: repo.commits[0] });
  expect((await stack.waitForEnd(first)).status).toBe('succeeded');
  const [good] = await entries('admin', 'cut');
  const goodBytes = await digest(good!.id);

  let seen: { rows: string[]; goodBytes: string } | null = null;
  // Setup takes a few seconds more than the answer to the submit: the probe is in place before the save.
  const jobId = await stack.submit({ ...cacheSpec('cut'), setup: ['sleep 2', cacheSetup('cut')] });
  cutAtSaving.set(jobId, async () => {
    // The new copy is written, not committed: no job would restore it.
    seen = { rows: (await entries('admin', 'cut')).map((k) => k.id), goodBytes: await digest(good!.id) };
  });
  expect((await stack.waitForEnd(jobId)).status).toBe('succeeded');
  expect(seen).not.toBeNull();
  expect(seen!.rows).toEqual([good!.id]);
  expect(seen!.goodBytes).toBe(goodBytes);

  // The retry saved the new key; the good entry is intact; the cut copy is named by no row.
  const after = await entries('admin', 'cut');
  expect(after).toHaveLength(2);
  expect(await digest(good!.id)).toBe(goodBytes);
  const named = new Set((await kept.list()).map((k) => k.id));
  const orphans = (await stack.runner.listKept()).filter((v) => !named.has(v.id)).map((v) => v.id);
  expect(orphans.length).toBeGreaterThanOrEqual(1);

  const janitor = createActivities({
    runner: stack.runner,
    store: stack.store,
    config: stack.config,
    describeJob: (j) => stack.jobs.describe(j),
    host: { id: 'x', taskQueue: good!.hostQueue, lostAfterSeconds: 60, moves: 0 },
    keptOrphanSeconds: 0,
  });
  const swept = (await new MockActivityEnvironment().run(janitor.sweep)) as { removed: string[] };
  for (const o of orphans) expect(swept.removed).toContain(`kept:${o}`);
  expect((await stack.runner.listKept()).map((v) => v.id)).toEqual(expect.arrayContaining(after.map((k) => k.id)));
});

test('over the budget, the janitor brings the scope back within it by evicting the least recently used entry', async () => {
  // Three entries of about 700 KiB each; the first is then used again.
  const big = (n: number) => ({
    repo: repo.url,
    commit: repo.head,
    setup: ['head -c 700000 /dev/urandom > /cache/big/blob'],
    caches: [{ name: 'big', key: `big-${n}` }],
  });
  const ids: string[] = [];
  for (const n of [1, 2, 3]) {
    ids.push(await stack.submit(big(n)));
    expect((await stack.waitForEnd(ids.at(-1)!)).status).toBe('succeeded');
  }
  const again = await stack.submit(big(1));
  expect((await stack.waitForEnd(again)).status).toBe('succeeded');
  expect(await eventOf(again, 'cache_hit')).toMatchObject({ key: 'big-1', exact: true });
  const before = await entries('admin', 'big');
  expect(before.map((k) => k.key).sort()).toEqual(['big-1', 'big-2', 'big-3']);
  const total = (list: Kept[]) => list.reduce((n, k) => n + k.bytes, 0);
  const scopeTotal = async () => total(await kept.list({ scope: scopeOf('admin') }));
  // A budget just under what the scope holds: one entry must go.
  const budgetMb = Math.floor((await scopeTotal()) / 2 ** 20 - 0.01);
  expect(budgetMb).toBeGreaterThan(0);
  const janitor = createActivities({
    runner: stack.runner,
    store: stack.store,
    config: { ...stack.config, DRAFTSMAN_CACHE_SCOPE_BUDGET_MB: budgetMb },
    describeJob: (j) => stack.jobs.describe(j),
    host: { id: 'x', taskQueue: before[0]!.hostQueue, lostAfterSeconds: 60, moves: 0 },
  });
  const swept = (await new MockActivityEnvironment().run(janitor.sweep)) as { removed: string[] };
  const big2 = before.find((k) => k.key === 'big-2')!;
  expect(swept.removed).toContain(`kept:${big2.id}`);
  expect((await entries('admin', 'big')).map((k) => k.key).sort()).toEqual(['big-1', 'big-3']);
  expect(await scopeTotal()).toBeLessThanOrEqual(budgetMb * 2 ** 20);
  expect((await stack.runner.listKept()).map((v) => v.id)).not.toContain(big2.id);
});

test('a cache setup wrote a secret into is not saved: cache_refused names the file, the scope keeps no entry, and a clean setup with the same secret saves', async () => {
  const name = `secret${process.pid}`;
  // The secret in its hex encoding, in a file of the cache.
  const leaky = await stack.submit(
    cacheSpec(name, { secrets: { TOKEN: 'warm-token' }, setup: [`printf %s "$TOKEN" | od -An -tx1 | tr -d ' \\n' > /cache/${name}/token.hex`] }),
  );
  expect((await stack.waitForEnd(leaky)).status).toBe('succeeded');
  expect(await eventOf(leaky, 'cache_refused')).toMatchObject({ name, files: ['token.hex'], why: expect.stringContaining('secrets') });
  expect(await eventOf(leaky, 'cache_saved')).toBeUndefined();
  expect(await entries('admin', name)).toEqual([]);
  // The control: setup received the secret and kept it out of the cache.
  const clean = await stack.submit(cacheSpec(name, { secrets: { TOKEN: 'warm-token' } }));
  expect((await stack.waitForEnd(clean)).status).toBe('succeeded');
  expect(await eventOf(clean, 'cache_saved')).toMatchObject({ name, bytes: expect.any(Number) });
  expect(await entries('admin', name)).toHaveLength(1);
});

test('an entry evicted while a job restores it: the job goes on from an empty cache, and the kept volume goes only once no job is layered on it', async () => {
  const name = `evicted${process.pid}`;
  const first = await stack.submit(cacheSpec(name));
  expect((await stack.waitForEnd(first)).status).toBe('succeeded');
  const [entry] = await entries('admin', name);
  expect(entry).toBeDefined();
  // Between the second job's restore and its look at the entry: evicted as the janitor does it, the row first.
  let removedAtOnce: boolean | undefined;
  atRestore.set(name, async () => {
    await kept.remove(entry!.id);
    removedAtOnce = await stack.runner.removeKept(entry!.id);
  });
  const second = await stack.submit(cacheSpec(name));
  expect((await stack.waitForEnd(second)).status).toBe('succeeded');
  expect(removedAtOnce).toBeDefined();
  expect(await eventOf(second, 'cache_hit')).toBeUndefined();
  expect(await eventOf(second, 'cache_miss')).toMatchObject({ name });
  expect(await logsOf(second)).toContain('found nothing');
  // Its own save takes the key again.
  expect(await eventOf(second, 'cache_saved')).toMatchObject({ name });
  expect((await entries('admin', name)).map((k) => k.jobId)).toEqual([second]);
  // The job's volumes went with it: nothing holds the evicted volume now.
  expect(await stack.runner.removeKept(entry!.id)).toBe(true);
  expect((await stack.runner.listKept()).map((v) => v.id)).not.toContain(entry!.id);
});

test('a workspace kept after setup: the same setup skips clone and setup, a fork sees its parent files, and a setup that wrote a secret is not kept', async () => {
  const spec = {
    repo: repo.url,
    commit: repo.head,
    setup: ['echo "made by $DRAFTSMAN_JOB_ID" > made-by-setup'],
    snapshot: { after: 'setup' },
    validate: ['cat made-by-setup', 'cat marker'],
  };
  const parent = await stack.submit(spec);
  const parentEnd = await stack.waitForEnd(parent);
  expect(parentEnd.status).toBe('succeeded');
  expect(await eventOf(parent, 'snapshot_saved')).toMatchObject({ key: expect.stringMatching(/^setup-[0-9a-f]{64}$/) });

  // The same setup: restored, no clone and no setup step ran.
  const same = await stack.submit(spec);
  const sameEnd = await stack.waitForEnd(same);
  expect(sameEnd.status).toBe('succeeded');
  expect(await eventOf(same, 'setup_restored')).toMatchObject({ from: parent });
  expect(sameEnd.steps.map((s) => s.kind)).toEqual(['validate', 'validate']);
  expect(await logsOf(same)).toContain(`made by ${parent}`);

  // Forks: the parent's files, without a clone; their own steps run.
  const fork = await stack.submit({
    repo: repo.url,
    commit: repo.head,
    from: { job: parent, after: 'setup' },
    loop: { command: 'cat made-by-setup; echo fork > fork-file', maxIterations: 1 },
    validate: ['test -f fork-file'],
  });
  const forkEnd = await stack.waitForEnd(fork);
  expect(forkEnd.status).toBe('succeeded');
  expect(forkEnd.steps.map((s) => s.kind)).toEqual(['loop', 'validate']);
  expect(await eventOf(fork, 'setup_restored')).toMatchObject({ from: parent });
  expect(await logsOf(fork)).toContain(`made by ${parent}`);
  // Another commit than the kept workspace's: refused, saying so.
  const wrong = await stack.submit({ repo: repo.url, commit: repo.commits[0], from: { job: parent, after: 'setup' } });
  const wrongEnd = await stack.waitForEnd(wrong);
  expect(wrongEnd.status).toBe('failed');
  expect(wrongEnd.error).toContain(`from: job ${parent} kept a workspace of commit ${repo.head}`);

  // Setup that received a secret and wrote it (base64) into a file: nothing kept, and the event names the file.
  const secretSpec = {
    repo: repo.url,
    commit: repo.head,
    secrets: { TOKEN: 'warm-token' },
    setup: ['printf %s "$TOKEN" | base64 > token.b64'],
    snapshot: { after: 'setup' },
  };
  const leaky = await stack.submit(secretSpec);
  expect((await stack.waitForEnd(leaky)).status).toBe('succeeded');
  expect(await eventOf(leaky, 'snapshot_refused')).toMatchObject({ files: ['token.b64'] });
  expect(await eventOf(leaky, 'snapshot_saved')).toBeUndefined();
  // The control: a setup that received the secret and kept it out of the workspace is kept.
  const clean = await stack.submit({ ...secretSpec, setup: ['test -n "$TOKEN" && echo ok > checked'] });
  expect((await stack.waitForEnd(clean)).status).toBe('succeeded');
  expect(await eventOf(clean, 'snapshot_saved')).toMatchObject({ key: expect.any(String) });
});

test('a workspace kept after a loop step: a fork from it sees that iteration, not a later one; a point the parent did not keep is refused', async () => {
  const parent = await stack.submit({
    repo: repo.url,
    commit: repo.head,
    loop: { command: 'echo "iteration by $DRAFTSMAN_JOB_ID" >> progress', until: 'test $(wc -l < progress) -ge 3', maxIterations: 3 },
    snapshot: { after: 'loop-2' },
  });
  const parentEnd = await stack.waitForEnd(parent);
  expect(parentEnd.status).toBe('succeeded');
  expect(parentEnd.steps.filter((s) => s.kind === 'loop')).toHaveLength(3);
  expect(await eventOf(parent, 'snapshot_saved')).toMatchObject({ key: parent, after: 'loop-2' });
  // A fork from it runs its own loop on the workspace as it was after iteration 2 (and may keep its own).
  const fork = await stack.submit({
    repo: repo.url,
    commit: repo.head,
    from: { job: parent, after: 'loop-2' },
    loop: { command: 'echo "lines $(wc -l < progress)"', maxIterations: 1 },
    snapshot: { after: 'loop-1' },
  });
  const forkEnd = await stack.waitForEnd(fork);
  expect(forkEnd.status).toBe('succeeded');
  expect(forkEnd.steps.map((s) => s.kind)).toEqual(['loop']);
  expect(await eventOf(fork, 'setup_restored')).toMatchObject({ from: parent });
  expect(await logsOf(fork)).toContain('lines 2');
  expect(await eventOf(fork, 'snapshot_saved')).toMatchObject({ key: fork, after: 'loop-1' });
  // After setup (the parent kept none there) and after iteration 3 (not kept): refused, saying where.
  for (const after of ['setup', 'loop-3']) {
    const refused = await stack.submit({ repo: repo.url, commit: repo.head, from: { job: parent, after } });
    const end = await stack.waitForEnd(refused);
    expect(end.status).toBe('failed');
    expect(end.error).toContain(`from: job ${parent} kept no workspace after ${after}`);
  }
});

test('the caches API lists the entries and forgets one (admin scope); a reader is refused', async () => {
  const list = await stack.api<{ caches: Kept[]; bytes: number }>('GET', '/v1/caches?kind=cache');
  expect(list.status).toBe(200);
  expect(list.body.caches.length).toBeGreaterThan(0);
  expect(list.body.bytes).toBe(list.body.caches.reduce((n, k) => n + k.bytes, 0));
  expect((await stack.api('GET', '/v1/caches?kind=other')).status).toBe(400);
  const reader = await stack.api('GET', '/v1/caches', undefined, { authorization: 'Bearer test-reader-token-0123456789' });
  expect(reader.status).toBe(403);
  const one = list.body.caches[0]!;
  const gone = await stack.api<Kept>('DELETE', `/v1/caches/${one.id}`);
  expect(gone.status).toBe(200);
  expect(gone.body.id).toBe(one.id);
  expect((await stack.api('DELETE', `/v1/caches/${one.id}`)).status).toBe(404);
  expect(await kept.get(one.id)).toBeNull();
  await stack.runner.removeKept(one.id);
});
