/**
 * Steps under gVisor (DRAFTSMAN_STEP_RUNTIME=runsc), on a private engine that has the
 * runtime registered: a kernel of gVisor's own between the step and the host's, no
 * way to the control plane, and egress through a forwarder in each step (gVisor's own
 * network stack gives a joined namespace no route to a holder).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../common/config';
import { RunnerError } from '../../common/errors';
import { DockerRunner } from '../../runner/docker/docker-runner';
import { stepPolicy } from '../../worker/worker';
import { TEST_DATA_DIR } from '../../testing/env';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { waitFor } from '../../testing/helpers';
import { type PrivateEngine, startPrivateEngine } from '../../testing/private-engine';
import { gitException, leftovers, startTestStack, type TestStack } from '../../testing/stack';

const RUNSC = '/usr/bin/runsc';
const dir = path.join(TEST_DATA_DIR, `gvisor-${process.pid}`);
let engine: PrivateEngine;
let stack: TestStack;
let repo: GitFixture;

beforeAll(async () => {
  if (!fs.existsSync(RUNSC)) throw new Error(`${RUNSC} is missing: npm test installs it (infra/scripts/ensure-runsc.sh)`);
  engine = await startPrivateEngine({
    dataRoot: path.join(dir, 'engine'),
    images: [loadConfig({}).DRAFTSMAN_DEFAULT_IMAGE],
    log: () => undefined,
    runtimes: {
      runsc: { path: RUNSC, runtimeArgs: ['--network=none', '--host-uds=open'] },
      // Registered without access to host sockets: steps could not reach the proxy.
      'runsc-closed': { path: RUNSC, runtimeArgs: ['--network=none'] },
    },
  });
  [stack, repo] = await Promise.all([startTestStack({ DRAFTSMAN_STEP_RUNTIME: 'runsc' }, { docker: engine.docker }), startGitFixture(1)]);
}, 180_000);
afterAll(async () => {
  await Promise.all([stack?.stop(), repo?.stop()]);
  await engine?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}, 60_000);

const logOf = async (id: string, step: string) =>
  (await stack.store.logs.read(id, { afterId: 0, limit: 1000 })).flatMap((c) => (c.step === step ? c.lines : []).map((l) => l.x));

/** Prints `host:port:open` or `:refused` for each target (the runner image has perl, no nc or curl). */
const PROBE = `perl -MIO::Socket::IP -e '
  for my $t (@ARGV) {
    my ($h, $p) = $t =~ /^(.*):(\\d+)$/;
    my $s = IO::Socket::IP->new(PeerHost => $h, PeerPort => $p, Timeout => 2);
    print "$t:", ($s ? "open" : "refused"), "\\n";
  }'`;

test("a job under gVisor: cloned and fetched through the proxy, on a kernel that is not the host's, with no way to the control plane", async () => {
  const api = new URL(stack.apiUrl).port;
  const temporal = stack.config.TEMPORAL_ADDRESS.split(':').pop()!;
  const pg = new URL(stack.config.DATABASE_URL!).port;
  const controlPlane = [api, temporal, pg].flatMap((p) => [`127.0.0.1:${p}`, `::1:${p}`]);
  const { id } = await stack.jobs.start({
    repo: repo.url,
    commit: repo.head,
    egress: { allow: [gitException()] },
    setup: ['uname -r', `${PROBE} ${controlPlane.join(' ')}`, `git ls-remote ${repo.url} | grep -c refs/heads/main`, 'git log --format=%H -1'],
  });
  const job = await stack.waitForEnd(id);
  expect(job.status).toBe('succeeded');
  const kernel = (await logOf(id, 'setup-0'))[0];
  expect(kernel).toBeTruthy();
  expect(kernel).not.toBe(os.release());
  expect(await logOf(id, 'setup-1')).toEqual(controlPlane.map((t) => `${t}:refused`));
  expect(await logOf(id, 'setup-2')).toEqual(['1']);
  expect(await logOf(id, 'setup-3')).toEqual([repo.head]);
  expect(await leftovers(engine.docker, id)).toEqual([]);
}, 180_000);

test("a cancel under gVisor still reaches the user's whole process group with the grace period", async () => {
  const { id } = await stack.jobs.start({
    repo: repo.url,
    commit: repo.head,
    setup: [`perl -e '$|=1; $SIG{TERM}=sub{print "got-term\\n"; exit 0}; print "ready\\n"; sleep 60'; echo after`],
  });
  await waitFor(async () => (await logOf(id, 'setup-0')).includes('ready'), 'the step to say ready', { timeoutMs: 60_000, everyMs: 100 });
  await stack.jobs.cancel(id, 'test');
  const job = await stack.waitForEnd(id);
  expect(job.status).toBe('cancelled');
  expect(await logOf(id, 'setup-0')).toEqual(['ready', 'got-term']);
  expect(await leftovers(engine.docker, id)).toEqual([]);
}, 120_000);

test.each([
  ['a runtime the engine does not have', 'runsc-missing', /no runtime of that name \(it has: .*runsc/],
  ['gVisor without access to host sockets', 'runsc-closed', /--host-uds=open/],
])('a worker refuses to start with %s, naming what to fix', async (_name, runtime, message) => {
  const config = loadConfig({ DRAFTSMAN_EGRESS_SOCKET_DIR: path.join(dir, 'sockets'), DRAFTSMAN_STEP_RUNTIME: runtime });
  const err = await new DockerRunner(engine.docker, stepPolicy(config)).ready().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(RunnerError);
  expect((err as Error).message).toMatch(message);
});
