/**
 * The scripts run by sh against a real git on this machine, in a folder standing for the
 * workspace: what an agent writes into its `.git` and work tree runs nowhere, and
 * objects it altered are refused.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CHECKOUT_SCRIPT, HASH_FILES_SCRIPT, PATCH_SCRIPT } from './trusted-git';

let root: string;
let ws: string;
let scratch: string;
let commit: string;
/** Where a program the agent names would leave its mark. */
let mark: string;

const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd: ws, encoding: 'utf8' }).trim();

function run(script: string, args: string[] = [], env: Record<string, string> = {}) {
  fs.rmSync(scratch, { recursive: true, force: true });
  fs.mkdirSync(scratch);
  const r = spawnSync('sh', ['-c', script, 'draftsman', ...args], {
    env: { PATH: process.env.PATH, DRAFTSMAN_WORKSPACE: ws, DRAFTSMAN_SCRATCH: scratch, DRAFTSMAN_COMMIT: commit, ...env },
  });
  return { code: r.status, stdout: r.stdout.toString('latin1'), stderr: r.stderr.toString() };
}

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'trusted-git-'));
  ws = path.join(root, 'workspace');
  scratch = path.join(root, 'scratch');
  mark = path.join(root, 'ran');
  fs.mkdirSync(ws);
  git('init', '-q', '.');
  fs.writeFileSync(path.join(ws, 'a.txt'), 'one\n');
  fs.writeFileSync(path.join(ws, 'package-lock.json'), '{}\n');
  git('add', '-A');
  git('commit', '-qm', 'base');
  commit = git('rev-parse', 'HEAD');
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

/** The agent's hostile `.git`: every config that names a program, each leaving the mark. */
function hostileGit() {
  const prog = `sh -c 'echo ran >> ${mark}'`;
  const hook = path.join(root, 'hook.sh');
  fs.writeFileSync(hook, `#!/bin/sh\necho ran >> ${mark}\n`, { mode: 0o755 });
  for (const [k, v] of [
    ['core.fsmonitor', hook],
    ['core.hooksPath', root],
    ['diff.external', hook],
    ['diff.evil.textconv', prog],
    ['filter.evil.clean', prog],
    ['filter.evil.smudge', prog],
    ['filter.evil.process', prog],
    ['core.pager', prog],
    ['core.sshCommand', prog],
    ['credential.helper', `!${prog}`],
    ['include.path', path.join(root, 'included')],
    ['core.attributesFile', path.join(root, 'attrs')],
  ])
    git('config', k!, v!);
  fs.writeFileSync(path.join(root, 'included'), `[core]\n\tfsmonitor = ${hook}\n`);
  fs.writeFileSync(path.join(root, 'attrs'), '* filter=evil diff=evil\n');
  for (const h of ['pre-commit', 'post-checkout', 'post-index-change', 'reference-transaction']) fs.copyFileSync(hook, path.join(ws, '.git', 'hooks', h));
  fs.chmodSync(path.join(ws, '.git', 'hooks'), 0o755);
  fs.writeFileSync(path.join(ws, '.gitattributes'), '* filter=evil diff=evil\n');
}

describe('the patch script', () => {
  it('prints the changes against the commit: edits, new files, deletions', () => {
    fs.writeFileSync(path.join(ws, 'a.txt'), 'two\n');
    fs.writeFileSync(path.join(ws, 'new.txt'), 'new\n');
    fs.rmSync(path.join(ws, 'package-lock.json'));
    const r = run(PATCH_SCRIPT);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('diff --git a/a.txt b/a.txt');
    expect(r.stdout).toContain('+two');
    expect(r.stdout).toContain('diff --git a/new.txt b/new.txt');
    expect(r.stdout).toContain('deleted file mode');
  });

  it('runs nothing the agent configured, and its config does not change the patch', () => {
    hostileGit();
    fs.writeFileSync(path.join(ws, 'a.txt'), 'two\n');
    // Positive control: the agent's own git runs its programs.
    spawnSync('sh', ['-c', 'git diff HEAD; git add -A; git status'], { cwd: ws });
    expect(fs.existsSync(mark)).toBe(true);
    fs.rmSync(mark);
    const r = run(PATCH_SCRIPT);
    expect(r.code).toBe(0);
    expect(fs.existsSync(mark)).toBe(false);
    expect(r.stdout).toContain('-one\n+two');
  });

  it("ignores an index, HEAD and refs the agent rewrote: the diff is against the spec's commit", () => {
    fs.writeFileSync(path.join(ws, 'a.txt'), 'two\n');
    git('commit', '-qam', 'the agent commits its change');
    const r = run(PATCH_SCRIPT);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('-one\n+two');
  });

  it.each([
    [
      'an altered object the diff reads (the base of a changed file)',
      () => {
        fs.writeFileSync(path.join(ws, 'a.txt'), 'changed\n');
        const blob = git('rev-parse', `${commit}:a.txt`);
        const file = path.join(ws, '.git', 'objects', blob.slice(0, 2), blob.slice(2));
        fs.chmodSync(file, 0o644);
        // The contents of another blob under this one's name.
        const other = execFileSync('git', ['hash-object', '-w', '--stdin'], { cwd: ws, input: 'other contents\n', encoding: 'utf8' }).trim();
        fs.copyFileSync(path.join(ws, '.git', 'objects', other.slice(0, 2), other.slice(2)), file);
      },
      /do not match their ids|failed/,
    ],
    [
      'an altered tree of the commit',
      () => {
        const tree = git('rev-parse', `${commit}^{tree}`);
        const file = path.join(ws, '.git', 'objects', tree.slice(0, 2), tree.slice(2));
        fs.chmodSync(file, 0o644);
        fs.writeFileSync(file, 'not even zlib');
      },
      /failed|no longer holds/,
    ],
    ['a .git removed', () => fs.rmSync(path.join(ws, '.git'), { recursive: true }), /no \.git\/objects/],
    [
      'a .git that is a file pointing elsewhere',
      () => {
        fs.rmSync(path.join(ws, '.git'), { recursive: true });
        fs.writeFileSync(path.join(ws, '.git'), `gitdir: ${root}\n`);
      },
      /no \.git\/objects/,
    ],
  ])('fails, saying why, on %s', (_what, spoil, message) => {
    spoil();
    const r = run(PATCH_SCRIPT);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(message);
  });
});

describe('the publish checkout', () => {
  it('leaves the commit with the patch applied and staged, and nothing else the loop wrote', () => {
    fs.writeFileSync(path.join(ws, 'a.txt'), 'two\n');
    const patch = run(PATCH_SCRIPT).stdout;
    hostileGit();
    fs.writeFileSync(path.join(ws, 'unapproved.txt'), 'written after the patch\n');
    fs.mkdirSync(path.join(ws, 'locked'));
    fs.writeFileSync(path.join(ws, 'locked', 'f'), 'x');
    fs.chmodSync(path.join(ws, 'locked'), 0o500);
    fs.writeFileSync(path.join(ws, '.approved-x.patch'), patch);
    const r = run(CHECKOUT_SCRIPT, [], { DRAFTSMAN_PATCH_FILE: '.approved-x.patch' });
    expect(r.code).toBe(0);
    expect(fs.existsSync(mark)).toBe(false);
    expect(fs.readdirSync(ws).sort()).toEqual(['.git', 'a.txt', 'package-lock.json']);
    expect(fs.readFileSync(path.join(ws, 'a.txt'), 'utf8')).toBe('two\n');
    const config = fs.readFileSync(path.join(ws, '.git', 'config'), 'utf8');
    expect(config).not.toMatch(/fsmonitor|hooksPath|external|filter|include/);
    expect(git('diff', '--cached', '--name-only')).toBe('a.txt');
    expect(git('rev-parse', 'HEAD')).toBe(commit);
    // A commit on it works as in any clone.
    git('commit', '-qm', 'publish');
  });

  it('without a patch, is the commit alone', () => {
    fs.writeFileSync(path.join(ws, 'a.txt'), 'two\n');
    const r = run(CHECKOUT_SCRIPT);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(path.join(ws, 'a.txt'), 'utf8')).toBe('one\n');
  });
});

describe('the hash of files', () => {
  it("hashes the commit's files, whatever the agent did to its index and config", () => {
    const before = run(HASH_FILES_SCRIPT, [':(glob)*.json']);
    expect(before.code).toBe(0);
    expect(before.stdout.trim()).toMatch(/^[0-9a-f]{64}$/);
    fs.writeFileSync(path.join(ws, 'package-lock.json'), '{"changed":1}\n');
    git('add', '-A');
    hostileGit();
    const after = run(HASH_FILES_SCRIPT, [':(glob)*.json']);
    expect(after.stdout).toBe(before.stdout);
    expect(fs.existsSync(mark)).toBe(false);
    expect(run(HASH_FILES_SCRIPT, [':(glob)*.none']).stdout).toBe('');
  });
});
