import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../../common/paths';
import { TEST_DATA_DIR } from '../../testing/env';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { waitFor } from '../../testing/helpers';
import { startTestStack, TEST_TOKENS, type TestStack } from '../../testing/stack';

let stack: TestStack;
let repo: GitFixture;
beforeAll(async () => {
  [stack, repo] = await Promise.all([startTestStack(), startGitFixture(1)]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
});

/** Runs the built CLI (stdout is a pipe: plain line output). */
async function draftsman(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return draftsmanWith({ DRAFTSMAN_TOKEN: TEST_TOKENS.admin }, ...args);
}

/** The CLI with these variables (the URL always; a token only if given here). */
async function draftsmanWith(env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { DRAFTSMAN_TOKEN: _inherited, ...rest } = process.env;
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [path.join(projectRoot(), 'dist/cli/main.js'), ...args], {
      // Not the repository: its data/api-token would be found.
      cwd: TEST_DATA_DIR,
      env: { ...rest, DRAFTSMAN_URL: stack.apiUrl, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function specFile(name: string, spec: Record<string, unknown>): string {
  const file = path.join(TEST_DATA_DIR, `cli-${process.pid}-${name}.json`);
  fs.writeFileSync(file, JSON.stringify({ repo: repo.url, commit: repo.head, ...spec }));
  return file;
}

test('run --follow streams progress and logs and exits 0 for a job that succeeds', async () => {
  const file = specFile('ok', { setup: ['echo hello from setup'], validate: ['echo checked'] });
  const r = await draftsman('run', file, '--follow');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^job job-[\w-]+ submitted$/m);
  expect(r.stdout).toMatch(/^setup-0\s+\| hello from setup$/m);
  expect(r.stdout).toMatch(/^validate-0\s+\| checked$/m);
  expect(r.stdout).toMatch(/^\[\d+\.\ds\] running/m);
  expect(r.stdout).toMatch(/ succeeded$/m);
  expect(r.stdout).not.toContain('\x1b['); // no terminal control codes on a pipe
});

test('run --follow exits 1 for a job that fails; status, logs, ls and cancel work', async () => {
  const r = await draftsman('run', specFile('fail', { validate: ['echo broken >&2; exit 4'] }), '--follow');
  expect(r.code).toBe(1);
  expect(r.stdout).toMatch(/^validate-0\s+\| ! broken$/m);
  expect(r.stdout).toMatch(/validate-0\s+failed\s+exit 4/);
  const id = /^job (job-[\w-]+) submitted$/m.exec(r.stdout)![1]!;

  const status = await draftsman('status', id);
  expect(status.code).toBe(0);
  expect(status.stdout).toContain(`${id}  failed`);
  const json = await draftsman('status', id, '--json');
  expect(JSON.parse(json.stdout)).toMatchObject({ id, status: 'failed' });
  const logs = await draftsman('logs', id, '--step', 'validate-0');
  expect(logs.stdout.trim()).toMatch(/^validate-0\s+\| ! broken$/);
  const ls = await draftsman('ls', '--status', 'failed');
  expect(ls.stdout).toContain(id);

  // A job that has ended cannot be cancelled: the API's 409 becomes exit code 8 with its message.
  const cancel = await draftsman('cancel', id, '--reason', 'late');
  expect(cancel.code).toBe(8);
  expect(cancel.stderr).toMatch(/already ended/);
});

test('cancel stops a running job; bad usage exits 2; an unreachable API is a clear error', async () => {
  const submitted = await draftsman('run', specFile('long', { setup: ['sleep 60'] }));
  expect(submitted.code).toBe(0);
  const id = submitted.stdout.trim();
  const cancel = await draftsman('cancel', id, '--reason', 'from the cli');
  expect(cancel.code).toBe(0);
  const job = await stack.waitForEnd(id);
  expect(job.status).toBe('cancelled');
  expect(job.error).toContain('from the cli');

  expect((await draftsman('frobnicate')).code).toBe(2);
  expect((await draftsman('run')).code).toBe(2);
  expect((await draftsman('run', '/nonexistent.json')).stderr).toMatch(/cannot read a JSON spec/);
  const down = await draftsman('ls', '--url', 'http://127.0.0.1:9');
  expect(down.code).toBe(6);
  expect(down.stderr).toMatch(/cannot reach the Draftsman API/);
});

test('the token npm start wrote is found; a wrong one exits 7; wait, events, patch and ls speak JSON; a retried run with its key starts nothing new', async () => {
  const dataDir = path.join(TEST_DATA_DIR, `cli-data-${process.pid}`);
  fs.mkdirSync(dataDir, { recursive: true });
  fs.writeFileSync(path.join(dataDir, 'api-token'), `${TEST_TOKENS.admin}\n`, { mode: 0o600 });
  const found = { DRAFTSMAN_DATA_DIR: dataDir };
  expect((await draftsmanWith(found, 'ls', '--limit', '1')).code).toBe(0);
  const refused = await draftsmanWith({ DRAFTSMAN_TOKEN: 'not-a-token-0123456789' }, 'ls');
  expect([refused.code, refused.stderr]).toEqual([7, expect.stringMatching(/bearer token/)]);

  const spec = specFile('patch', { loop: { command: 'echo changed > file.txt', maxIterations: 1 } });
  const key = `cli-${process.pid}`;
  const first = JSON.parse((await draftsmanWith(found, 'run', spec, '--json', '--idempotency-key', key)).stdout) as { id: string };
  const again = JSON.parse((await draftsmanWith(found, 'run', spec, '--json', '--idempotency-key', key)).stdout) as { id: string };
  expect(again.id).toBe(first.id);
  const waited = await draftsmanWith(found, 'wait', first.id, '--json');
  expect(waited.code).toBe(0);
  expect(JSON.parse(waited.stdout)).toMatchObject({ id: first.id, status: 'succeeded', principal: 'admin' });
  const patch = await draftsmanWith(found, 'patch', first.id);
  expect(patch.stdout).toMatch(/^\+changed$/m);
  const events = JSON.parse((await draftsmanWith(found, 'events', first.id, '--json')).stdout) as { type: string; data: Record<string, unknown> }[];
  expect(events[0]).toMatchObject({ type: 'created', data: { principal: 'admin' } });
  expect(events.at(-1)?.type).toBe('finished');
  const rerun = JSON.parse((await draftsmanWith(found, 'rerun', first.id, '--json')).stdout) as { id: string; rerunOf: string };
  expect(rerun.rerunOf).toBe(first.id);
  expect(rerun.id).not.toBe(first.id);
  const rerunEnd = await draftsmanWith(found, 'wait', rerun.id);
  expect([rerunEnd.code, rerunEnd.stdout]).toEqual([0, expect.stringContaining(`${rerun.id}  succeeded`)]);
  const ls = JSON.parse((await draftsmanWith(found, 'ls', '--json', '--limit', '1', '--principal', 'admin')).stdout) as {
    jobs: unknown[];
    nextCursor: string | null;
  };
  expect(ls.jobs).toHaveLength(1);
  expect(typeof ls.nextCursor).toBe('string');
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test("wait exits with the job's end: 3 for a cancelled one, 8 (still running) past --timeout", async () => {
  const id = (await draftsman('run', specFile('wait', { setup: ['sleep 60'] }))).stdout.trim();
  const early = await draftsman('wait', id, '--timeout', '1');
  expect([early.code, early.stderr]).toEqual([8, expect.stringMatching(/still (queued|running) after 1 s/)]);
  expect((await draftsman('cancel', id)).code).toBe(0);
  const ended = await draftsman('wait', id);
  expect(ended.code).toBe(3);
  expect(ended.stdout).toContain(`${id}  cancelled`);
  // A rerun followed to its end exits with that end; an unknown job is an API error.
  const failing = (await draftsman('run', specFile('rerun-fail', { validate: ['exit 3'] }))).stdout.trim();
  expect((await draftsman('wait', failing)).code).toBe(1);
  const rerun = await draftsman('rerun', failing, '--follow');
  expect([rerun.code, rerun.stdout]).toEqual([1, expect.stringMatching(/^job job-[\w-]+ submitted$/m)]);
  expect((await draftsman('rerun', 'job-nope')).code).toBe(8);
});

test('approve and reject decide a waiting job: 0 for the decision, 8 for a second one, 7 without the approve scope; wait exits 5 for a rejected job', async () => {
  const gated = (name: string) => specFile(name, { validate: ['sleep 3'], approval: { before: 'validate', timeoutSeconds: 300 } });
  const waitingJob = async (name: string) => {
    const id = (await draftsman('run', gated(name))).stdout.trim();
    await waitFor(async () => JSON.parse((await draftsman('status', id, '--json')).stdout).status === 'awaiting_approval', 'the approval gate', {
      timeoutMs: 60_000,
    });
    return id;
  };
  const [approved, rejected] = await Promise.all([waitingJob('approve'), waitingJob('reject')]);
  // A failed expectation must not leave a job waiting (and its holder and workspace) behind.
  const cleanup = () => Promise.all([approved, rejected].map((id) => draftsman('cancel', id)));
  try {
    const early = await draftsmanWith({ DRAFTSMAN_TOKEN: TEST_TOKENS.reader }, 'approve', approved);
    expect(early.code).toBe(7);
    const yes = await draftsman('approve', approved, '--comment', 'fine');
    expect([yes.code, yes.stdout]).toEqual([0, expect.stringMatching(new RegExp(`^${approved} approved by admin at `))]);
    const again = await draftsman('reject', approved);
    expect([again.code, again.stderr]).toEqual([8, expect.stringMatching(/already approved by admin: fine/)]);
    expect((await draftsman('wait', approved)).code).toBe(0);

    const no = await draftsman('reject', rejected, '--json');
    expect([no.code, JSON.parse(no.stdout)]).toEqual([0, expect.objectContaining({ decision: 'reject', by: 'admin' })]);
    const end = await draftsman('wait', rejected);
    expect([end.code, end.stdout]).toEqual([5, expect.stringContaining(`${rejected}  rejected`)]);
  } finally {
    await cleanup();
  }
});

test('a YAML spec runs; --wait exits with the end; help per command; bash completion; bad option values exit 2', async () => {
  const file = path.join(TEST_DATA_DIR, `cli-${process.pid}-spec.yaml`);
  fs.writeFileSync(file, `repo: ${repo.url}\ncommit: "${repo.head}"\nvalidate:\n  - echo from yaml\nlabels:\n  source: yaml\n`);
  const ran = await draftsman('run', file, '--wait');
  expect([ran.code, ran.stdout]).toEqual([0, expect.stringMatching(/^job-[\w-]+ {2}succeeded$/m)]);
  const id = /^(job-[\w-]+) {2}succeeded$/m.exec(ran.stdout)![1]!;
  const listed = JSON.parse((await draftsman('ls', '--label', 'source=yaml', '--json')).stdout) as { jobs: { id: string }[] };
  expect(listed.jobs.map((j) => j.id)).toContain(id);
  const logs = await draftsman('logs', id, '--json');
  expect(
    logs.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { text: string }).text),
  ).toEqual(['from yaml']);

  const help = await draftsman('cancel', '--help');
  expect([help.code, help.stdout]).toEqual([0, expect.stringContaining('--idempotency-key <key>')]);
  const completion = await draftsman('completion', 'bash');
  expect(completion.stdout).toContain('complete -F _draftsman_complete draftsman');
  expect(completion.stdout).toMatch(/rerun\) opts="[^"]*--follow/);
  expect((await draftsman('ls', '--status', 'bogus')).code).toBe(2);
  expect((await draftsman('completion', 'fish')).code).toBe(2);
  fs.writeFileSync(file, 'repo: [unclosed');
  const bad = await draftsman('run', file);
  expect([bad.code, bad.stderr]).toEqual([2, expect.stringMatching(/cannot read a YAML spec/)]);
});

test("hosts lists the stack's host; drain and undrain need the admin scope; an unknown host exits 8", async () => {
  const list = await draftsman('hosts', '--json');
  expect(list.code).toBe(0);
  const { hosts, waiting } = JSON.parse(list.stdout) as { hosts: { id: string; state: string; capacity: number }[]; waiting: number };
  expect(hosts).toEqual([expect.objectContaining({ state: 'up', capacity: stack.config.DRAFTSMAN_MAX_CONCURRENT_STEPS })]);
  expect(waiting).toBe(0);
  const [host] = hosts;
  const plain = await draftsman('hosts');
  expect(plain.stdout).toMatch(new RegExp(`^${host!.id}\\s+up\\s+0/${host!.capacity} running`, 'm'));

  const refused = await draftsmanWith({ DRAFTSMAN_TOKEN: TEST_TOKENS.reader }, 'drain', host!.id);
  expect(refused.code).toBe(7);
  expect((await draftsman('drain', 'no-such-host')).code).toBe(8);
  // Undrain of a host that is up: it stays up (a drain here would stop the stack's worker once idle).
  const undrained = await draftsman('undrain', host!.id);
  expect([undrained.code, undrained.stdout.trim()]).toEqual([0, `${host!.id} up: 0 running, 0 held`]);
});

test('fork --wait runs a group and exits 0 with its winner; group shows it; resume --wait goes on from a failed job with the fix', async () => {
  const parent = await draftsman(
    'run',
    specFile('parent', {
      setup: ['echo ready > ready.txt'],
      snapshot: { after: 'setup', when: 'failed' },
      loop: { command: 'echo "$TRY" > out.txt', maxIterations: 1 },
      validate: ['grep -q good out.txt'],
    }),
    '--wait',
  );
  // Every attempt's loop writes TRY: only the variant with TRY=good validates.
  expect(parent.code).toBe(1);
  const parentId = parent.stdout.match(/^(job-[\w-]+)\s+failed$/m)![1]!;
  const variants = path.join(TEST_DATA_DIR, `cli-${process.pid}-variants.json`);
  fs.writeFileSync(variants, JSON.stringify([{ env: { TRY: 'bad' } }, { env: { TRY: 'good' } }]));
  const forked = await draftsman('fork', parentId, '--after', 'setup', '--variants', variants, '--best', 'smallest-patch', '--wait');
  expect(forked.stderr).toBe('');
  expect(forked.code).toBe(0);
  const groupId = forked.stdout.match(/^(grp-[0-9a-f-]+)\s+ended/m)![1]!;
  expect(forked.stdout).toMatch(new RegExp(`^\\s+${groupId}\\.2\\s+succeeded\\s+validate passed .*\\(winner\\)$`, 'm'));
  expect(forked.stdout).toMatch(new RegExp(`^\\s+${groupId}\\.1\\s+failed\\s+validate failed`, 'm'));
  const shown = await draftsman('group', groupId, '--json');
  expect(JSON.parse(shown.stdout)).toMatchObject({ id: groupId, parent: parentId, winner: `${groupId}.2` });
  // Bad usage: a rule that does not exist, a count that is no number.
  expect((await draftsman('fork', parentId, '--after', 'setup', '--count', '2', '--best', 'fastest')).code).toBe(2);
  expect((await draftsman('fork', parentId, '--after', 'setup', '--count', 'two')).code).toBe(2);

  const fix = path.join(TEST_DATA_DIR, `cli-${process.pid}-fix.json`);
  fs.writeFileSync(fix, JSON.stringify({ loop: { command: 'cat ready.txt && echo good > out.txt' } }));
  const resumed = await draftsman('resume', parentId, '--spec', fix, '--wait');
  expect(resumed.code).toBe(0);
  expect(resumed.stdout).toMatch(/^\s+loop-1\s+succeeded/m);
  expect(resumed.stdout).not.toMatch(/^\s+(clone|setup)-0/m);
  // The ledger in the job's summary, and the usage it adds up to.
  expect(resumed.stdout).toMatch(/^ {2}ledger {2}[\d.]+ s wall, [\d.]+ CPU-s, peak [\d.]+ MiB, 2 steps, egress /m);
  const usage = await draftsman('usage', '--json');
  expect(usage.code).toBe(0);
  expect(JSON.parse(usage.stdout).total.jobs).toBeGreaterThanOrEqual(4);
  expect((await draftsman('usage')).stdout).toMatch(/^ {2}all +\d+ jobs/m);
});

test('approve --budget raises a budget at its gate: the frozen step goes on and the job succeeds; a bad --budget exits 2', async () => {
  const file = specFile('budget', {
    setup: [`perl -e 'while ((times)[0] + (times)[1] < 2) {}'`],
    budget: { cpuSeconds: 1, onExceed: 'approval' },
  });
  const started = await draftsman('run', file);
  const id = started.stdout.trim();
  await waitFor(
    async () => (await stack.api<{ status: string }>('GET', `/v1/jobs/${id}`)).body.status === 'awaiting_approval',
    'the job to wait at its budget',
    {
      timeoutMs: 60_000,
    },
  );
  expect((await draftsman('approve', id, '--budget', 'wallSeconds:x')).code).toBe(2);
  const approved = await draftsman('approve', id, '--budget', 'cpuSeconds:10', '--json');
  expect(approved.code).toBe(0);
  expect(JSON.parse(approved.stdout)).toMatchObject({ decision: 'approve', budget: { cpuSeconds: 10 } });
  expect((await draftsman('wait', id)).code).toBe(0);
});
