/**
 * The agent is the adversary, on the real stack: each attack is written as a hostile
 * loop command would write it, and each test has a positive control in the same job
 * (the attack working where it may: in the agent's own steps), so that a probe that could
 * not see the leak does not pass.
 */
import { createHash } from 'node:crypto';
import type { JobView } from '../../common/job';
import { KeptStore } from '../../db/kept-store';
import { type GitFixture, startGitFixture } from './git-fixture';
import { startTestStack, type TestStack } from './stack';

const READ = 'adv-Read/Token+0123456789';
const PUSH = 'adv-Push/Token+9876543210';
/** A form no masker knows: the value reversed. */
const reversed = (v: string) => [...v].reverse().join('');

let stack: TestStack;
let repo: GitFixture;

beforeAll(async () => {
  process.env.DRAFTSMAN_SECRET_ADV_READ = READ;
  process.env.DRAFTSMAN_SECRET_ADV_PUSH = PUSH;
  [stack, repo] = await Promise.all([startTestStack({ DRAFTSMAN_SECRET_GRANTS: 'admin=adv-read+adv-push' }), startGitFixture(1)]);
});
afterAll(async () => {
  // The workspaces this file's jobs kept, and their rows.
  const kept = stack && new KeptStore(stack.store.pool);
  for (const k of (await kept?.list()) ?? []) {
    if (!k.scope.startsWith(`repo=${repo?.url}`)) continue;
    await kept!.remove(k.id);
    await stack.runner.removeKept(k.id).catch(() => undefined);
  }
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
});

interface Line {
  step: string;
  text: string;
}

async function logsOf(id: string): Promise<Line[]> {
  const text = await (await fetch(`${stack.apiUrl}/v1/jobs/${id}/logs`, { headers: stack.authHeader })).text();
  return text ? text.trimEnd().split('\n').map((l) => JSON.parse(l) as Line) : [];
}
const stepText = (lines: Line[], step: string) => lines.filter((l) => l.step === step).map((l) => l.text).join('\n');
const patchOf = async (id: string) => Buffer.from(await (await fetch(`${stack.apiUrl}/v1/jobs/${id}/patch`, { headers: stack.authHeader })).arrayBuffer());

/**
 * A program the agent leaves in its `.git`: it notes the step kind it ran in (in the
 * workspace, where a later step can read it) and prints every secret it finds in its
 * environment reversed, a form the log masker does not know.
 */
const EVIL = [
  '#!/bin/sh',
  'echo "ran in ${DRAFTSMAN_STEP_KIND:-?}" >> /workspace/.git/witness 2>/dev/null',
  "env | grep _TOKEN= | awk '{s=\"\"; for (i = length($0); i > 0; i--) s = s substr($0, i, 1); print \"leak:\" s}'",
  // A filter's clean must hand the contents on.
  'case "$(basename "$0")" in clean) cat;; esac',
  'exit 0',
].join('\n');

/** An external diff that shows the approver a change other than the workspace's. */
const FAKE_DIFF = ['#!/bin/sh', 'echo "diff --git a/innocent.txt b/innocent.txt"', 'echo "FAKE-DIFF: nothing to see here"'].join('\n');

/** The hostile loop: every git config that names a program, hooks, attributes; a real change; and the agent's own git run (the positive control). */
const HOSTILE_LOOP = [
  'set -e',
  'mkdir -p .git/evil-hooks',
  `printf '%s\\n' '${EVIL.replace(/'/g, "'\\''")}' > .git/evil`,
  `printf '%s\\n' '${FAKE_DIFF.replace(/'/g, "'\\''")}' > .git/fake-diff`,
  'cp .git/evil .git/clean',
  'chmod +x .git/evil .git/clean .git/fake-diff',
  'for h in pre-commit post-commit post-checkout pre-push post-index-change reference-transaction applypatch-msg pre-applypatch post-applypatch post-rewrite; do cp .git/evil .git/evil-hooks/$h; cp .git/evil .git/hooks/$h; done',
  'git config core.hooksPath /workspace/.git/evil-hooks',
  'git config core.fsmonitor /workspace/.git/evil',
  'git config diff.external /workspace/.git/fake-diff',
  'git config filter.evil.clean /workspace/.git/clean',
  'git config diff.evil.textconv /workspace/.git/evil',
  'git config core.pager /workspace/.git/evil',
  'git config credential.helper "!/workspace/.git/evil"',
  'echo "* filter=evil diff=evil" > .gitattributes',
  'echo "the agent\'s change" > feature.txt',
  'echo "HARMLESS=1" > .env',
  // Positive control: the agent's own git runs all of it, here, with the agent's secrets.
  'git add -A || true',
  'git -c user.name=a -c user.email=a@a commit -qm agent || true',
  'git diff HEAD~1 || true',
].join('\n');

test("what the loop configures in .git runs in the loop only: not in the patch, not beside publish's secret; the stored patch is the workspace's; publish pushes exactly it", async () => {
  const id = await stack.submit({
    repo: repo.url,
    commit: repo.head,
    secrets: { READ_TOKEN: 'adv-read' },
    publishSecrets: { PUSH_TOKEN: 'adv-push' },
    loop: { command: HOSTILE_LOOP, maxIterations: 1 },
    // After the patch step, before publish: which kinds the agent's programs ran in.
    validate: ['cat .git/witness'],
    publish: [
      // What publish sees: Draftsman's .git, the commit and the approved patch staged.
      'git diff --cached --binary HEAD | sha256sum',
      'ls -A; ls -A .git',
      'git -c user.name=p -c user.email=p@p commit -qm publish && git log -1 --format=%s',
    ],
  });
  const job = await stack.waitForEnd(id);
  expect(job.status).toBe('succeeded');
  const lines = await logsOf(id);

  // Positive controls: the agent's programs ran in its own step and printed its secret reversed, unmasked.
  expect(stepText(lines, 'validate-0')).toContain('ran in loop');
  expect(stepText(lines, 'loop-1')).toContain(`leak:${reversed(`READ_TOKEN=${READ}`)}`);
  expect(stepText(lines, 'loop-1')).toContain('FAKE-DIFF');

  // They ran nowhere else: not in the patch step (the witness, read after it, names the loop alone), not in publish.
  expect(new Set(stepText(lines, 'validate-0').split('\n'))).toEqual(new Set(['ran in loop']));
  const all = lines.map((l) => l.text).join('\n');
  expect(all).not.toContain(reversed(PUSH));
  expect(stepText(lines, 'publish-1')).not.toMatch(/evil|witness|fake-diff|\.env/);

  // The stored patch is the workspace's change, not the fake diff; the withheld .env is not in it.
  const patch = await patchOf(id);
  expect(patch.toString()).toContain('diff --git a/feature.txt b/feature.txt');
  expect(patch.toString()).not.toContain('FAKE-DIFF');
  expect(patch.toString()).not.toContain('.env');
  // Publish staged exactly the stored patch (the one the approver sees), and committed on the job's commit.
  expect(stepText(lines, 'publish-0')).toContain(createHash('sha256').update(patch).digest('hex'));
  expect(stepText(lines, 'publish-2')).toBe('publish');
  const events = await stack.store.events(id);
  expect(events.find((e) => e.type === 'publish_checkout')?.data).toEqual({ commit: repo.head, patchBytes: patch.length });
});

test("a fork of a workspace whose .git the agent configured: the cache key's hash runs none of it, and the fork ends", async () => {
  const parent = await stack.submit({
    repo: repo.url,
    commit: repo.head,
    secrets: { READ_TOKEN: 'adv-read' },
    loop: { command: HOSTILE_LOOP, maxIterations: 1 },
    snapshot: { after: 'loop-1' },
  });
  expect((await stack.waitForEnd(parent)).status).toBe('succeeded');
  const started = Date.now();
  const fork = await stack.submit({
    repo: repo.url,
    commit: repo.head,
    from: { job: parent, after: 'loop-1' },
    caches: [{ name: 'advfork', key: "advfork-{{ hashFiles('marker') }}" }],
    setup: ['cat .git/witness'],
    loop: { command: 'git status --short >/dev/null 2>&1; cat .git/witness', maxIterations: 1 },
  });
  const job: JobView = await stack.waitForEnd(fork, 90_000);
  expect(job.status).toBe('succeeded');
  expect(Date.now() - started).toBeLessThan(90_000);
  const events = await stack.store.events(fork);
  const lookup = events.find((e) => e.type === 'cache_miss' || e.type === 'cache_hit');
  // The key is the hash of the commit's `marker`: no program's output in it.
  expect(String(lookup?.data.key)).toMatch(/^advfork-[0-9a-f]{64}$/);
  const lines = await logsOf(fork);
  // Before setup only the parent's loop had run the programs; positive control: the fork's own loop runs them again.
  const before = stepText(lines, 'setup-0').split('\n');
  expect(new Set(before)).toEqual(new Set(['ran in loop']));
  expect(stepText(lines, 'loop-1').split('\n').filter((l) => l === 'ran in loop').length).toBeGreaterThan(before.length);
});
