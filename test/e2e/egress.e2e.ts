/**
 * A step is a sandbox on the network: it has loopback only (its own), shared with the
 * job's holder, and one way out, the egress proxy, which applies the job's policy.
 * Shown against the real engine, with the suite's git server as the allowed fixture.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { JobView } from '../../common/job';
import { GIT_HOST, type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { gitException, leftovers, startTestStack, type TestStack } from '../../testing/stack';
import { ASK_PROXY, PROBE } from '../../testing/probes';
import { fixtureCert } from '../../testing/tls';

let stack: TestStack;
let repo: GitFixture;
/** The git server behind TLS, as an HTTPS registry or forge is reached: through a CONNECT tunnel. */
let https: { port: number; ca: string; handshakes: number; server: tls.Server; dir: string };

beforeAll(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'draftsman-tls-'));
  const files = fixtureCert(dir, GIT_HOST);
  const ca = files.cert.toString();
  const server = tls.createServer({ key: files.key, cert: files.cert }, (socket) => {
    https.handshakes++;
    const plain = net.connect(Number(process.env.DRAFTSMAN_TEST_GIT_PORT), GIT_HOST);
    socket.pipe(plain).pipe(socket);
    plain.on('error', () => socket.destroy());
    socket.on('error', () => plain.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, GIT_HOST, resolve));
  https = { port: (server.address() as net.AddressInfo).port, ca, handshakes: 0, server, dir };
  [stack, repo] = await Promise.all([startTestStack({ DRAFTSMAN_EGRESS_EXCEPTIONS: `${gitException()},${GIT_HOST}:${https.port}` }), startGitFixture(1)]);
});
afterAll(async () => {
  await Promise.all([stack?.stop(), repo?.stop(), new Promise((r) => (https ? https.server.close(r) : r(undefined)))]);
  if (https) fs.rmSync(https.dir, { recursive: true, force: true });
});

const logOf = async (id: string, step: string) =>
  (await stack.store.logs.read(id, { afterId: 0, limit: 1000 })).flatMap((c) => (c.step === step ? c.lines : []).map((l) => l.x));

test('a step reaches no port of the control plane on 127.0.0.1 or ::1, its own listener yes, and the allowed fixture only through the proxy, which refuses the rest and records it', async () => {
  const api = new URL(stack.apiUrl).port;
  const temporal = stack.config.TEMPORAL_ADDRESS.split(':').pop()!;
  const pg = new URL(stack.config.DATABASE_URL!).port;
  // The fixture too: on the host's loopback (127.0.0.2), reachable only through the proxy.
  const targets = [...[api, temporal, pg].flatMap((p) => [`127.0.0.1:${p}`, `::1:${p}`]), gitException()];
  const { id } = await stack.jobs.start({
    repo: repo.url,
    commit: repo.head,
    egress: { allow: [gitException()] },
    setup: [
      `${PROBE} ${targets.join(' ')}`,
      // Through the proxy: the fixture is allowed (an operator exception and the spec's entry), the control plane not.
      `git ls-remote ${repo.url} | grep -c refs/heads/main`,
      `${ASK_PROXY} 127.0.0.1:${pg} 127.0.0.1:${temporal} 127.0.0.1:${api} ${gitException()}`,
      'env | grep -i "^https\\?_proxy=" | sort',
    ],
  });
  const job: JobView = await stack.waitForEnd(id);
  expect(job.status).toBe('succeeded');

  const direct = await logOf(id, 'setup-0');
  expect(direct[0]).toBe('own:open');
  expect(direct.slice(1)).toEqual(targets.map((t) => `${t}:refused`));
  expect(await logOf(id, 'setup-1')).toEqual(['1']);
  expect(await logOf(id, 'setup-2')).toEqual([
    `proxy 127.0.0.1:${pg}:403`,
    `proxy 127.0.0.1:${temporal}:403`,
    `proxy 127.0.0.1:${api}:403`,
    `proxy ${gitException()}:200`,
  ]);
  expect(await logOf(id, 'setup-3')).toEqual([
    'HTTPS_PROXY=http://127.0.0.1:3128',
    'HTTP_PROXY=http://127.0.0.1:3128',
    'http_proxy=http://127.0.0.1:3128',
    'https_proxy=http://127.0.0.1:3128',
  ]);

  const denied = (await stack.store.events(id)).filter((e) => e.type === 'egress_denied');
  expect(denied.map((e) => e.data).sort((a, b) => Number(a.port) - Number(b.port))).toEqual(
    [api, temporal, pg]
      .map((p) => ({ step: 'setup-2', host: '127.0.0.1', port: Number(p), reason: 'not in the egress allow list' }))
      .sort((a, b) => a.port - b.port),
  );
  // Counted for the job (the clone, git's fetch and the fixture's tunnel went through; three refused)...
  const view = (await stack.api<JobView>('GET', `/v1/jobs/${id}`)).body;
  expect(view.egress).toMatchObject({ denied: 3 });
  expect(view.egress!.connections).toBeGreaterThanOrEqual(3);
  expect(view.egress!.bytesIn).toBeGreaterThan(0);
  // ...and as metrics of the egress service.
  const connections = Object.fromEntries((await stack.metrics.egressConnections.get()).values.map((v) => [v.labels.outcome, v.value]));
  expect(connections.denied).toBeGreaterThanOrEqual(3);
  expect(connections.allowed).toBeGreaterThanOrEqual(3);
  // The holder went with the job.
  expect(await leftovers(stack.docker, id)).toEqual([]);
}, 120_000);

test('a job without egress entries gets the operator default (none here): the clone reaches the repository, a setup step nothing', async () => {
  const { id } = await stack.jobs.start({ repo: repo.url, commit: repo.head, setup: [`git ls-remote ${repo.url}`] });
  const job = await stack.waitForEnd(id);
  expect(job.steps.map((s) => `${s.kind}-${s.index}:${s.status}`)).toEqual(['clone-0:succeeded', 'setup-0:failed']);
  expect((await logOf(id, 'setup-0')).join('\n')).toMatch(/403/);
  const denied = (await stack.store.events(id)).filter((e) => e.type === 'egress_denied');
  expect(denied.map((e) => e.data)).toEqual([
    { step: 'setup-0', host: '127.0.0.2', port: Number(gitException().split(':')[1]), reason: 'not in the egress allow list' },
  ]);
}, 120_000);

test('git:// and ssh repositories are refused at submission: they cannot pass the proxy', async () => {
  for (const bad of ['git://127.0.0.1:9418/r.git', 'ssh://git@example.com/r.git', 'git@example.com:r.git']) {
    const res = await stack.api<{ code: string; field: string; detail: string }>('POST', '/v1/jobs', { repo: bad, commit: repo.head });
    expect([bad, res.status, res.body.field]).toEqual([bad, 400, 'repo']);
    expect(res.body.detail).toMatch(/not supported.*HTTP proxy/);
  }
});

test('a holder left stopped (as an engine restart may leave it) is started again when the next step joins it', async () => {
  const jobId = `holder-${process.pid}`;
  const ref = { jobId, kind: 'setup' as const, index: 0 };
  await stack.runner.prepareWorkspace(jobId);
  try {
    const [holder] = (await stack.runner.listJobResources(jobId)).holders;
    // An explicit stop: the engine's restart policy leaves it stopped.
    await stack.docker.getContainer(holder!).stop({ t: 0 });
    await stack.runner.start({ ...ref, image: stack.config.DRAFTSMAN_DEFAULT_IMAGE, command: 'true', env: {}, timeoutSeconds: 30 });
    expect((await stack.runner.wait(ref)).exitCode).toBe(0);
    expect((await stack.docker.getContainer(holder!).inspect()).State.Running).toBe(true);
  } finally {
    await stack.runner.removeJob(jobId);
  }
  expect(await stack.runner.listJobResources(jobId)).toEqual({ steps: [], holders: [], workspaces: [] });
});

test('an HTTPS fetch goes through the proxy as a CONNECT tunnel, with TLS end to end between the step and the server', async () => {
  const tlsHost = `${GIT_HOST}:${https.port}`;
  const httpsUrl = repo.url.replace(/^http:\/\/[^/]+/, `https://${tlsHost}`);
  const { id } = await stack.jobs.start({
    repo: repo.url,
    commit: repo.head,
    egress: { allow: [tlsHost] },
    env: { FIXTURE_CA: https.ca },
    setup: [`printf '%s' "$FIXTURE_CA" > /tmp/ca.pem && git -c http.sslCAInfo=/tmp/ca.pem ls-remote ${httpsUrl} | grep -c refs/heads/main`],
  });
  const job = await stack.waitForEnd(id);
  expect(job.steps.map((s) => `${s.kind}-${s.index}:${s.status}`)).toEqual(['clone-0:succeeded', 'setup-0:succeeded']);
  expect(await logOf(id, 'setup-0')).toEqual(['1']);
  // The TLS server saw the step's handshake: the proxy only tunnelled it.
  expect(https.handshakes).toBeGreaterThanOrEqual(1);
  expect((await stack.store.events(id)).filter((e) => e.type === 'egress_denied')).toEqual([]);
}, 120_000);
