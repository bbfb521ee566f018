/**
 * The Python client (client/python): its models are the ones generate.sh makes from the
 * committed OpenAPI document, and its pytest suite (unit tests, and live tests against
 * this stack and a git server on 127.0.0.1) passes. pytest runs in the environment
 * infra/scripts/ensure-python-client.sh prepares; its exit code is read as pytest
 * defines them, and its JUnit report gives the counts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../common/paths';
import { TEST_DATA_DIR } from '../../testing/env';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { runTool } from '../../testing/helpers';
import { startTestStack, TEST_TOKENS, type TestStack } from '../../testing/stack';

const CLIENT = path.join(projectRoot(), 'client', 'python');
const VENV = path.join(TEST_DATA_DIR, '..', 'tools', 'python-client');

/** What each of pytest's exit codes means (https://docs.pytest.org/en/stable/reference/exit-codes.html). */
const PYTEST_EXIT: Record<number, string> = {
  0: 'all tests passed',
  1: 'some tests failed',
  2: 'the run was interrupted',
  3: 'pytest had an internal error',
  4: 'pytest was used wrongly',
  5: 'no test was collected',
};

let stack: TestStack;
let repo: GitFixture;
let scratch: string;
beforeAll(async () => {
  [stack, repo] = await Promise.all([startTestStack(), startGitFixture(1)]);
  scratch = fs.mkdtempSync(path.join(TEST_DATA_DIR, 'python-client-'));
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

test('the committed models are the ones generated from docs/openapi.json', async () => {
  const fresh = path.join(scratch, 'models.py');
  const generated = await runTool('bash', [path.join(CLIENT, 'generate.sh'), path.join(projectRoot(), 'docs', 'openapi.json'), fresh], { timeout: 120_000 });
  if (generated.code !== 0) throw new Error(`generate.sh exited ${generated.code}:\n${generated.out}`);
  const committed = fs.readFileSync(path.join(CLIENT, 'src', 'draftsman_client', 'models.py'), 'utf8');
  // Not toBe: a stale file's whole text in the failure says less than this line.
  if (fs.readFileSync(fresh, 'utf8') !== committed) throw new Error('client/python/src/draftsman_client/models.py is stale: run `npm run openapi`');
}, 150_000);

test("the client's pytest suite passes against the live API", async () => {
  const junit = path.join(scratch, 'junit.xml');
  const pytest = await runTool(path.join(VENV, 'bin', 'pytest'), ['-p', 'no:cacheprovider', '-q', '--junitxml', junit, 'tests'], {
    cwd: CLIENT,
    timeout: 600_000,
    env: {
      ...process.env,
      PYTHONDONTWRITEBYTECODE: '1',
      DRAFTSMAN_URL: stack.apiUrl,
      DRAFTSMAN_TOKEN: TEST_TOKENS.admin,
      DRAFTSMAN_TEST_REPO: repo.url,
      DRAFTSMAN_TEST_COMMIT: repo.head,
    },
  });
  if (pytest.code !== 0) {
    throw new Error(`pytest exited ${pytest.code} (${PYTEST_EXIT[pytest.code] ?? 'not an exit code of pytest'}):\n${pytest.out.slice(-12_000)}`);
  }
  const suite = /<testsuite [^>]*>/.exec(fs.readFileSync(junit, 'utf8'))?.[0] ?? '';
  const count = (name: string) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(suite)?.[1] ?? NaN);
  const counts = { tests: count('tests'), failures: count('failures'), errors: count('errors'), skipped: count('skipped') };
  // Counted in one line of this log; pytest's own summary stays out of a passing run's log.
  console.log(`pytest (client/python): ${counts.tests} cases, ${counts.failures} failures, ${counts.errors} errors, ${counts.skipped} skipped`);
  expect(counts.tests).toBeGreaterThan(20);
  // A live test skipped for want of its API would hide that it never ran.
  expect(counts).toMatchObject({ failures: 0, errors: 0, skipped: 0 });
}, 660_000);
