import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OUTSIDE_FILES, splitPatch, withholdFiles } from './patch-filter';
import { secretFinder } from './secrets';

const SECRET = 'ghp_S3cr3tT0kenValue1234';
const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@localhost', ...args], { cwd, encoding: 'buffer' });

let dir: string;
let patch: Buffer;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-patch-'));
  git(dir, 'init', '-q', '-b', 'main');
  fs.writeFileSync(path.join(dir, 'tracked.txt'), 'one\n');
  fs.writeFileSync(path.join(dir, 'config.pem'), 'tracked pem, not new\n');
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', 'base');
  // What a step may leave behind.
  fs.writeFileSync(path.join(dir, 'tracked.txt'), 'one\ntwo\n');
  fs.writeFileSync(path.join(dir, 'config.pem'), 'tracked pem, changed\n');
  fs.writeFileSync(path.join(dir, 'ok.txt'), 'nothing secret\n');
  fs.writeFileSync(path.join(dir, '.env'), 'HARMLESS=1\n');
  fs.mkdirSync(path.join(dir, 'keys'));
  fs.writeFileSync(path.join(dir, 'keys', 'id_ed25519'), 'not even a key\n');
  fs.writeFileSync(path.join(dir, 'plain.txt'), `token: ${SECRET}\n`);
  fs.writeFileSync(path.join(dir, 'encoded.txt'), `${Buffer.from(`{"auth":"${SECRET}"}`).toString('base64')}\n`);
  fs.writeFileSync(path.join(dir, 'hex.txt'), `${Buffer.from(SECRET).toString('hex')}\n`);
  fs.writeFileSync(path.join(dir, 'blob.bin'), Buffer.concat([Buffer.from([0, 1, 2, 255]), Buffer.from(SECRET), Buffer.alloc(64, 7)]));
  fs.writeFileSync(path.join(dir, 'other.bin'), Buffer.from([0, 1, 2, 3, 255, 254]));
  git(dir, 'add', '-A');
  patch = git(dir, 'diff', '--cached', '--binary', 'HEAD');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('splitPatch names every file and which are new', () => {
  expect(
    splitPatch(patch)
      .map((f) => `${f.file}${f.isNew ? ' (new)' : ''}`)
      .sort(),
  ).toEqual([
    '.env (new)',
    'blob.bin (new)',
    'config.pem',
    'encoded.txt (new)',
    'hex.txt (new)',
    'keys/id_ed25519 (new)',
    'ok.txt (new)',
    'other.bin (new)',
    'plain.txt (new)',
    'tracked.txt',
  ]);
});

test('files that hold the secret in any form, binary ones included, and new secret files are withheld; the rest still applies', () => {
  const { kept, withheld } = withholdFiles(patch, secretFinder([SECRET]));
  expect(withheld.sort((a, b) => a.file.localeCompare(b.file))).toEqual([
    { file: '.env', reason: 'secret file name' },
    { file: 'blob.bin', reason: 'holds a secret' },
    { file: 'encoded.txt', reason: 'holds a secret' },
    { file: 'hex.txt', reason: 'holds a secret' },
    { file: 'keys/id_ed25519', reason: 'secret file name' },
    { file: 'plain.txt', reason: 'holds a secret' },
  ]);
  expect(kept.toString('latin1')).not.toContain(SECRET);
  expect(
    splitPatch(kept)
      .map((f) => f.file)
      .sort(),
  ).toEqual(['config.pem', 'ok.txt', 'other.bin', 'tracked.txt']);

  // The kept patch applies to a clean checkout of the commit.
  const clean = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-patch-clean-'));
  try {
    git(dir, 'worktree', 'add', '-q', '--detach', clean, 'HEAD');
    fs.writeFileSync(path.join(clean, 'kept.patch'), kept);
    git(clean, 'apply', '--check', 'kept.patch');
  } finally {
    git(dir, 'worktree', 'remove', '--force', clean);
  }
});

test('a patch without secrets is kept byte for byte', () => {
  const { kept, withheld } = withholdFiles(patch, secretFinder(['some-other-secret-value']));
  expect(withheld.map((w) => w.file).sort()).toEqual(['.env', 'keys/id_ed25519']);
  expect(withholdFiles(Buffer.from(''), secretFinder([SECRET]))).toEqual({ kept: Buffer.from(''), withheld: [] });
  expect(kept.length).toBeLessThan(patch.length);
});

test.each([
  ['before the first file header', (p: Buffer) => Buffer.concat([Buffer.from(`note: ${SECRET.slice(0, 6)} anything at all\n`), p])],
  ['in a patch with no file header at all', () => Buffer.from('free text the agent printed, no diff header\n')],
])('text %s is withheld, never kept', (_where, make) => {
  const { kept, withheld } = withholdFiles(make(patch), secretFinder(['some-other-secret-value']));
  expect(withheld).toContainEqual({ file: OUTSIDE_FILES, reason: 'not a file diff' });
  expect(kept.toString('latin1')).not.toMatch(/anything at all|free text/);
  // Positive control: the same patch without the text keeps everything it kept before.
  expect(withholdFiles(patch, secretFinder(['some-other-secret-value'])).withheld.map((w) => w.reason)).not.toContain('not a file diff');
});

test('a binary block cut at the cap is withheld when the patch was truncated, and kept when it was whole', () => {
  const files = splitPatch(patch);
  const bin = files.find((f) => f.file === 'other.bin')!;
  // The patch cut inside the binary block of its last file.
  const cut = Buffer.concat([...files.filter((f) => f !== bin).map((f) => f.section), bin.section.subarray(0, bin.section.length - 5)]);
  const finder = secretFinder(['some-other-secret-value']);
  expect(withholdFiles(cut, finder, true).withheld).toContainEqual({ file: 'other.bin', reason: 'binary cut at the cap' });
  expect(withholdFiles(cut, finder, false).withheld.map((w) => w.file)).not.toContain('other.bin');
});
