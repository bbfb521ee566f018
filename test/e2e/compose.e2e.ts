import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import type { JobView } from '../../common/job';
import { projectRoot } from '../../common/paths';
import { freePort } from '../../testing/env';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { waitFor } from '../../testing/helpers';
import { ASK_PROXY, PROBE } from '../../testing/probes';

// The deployment of infra/compose, brought up with its own wrapper and the real
// compose file on this machine's engine. No image can be pulled here, so the
// third-party services run from the stand-in images of infra/standins (the
// pretest step builds them); Draftsman's own image is built from infra/app/Dockerfile.
const ROOT = projectRoot();
const DC = path.join(ROOT, 'infra/compose/dc');
const STANDIN = 'draftsman-standin';
const docker = new Docker();
const run = promisify(execFile);

const project = `draftsman-e2e-${process.pid}`;
const token = crypto.randomBytes(16).toString('hex');
const services = ['postgres', 'temporal', 'temporal-ui', 'api', 'worker', 'egress'] as const;
let repo: GitFixture;
let env: NodeJS.ProcessEnv;
let apiUrl: string;
let uiUrl: string;
let backups: string;
let secrets: string;
const timings: Record<string, number> = {};

async function dc(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run(DC, args, {
      env,
      cwd: ROOT,
      maxBuffer: 64 * 2 ** 20,
    });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`dc ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`, { cause: err });
  }
}

async function containerOf(service: string): Promise<Docker.ContainerInspectInfo> {
  const [c] = await docker.listContainers({
    all: true,
    filters: JSON.stringify({ label: [`com.docker.compose.project=${project}`, `com.docker.compose.service=${service}`] }),
  });
  if (!c) throw new Error(`no container of ${service}`);
  return docker.getContainer(c.Id).inspect();
}

async function health(): Promise<Record<string, string>> {
  const entries = await Promise.all(
    services.map(async (s) => {
      const info = await containerOf(s).catch(() => undefined);
      return [s, info?.State.Health?.Status ?? info?.State.Status ?? 'missing'] as const;
    }),
  );
  return Object.fromEntries(entries);
}

async function allHealthy(timeoutMs: number): Promise<void> {
  await waitFor(
    async () => Object.values(await health()).every((s) => s === 'healthy'),
    async () => `every service healthy: ${JSON.stringify(await health())}`,
    {
      timeoutMs,
      everyMs: 500,
    },
  );
}

let bearer = token;
/** A query in Draftsman's database as the superuser (the database container's local socket). */
async function psql(sql: string): Promise<string> {
  const pg = await containerOf('postgres');
  const { stdout } = await run('docker', ['exec', pg.Id, 'psql', '-U', 'draftsman', '-d', 'draftsman', '-v', 'ON_ERROR_STOP=1', '-tAc', sql]);
  return stdout.trim();
}

/** Owners of the tables of Draftsman's schema, and what the application's role is. */
const ownership = async () => ({
  owners: (await psql("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")).split('\n'),
  role: await psql("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = 'draftsman_app'"),
});

/** What a statement gets in the API container, on the API's own connection settings. */
async function asApplication(sql: string): Promise<string> {
  const script = `const { Client } = require('pg'); const fs = require('fs');
const url = new URL(process.env.DATABASE_URL); url.password = fs.readFileSync(process.env.DATABASE_PASSWORD_FILE, 'utf8').trim();
const c = new Client({ connectionString: url.toString() });
c.connect().then(() => c.query(process.argv[1])).then(() => console.log(url.username + ' allowed'), (e) => console.log(url.username + ' refused ' + e.code)).finally(() => c.end());`;
  const { stdout } = await run('docker', ['exec', (await containerOf('api')).Id, 'node', '-e', script, sql]);
  return stdout.trim();
}

async function api<T>(method: string, route: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${apiUrl}${route}`, {
    method,
    headers: { authorization: `Bearer ${bearer}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: (await res.json()) as T };
}

/** The fixture's repository as the deployment's git server serves it (test/e2e/compose/git-fixture.yml). */
const fixtureRepo = () => repo.url.replace(/^http:\/\/[\d.]+:\d+/, 'http://git-fixture:8080');

/** Submits a spec and waits for the job's end. */
async function submitAndWait(spec: Record<string, unknown>): Promise<JobView> {
  const started = await api<{ id: string }>('POST', '/v1/jobs', { repo: fixtureRepo(), commit: repo.head, ...spec });
  expect(started.status).toBe(202);
  let job: JobView | undefined;
  await waitFor(
    async () => {
      job = (await api<JobView>('GET', `/v1/jobs/${started.body.id}`)).body;
      return job.status !== 'queued' && job.status !== 'running';
    },
    () => `job ${started.body.id} to end: ${JSON.stringify(job)}`,
    { timeoutMs: 120_000, everyMs: 250 },
  );
  return job!;
}

const runJob = (marker: string) =>
  submitAndWait({ setup: [`echo ${marker} > setup.txt`], validate: [`test "$(cat setup.txt)" = ${marker}`, 'test "$(id -u)" != 0'] });

/** A step's stored lines, through the API. */
async function stepLog(id: string, step: string): Promise<string[]> {
  const res = await fetch(`${apiUrl}/v1/jobs/${id}/logs?step=${step}`, { headers: { authorization: `Bearer ${bearer}` } });
  return (await res.text())
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { text: string }).text);
}

const events = async (id: string) => (await api<{ events: { type: string }[] }>('GET', `/v1/jobs/${id}/events`)).body.events.map((e) => e.type);

beforeAll(async () => {
  repo = await startGitFixture(2);
  backups = fs.mkdtempSync(path.join(os.tmpdir(), 'draftsman-backups-'));
  // Empty until the production test writes the secret files.
  secrets = fs.mkdtempSync(path.join(os.tmpdir(), 'draftsman-secrets-'));
  const [apiPort, uiPort] = [await freePort(), await freePort()];
  apiUrl = `http://127.0.0.1:${apiPort}`;
  uiUrl = `http://127.0.0.1:${uiPort}`;
  const subnet = process.pid % 250;
  env = {
    ...process.env,
    COMPOSE_PROJECT_NAME: project,
    DRAFTSMAN_PGDATA_VOLUME: `${project}-pgdata`,
    DRAFTSMAN_ASSUME_YES: '1',
    DRAFTSMAN_COMPOSE_EXTRA_FILES: [path.join(__dirname, 'compose/networks.yml'), path.join(__dirname, 'compose/git-fixture.yml')].join(':'),
    DRAFTSMAN_TEST_GIT_CGI: path.join(__dirname, 'compose/git-cgi.pl'),
    DRAFTSMAN_EGRESS_VOLUME: `${project}-egress`,
    DRAFTSMAN_DB_CREDENTIALS_VOLUME: `${project}-db-credentials`,
    // Steps reach the deployment's git server by name through the egress proxy.
    DRAFTSMAN_EGRESS_EXCEPTIONS: 'git-fixture:8080',
    DRAFTSMAN_COMPOSE_SECRETS: secrets,
    DRAFTSMAN_TEST_BACKEND_SUBNET: `198.18.${subnet}.0/24`,
    DRAFTSMAN_TEST_EDGE_SUBNET: `198.19.${subnet}.0/24`,
    POSTGRES_PASSWORD: crypto.randomBytes(12).toString('hex'),
    DRAFTSMAN_API_TOKENS: `admin:read+write:${token}`,
    POSTGRES_IMAGE: `${STANDIN}/postgres:15`,
    TEMPORAL_SERVER_IMAGE: `${STANDIN}/temporal-server:1.29.1`,
    TEMPORAL_ADMIN_TOOLS_IMAGE: `${STANDIN}/temporal-admin-tools:1.29.1`,
    TEMPORAL_UI_IMAGE: `${STANDIN}/temporal-ui:2.42.1`,
    NODE_IMAGE: `${STANDIN}/node:22`,
    // This engine has no bridge: the image build's `npm ci` uses the host's network.
    DRAFTSMAN_BUILD_NETWORK: 'host',
    DRAFTSMAN_IMAGE: 'draftsman:e2e',
    DRAFTSMAN_API_PUBLISH: `127.0.0.1:${apiPort}`,
    TEMPORAL_UI_PUBLISH: `127.0.0.1:${uiPort}`,
    DRAFTSMAN_MIN_FREE_DISK_MB: '0',
    DRAFTSMAN_BACKUP_RETENTION_DAYS: '7',
  };
  // Built from the current sources on every run; the dependency layers are cached.
  await dc('build', '--force-rm', 'api');
}, 900_000);

afterAll(async () => {
  await dc('down', '-v', '--remove-orphans', '--timeout', '5').catch((err) => console.error(err));
  await docker
    .getVolume(`${project}-pgdata`)
    .remove()
    .catch(() => undefined);
  await repo?.stop();
  fs.rmSync(backups, { recursive: true, force: true });
  fs.rmSync(secrets, { recursive: true, force: true });
  fs.mkdirSync(path.join(ROOT, 'test-artifacts'), { recursive: true });
  fs.writeFileSync(path.join(ROOT, 'test-artifacts', 'compose-timings.json'), JSON.stringify(timings, null, 2));
}, 120_000);

test('the overrides validate, and the wrapper refuses what is missing', async () => {
  expect(await dc('config', '-q')).toBe('');
  // The compose file alone (without the test's address override) keeps the backend internal.
  const base = await run(DC, ['config'], { env: { ...env, DRAFTSMAN_COMPOSE_EXTRA_FILES: '' } }).then((r) => r.stdout);
  expect(base).toMatch(/networks:\n {2}backend:\n {4}internal: true\n/);
  for (const extra of ['--dev', '--prod']) {
    // config needs the prod secrets' files to exist only at `up`; config itself validates the merge.
    await expect(run(DC, [extra, 'config', '-q'], { env })).resolves.toMatchObject({ stdout: '' });
  }
  const prod = await run(DC, ['--prod', 'config'], { env }).then((r) => r.stdout);
  expect(prod).toMatch(/DRAFTSMAN_API_TOKENS_FILE: \/run\/secrets\/api_tokens/);
  expect(prod).toMatch(/read_only: true/);
  const dev = await run(DC, ['--dev', 'config'], { env }).then((r) => r.stdout);
  expect(dev).toMatch(/target: dev/);
  expect(dev).toMatch(/9229/);

  // Without a database password (and with --prod, without the secret files) nothing starts.
  const noPassword = { ...env, POSTGRES_PASSWORD: '' };
  await expect(run(DC, ['up', '-d'], { env: noPassword })).rejects.toMatchObject({ stderr: expect.stringMatching(/POSTGRES_PASSWORD is not set/) });
  await expect(run(DC, ['--prod', 'up', '-d'], { env })).rejects.toMatchObject({
    stderr: expect.stringMatching(/--prod needs the file .*\/postgres_password/),
  });
  expect(await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`com.docker.compose.project=${project}`] }) })).toEqual([]);
});

test('up -d from nothing: every service healthy, only the API and the Web UI published, the socket in the worker only', async () => {
  const t0 = Date.now();
  await dc('up', '-d');
  await allHealthy(180_000);
  timings.upFromNothingMs = Date.now() - t0;
  console.log(`compose up -d from nothing to every service healthy: ${timings.upFromNothingMs} ms`);

  const published: Record<string, string[]> = {};
  for (const s of [...services, 'temporal-schema', 'temporal-namespace', 'draftsman-db']) {
    const info = await containerOf(s);
    const bindings = Object.values(info.HostConfig.PortBindings ?? {}).flat() as { HostIp: string }[];
    if (bindings.length) published[s] = bindings.map((b) => b.HostIp);
    const sockets = info.Mounts.filter((m) => m.Destination === '/var/run/docker.sock');
    expect([s, sockets.length]).toEqual([s, s === 'worker' ? 1 : 0]);
    // A drained worker exits 0 and stays down: on-failure, where the others restart unless stopped.
    const policy = (s.startsWith('temporal-') && s !== 'temporal-ui') || s === 'draftsman-db' ? 'no' : s === 'worker' ? 'on-failure' : 'unless-stopped';
    expect([s, info.HostConfig.RestartPolicy?.Name]).toEqual([s, policy]);
    expect([s, info.HostConfig.LogConfig?.Config?.['max-size']]).toEqual([s, '10m']);
  }
  expect(published).toEqual({ api: ['127.0.0.1'], 'temporal-ui': ['127.0.0.1'] });
  // The one-shot set-up services ran to the end.
  for (const s of ['temporal-schema', 'temporal-namespace', 'draftsman-db']) {
    expect((await containerOf(s)).State).toMatchObject({ Status: 'exited', ExitCode: 0 });
  }
  // The API, the worker and the egress service run as a non-root user, with memory limits.
  for (const s of ['api', 'worker', 'egress']) {
    const info = await containerOf(s);
    expect(info.Config.User).toBe('10001:10001');
    expect(info.HostConfig.Memory).toBeGreaterThan(0);
  }
  // Draftsman's services connect as a role that owns its schema and nothing more, and only
  // the one-shot set-up holds the superuser's password.
  expect(await asApplication("COPY (SELECT 1) TO PROGRAM 'true'")).toBe('draftsman_app refused 42501');
  expect(await asApplication('CREATE ROLE intruder')).toBe('draftsman_app refused 42501');
  expect(await asApplication('SELECT count(*) FROM jobs')).toBe('draftsman_app allowed');
  expect(await ownership()).toEqual({ owners: ['draftsman_app'], role: 'f|f|f' });
  for (const s of ['api', 'worker', 'egress']) {
    const environment = ((await containerOf(s)).Config.Env ?? []).join('\n');
    expect([s, environment.includes(env.POSTGRES_PASSWORD!)]).toEqual([s, false]);
  }
  // The backend network has no route out.
  const network = await docker.getNetwork(`${project}_backend`).inspect();
  expect(network.Internal).toBe(true);
  // The Web UI answers on its published port.
  expect((await fetch(`${uiUrl}/healthz`)).status).toBe(200);
}, 300_000);

let first: JobView;
test('a job submitted to the API runs to success through the worker container', async () => {
  first = await runJob('first');
  expect(first).toMatchObject({ status: 'succeeded' });
  expect(first.steps.map((s) => `${s.kind}-${s.index}:${s.exitCode}`)).toEqual(['clone-0:0', 'setup-0:0', 'validate-0:0', 'validate-1:0']);
  // The worker container is the only worker of this Temporal server, and its log names the job.
  const logs = (await run('docker', ['logs', (await containerOf('worker')).Id], { maxBuffer: 64 * 2 ** 20 })).stdout;
  expect(logs).toContain(first.id);
}, 180_000);

test('a step reaches none of the deployment: on its loopback only its own listener, and the proxy refuses the services by name even where the spec allows them', async () => {
  const ports = ['3000', '7233', '5432', '8080'];
  const local = ports.flatMap((p) => [`127.0.0.1:${p}`, `::1:${p}`]);
  const named = ['api:3000', 'temporal:7233', 'postgres:5432', 'temporal-ui:8080'];
  const job = await submitAndWait({
    egress: { allow: ['git-fixture:8080', ...named] },
    setup: [`${PROBE} ${local.join(' ')}`, `${ASK_PROXY} ${named.join(' ')} git-fixture:8080`],
  });
  expect(job.status).toBe('succeeded');
  expect(await stepLog(job.id, 'setup-0')).toEqual(['own:open', ...local.map((t) => `${t}:refused`)]);
  // The positive control: the deployment's git server, an operator exception, through the same proxy.
  expect(await stepLog(job.id, 'setup-1')).toEqual([...named.map((s) => `proxy ${s}:403`), 'proxy git-fixture:8080:200']);
  const trail = (await api<{ events: { type: string; data: { host: string; port: number; reason: string } }[] }>('GET', `/v1/jobs/${job.id}/events`)).body
    .events;
  const denied = trail.filter((e) => e.type === 'egress_denied').map((e) => `${e.data.host}:${e.data.port}`);
  expect(denied.sort()).toEqual([...named].sort());
  // Refused for their addresses (the backend network), not for the allow list.
  for (const e of trail.filter((x) => x.type === 'egress_denied')) expect(e.data.reason).toMatch(/^resolves to \S+ \(\w+/);
}, 180_000);

test('down then up -d, from the database as an older version left it: the job and its audit trail are still there, owned by the application role again', async () => {
  const trail = await events(first.id);
  expect(trail[trail.length - 1]).toBe('finished');
  await dc('down', '--timeout', '10');
  expect(await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`com.docker.compose.project=${project}`] }) })).toEqual([]);
  // As versions that connected as the superuser left it: no application role, no
  // credentials volume, every table the superuser's.
  await dc('up', '-d', 'postgres');
  await waitFor(async () => (await psql('SELECT 1').catch(() => '')) === '1', 'the database to accept connections', { timeoutMs: 60_000, everyMs: 250 });
  await psql('REASSIGN OWNED BY draftsman_app TO draftsman; DROP ROLE draftsman_app');
  expect(await ownership()).toEqual({ owners: ['draftsman'], role: '' });
  await dc('down', '--timeout', '10');
  await docker.getVolume(`${project}-db-credentials`).remove();
  const t0 = Date.now();
  await dc('up', '-d');
  await allHealthy(180_000);
  timings.upAgainMs = Date.now() - t0;
  const again = await api<JobView>('GET', `/v1/jobs/${first.id}`);
  expect(again.body).toEqual(first);
  expect(await events(first.id)).toEqual(trail);
  expect(await ownership()).toEqual({ owners: ['draftsman_app'], role: 'f|f|f' });
}, 300_000);

test('backup, then restore: a job after the backup is gone, the one before it is there, every service healthy', async () => {
  const out = await run(path.join(ROOT, 'infra/ops/backup.sh'), [backups], { env, maxBuffer: 16 * 2 ** 20 });
  const folder = out.stdout.trim().split('\n').pop()!;
  expect(fs.readdirSync(folder).sort()).toEqual(['SHA256SUMS', 'draftsman.dump', 'temporal.dump', 'temporal_visibility.dump']);
  // Retention: a backup folder older than the retention is deleted by the next backup.
  const old = path.join(backups, '20200101T000000Z');
  fs.mkdirSync(old);
  const past = new Date('2020-01-01T00:00:00Z');
  fs.utimesSync(old, past, past);

  const after = await runJob('after-backup');
  expect(after.status).toBe('succeeded');
  await run(path.join(ROOT, 'infra/ops/backup.sh'), [backups], { env });
  expect(fs.existsSync(old)).toBe(false);

  // A damaged backup is refused before anything is stopped.
  const damaged = path.join(backups, 'damaged');
  fs.cpSync(folder, damaged, { recursive: true });
  fs.appendFileSync(path.join(damaged, 'draftsman.dump'), 'x');
  await expect(run(path.join(ROOT, 'infra/ops/restore.sh'), [damaged], { env })).rejects.toMatchObject({ stderr: expect.stringMatching(/checksums/) });
  expect(Object.values(await health()).every((s) => s === 'healthy')).toBe(true);

  await run(path.join(ROOT, 'infra/ops/restore.sh'), [folder], { env, maxBuffer: 16 * 2 ** 20 });
  expect((await api('GET', `/v1/jobs/${after.id}`)).status).toBe(404);
  expect((await api<JobView>('GET', `/v1/jobs/${first.id}`)).body).toEqual(first);
  expect(Object.values(await health()).every((s) => s === 'healthy')).toBe(true);
}, 400_000);

test('the worker container killed: its restart policy brings it back and a new job succeeds', async () => {
  const before = await containerOf('worker');
  // A pid of 0 would signal the test's own process group.
  expect(before.State.Pid).toBeGreaterThan(0);
  // SIGKILL of the container's main process from the host, as a crash would end it
  // (`docker kill` would count as a deliberate stop).
  process.kill(before.State.Pid, 'SIGKILL');
  await waitFor(async () => (await containerOf('worker')).RestartCount > before.RestartCount, 'the worker to be restarted', {
    timeoutMs: 60_000,
    everyMs: 200,
  });
  await allHealthy(120_000);
  const job = await runJob('after-crash');
  expect(job.status).toBe('succeeded');
}, 300_000);

test('the production override: secrets from files, none in any environment, read-only roots, a job succeeds', async () => {
  await dc('down', '--timeout', '10');
  // The same database volume, so the password is the one it was initialised with.
  const prodToken = crypto.randomBytes(16).toString('hex');
  const files = {
    postgres_password: env.POSTGRES_PASSWORD!,
    api_tokens: `admin:read+write:${prodToken}\n`,
    payload_keys: `k1:${crypto.randomBytes(32).toString('base64')}`,
  };
  // A file only its owner can read is refused: the services read it as their own users.
  for (const [name, value] of Object.entries(files)) fs.writeFileSync(path.join(secrets, name), value, { mode: 0o600 });
  await expect(run(DC, ['--prod', 'up', '-d'], { env: { ...env, POSTGRES_PASSWORD: '' } })).rejects.toMatchObject({
    stderr: expect.stringMatching(/postgres_password must be readable by the services' users/),
  });
  // Readable files in a folder only root may enter (mkdtemp makes it 700).
  for (const name of Object.keys(files)) fs.chmodSync(path.join(secrets, name), 0o644);
  expect(fs.statSync(secrets).mode & 0o777).toBe(0o700);
  // Nothing secret in the environment of the production run.
  const prodEnv = { ...env, POSTGRES_PASSWORD: '', DRAFTSMAN_API_TOKENS: '' };
  await run(DC, ['--prod', 'up', '-d'], { env: prodEnv, maxBuffer: 16 * 2 ** 20 });
  await allHealthy(180_000);

  for (const s of [...services, 'temporal-schema', 'temporal-namespace']) {
    const info = await containerOf(s);
    const environment = (info.Config.Env ?? []).join('\n');
    for (const value of Object.values(files)) expect([s, environment.includes(value.trim())]).toEqual([s, false]);
  }
  for (const s of ['api', 'worker', 'egress', 'temporal-namespace', 'temporal-schema']) {
    expect([s, (await containerOf(s)).HostConfig.ReadonlyRootfs]).toEqual([s, true]);
  }
  // The old token is refused; the one from the file works, and a job runs end to end.
  expect((await api('GET', '/v1/jobs')).status).toBe(401);
  bearer = prodToken;
  const job = await runJob('production');
  expect(job.status).toBe('succeeded');
  expect((await api<JobView>('GET', `/v1/jobs/${first.id}`)).body.status).toBe('succeeded');
}, 300_000);
