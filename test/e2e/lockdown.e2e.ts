import type { JobView } from '../../common/job';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { leftovers, startTestStack, type TestStack } from '../../testing/stack';

// Tight limits so that the escape attempts hit them quickly.
let stack: TestStack;
let repo: GitFixture;
beforeAll(async () => {
  [stack, repo] = await Promise.all([startTestStack({ DRAFTSMAN_STEP_MEMORY_MB: '64', DRAFTSMAN_STEP_PIDS_LIMIT: '64' }), startGitFixture(1)]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repo?.stop()]);
});

async function run(validate: string[]): Promise<JobView> {
  const res = await stack.api<{ id: string }>('POST', '/v1/jobs', { repo: repo.url, commit: repo.head, validate });
  expect(res.status).toBe(202);
  const job = await stack.waitForEnd(res.body.id);
  expect(await leftovers(stack.docker, res.body.id)).toEqual([]);
  return job;
}

const exits = (job: JobView) => job.steps.filter((s) => s.kind === 'validate').map((s) => s.exitCode);

test('a step cannot write outside /workspace (read-only root, /tmp is a small tmpfs)', async () => {
  const job = await run([
    'touch /etc/pwned',
    'touch /usr/bin/pwned',
    'echo ok > /workspace/inside && echo ok > /tmp/scratch',
    'grep -E " / .*\\bro\\b" /proc/mounts',
  ]);
  expect(exits(job)).toEqual([1, 1, 0, 0]);
});

test('a step cannot become root or gain privileges', async () => {
  const job = await run([
    'test "$(id -u)" = 1000 && test "$(id -g)" = 1000',
    // No capabilities at all, and no_new_privs set, so setuid binaries cannot raise them.
    'grep -E "^CapEff:\\s+0+$" /proc/self/status && grep -E "^NoNewPrivs:\\s+1$" /proc/self/status',
    'su -c id root </dev/null',
    'chown 0:0 /workspace',
  ]);
  expect(exits(job).slice(0, 2)).toEqual([0, 0]);
  expect(exits(job).slice(2)).not.toContain(0);
});

test('a step cannot reach the Docker engine', async () => {
  const job = await run([
    'test ! -e /var/run/docker.sock && test ! -e /run/docker.sock',
    '! grep -q docker.sock /proc/mounts',
    'env | grep -q DOCKER_HOST && exit 1 || true',
  ]);
  expect(exits(job)).toEqual([0, 0, 0]);
});

test('a fork bomb stops at the pids limit, and the job goes on', async () => {
  const job = await run([
    // Forks until fork fails (at most 500), then says how far it got: the limit (64) must stop it.
    'perl -e \'my $n = 0; while ($n < 500) { my $p = fork(); last unless defined $p; if (!$p) { sleep 5; exit 0 } $n++ } print "forked $n\\n"; exit($n < 64 ? 0 : 1)\'',
    'echo after',
  ]);
  expect(exits(job)).toEqual([0, 0]);
});

test('a step past its memory limit is reported as OOM-killed', async () => {
  // perl ships in the runner image; 256 MiB of string against a 64 MiB limit, no swap.
  const job = await run(['perl -e \'$x = "a" x (256 * 1024 * 1024); print length $x\'', 'true']);
  const [oom, after] = job.steps.filter((s) => s.kind === 'validate');
  expect(oom).toMatchObject({ status: 'failed', oomKilled: true, exitCode: 137 });
  expect(after).toMatchObject({ status: 'succeeded', oomKilled: false });
  expect(job.error).toMatch(/validate-0 \(OOM-killed/);
});
