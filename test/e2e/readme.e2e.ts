/**
 * The READMEs' first examples run as written: the shell block of README.md's "A first
 * job" and the Python block of client/python/README.md, against this stack and a git
 * server on 127.0.0.1 (REPO and COMMIT given, as the README tells a reader to).
 */
import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../common/paths';
import { TEST_DATA_DIR } from '../../testing/env';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { runTool } from '../../testing/helpers';
import { startTestStack, TEST_TOKENS, type TestStack } from '../../testing/stack';

const ROOT = projectRoot();
const VENV = path.join(TEST_DATA_DIR, '..', 'tools', 'python-client');

/** The first fenced block of `lang` after `heading` in a Markdown file. */
export function exampleAfter(markdown: string, heading: string, lang: string): string {
  const from = markdown.indexOf(heading);
  if (from < 0) throw new Error(`no heading "${heading}"`);
  const block = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(markdown.slice(from));
  if (!block) throw new Error(`no ${lang} block after "${heading}"`);
  return block[1]!;
}

let stack: TestStack;
let repo: GitFixture;
beforeAll(async () => {
  [stack, repo] = await Promise.all([startTestStack(), startGitFixture(1)]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
  fs.rmSync(path.join(ROOT, 'first-job.json'), { force: true });
});

const env = () => ({ ...process.env, REPO: repo.url, COMMIT: repo.head, DRAFTSMAN_URL: stack.apiUrl, DRAFTSMAN_TOKEN: TEST_TOKENS.admin });

test("README.md's first job runs as written: it succeeds after two loop iterations and its patch adds the two lines", async () => {
  const script = exampleAfter(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'), '## A first job', 'sh');
  const run = await runTool('bash', ['-euo', 'pipefail', '-c', script], { cwd: ROOT, env: env(), timeout: 120_000 });
  if (run.code !== 0) throw new Error(`the example exited ${run.code}:\n${run.out}`);
  expect(run.out).toMatch(/^job-[\w-]+ {2}succeeded$/m);
  expect(run.out).toContain('+++ b/NOTES');
  expect(run.out.match(/^\+one more line$/gm)).toHaveLength(2);
}, 150_000);

test("client/python/README.md's example runs as written: the job succeeds and its patch is printed", async () => {
  const code = exampleAfter(fs.readFileSync(path.join(ROOT, 'client', 'python', 'README.md'), 'utf8'), '# draftsman-client', 'python');
  const run = await runTool(path.join(VENV, 'bin', 'python'), ['-c', code], { cwd: ROOT, env: { ...env(), PYTHONDONTWRITEBYTECODE: '1' }, timeout: 120_000 });
  if (run.code !== 0) throw new Error(`the example exited ${run.code}:\n${run.out}`);
  expect(run.out).toMatch(/^succeeded$/m);
  expect(run.out).toContain('+from python');
}, 150_000);
