import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { JobView } from '../../common/job';
import { JANITOR_SCHEDULE_ID, LABEL_JOB } from '../../common/names';
import Docker from 'dockerode';
import { projectRoot } from '../../common/paths';
import { freePort, TEST_DATA_DIR } from '../../testing/env';
import { type GitFixture, startGitFixture } from '../../testing/git-fixture';

// The run command's own entry point (`npm start` runs it after the set-up script),
// started as a user would, with its embedded Temporal dev server and PostgreSQL.
const ROOT = projectRoot();
let repo: GitFixture;
let dataDir: string;
let env: NodeJS.ProcessEnv;
let apiUrl: string;

beforeAll(async () => {
  repo = await startGitFixture(2);
  dataDir = path.join(TEST_DATA_DIR, `start-${process.pid}`);
  const [temporalPort, uiPort, pgPort] = [await freePort(), await freePort(), await freePort()];
  // PORT=0: the API takes a free port and prints it.
  env = {
    ...process.env,
    PORT: '0',
    TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
    DRAFTSMAN_TEMPORAL_UI_PORT: String(uiPort),
    DRAFTSMAN_EMBEDDED_PG_PORT: String(pgPort),
    DRAFTSMAN_DATA_DIR: dataDir,
    DRAFTSMAN_EGRESS_EXCEPTIONS: repo.egressException,
    DRAFTSMAN_LOG_LEVEL: 'WARN',
  };
  // What the run command embeds or generates must not come from the caller's environment.
  for (const name of ['DATABASE_URL', 'DRAFTSMAN_API_TOKENS', 'DRAFTSMAN_API_TOKENS_FILE', 'DRAFTSMAN_PAYLOAD_KEYS']) delete env[name];
});
afterAll(async () => {
  await repo?.stop();
});

/**
 * Starts the run command's entry point, or with `npm` the whole `npm start` (set-up
 * script included; the Temporal CLI the project built is on its PATH).
 */
function start(how: 'entry' | 'npm' = 'entry'): Promise<{ child: ChildProcess; output: () => string }> {
  // Its own process group, as a terminal gives `npm start`: a test can kill the whole group.
  const [cmd, args, extra] =
    how === 'npm'
      ? (['npm', ['start'], { PATH: `${path.join(ROOT, 'data', 'bin')}:${process.env.PATH}` }] as const)
      : ([process.execPath, ['dist/stack/main.js'], {}] as const);
  const child = spawn(cmd, [...args], { cwd: ROOT, env: { ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      process.kill(-child.pid!, 'SIGINT'); // it stops its own servers on the way out
      reject(new Error(`not ready after 180 s:\n${output}`));
    }, 180_000);
    child.stdout!.on('data', () => {
      if (output.includes('press Ctrl-C to stop')) {
        clearTimeout(timer);
        apiUrl = /API\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(output)![1]!;
        resolve({ child, output: () => output });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code}:\n${output}`));
    });
  });
}

/** Ctrl-C: SIGINT to the whole process group, as a terminal sends it. */
function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    process.kill(-child.pid!, 'SIGINT');
  });
}

/** Processes whose command line names the data folder: the dev server and PostgreSQL. */
function stackProcesses(): string[] {
  const out = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(dataDir) && !l.includes('jest'));
}

/** A session's cookie, opened with a token as the sign-in form does. */
async function sessionCookie(apiUrl: string, token: string): Promise<string> {
  const res = await fetch(`${apiUrl}/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
  expect(res.status).toBe(201);
  return (res.headers.get('set-cookie') ?? '').split(';')[0]!;
}

test('the run command starts the stack, runs a job, stops cleanly on Ctrl-C and keeps its state', async () => {
  const first = await start();
  expect(first.output()).toContain(apiUrl);
  expect(first.output()).toMatch(/Temporal UI\s+http:\/\/127\.0\.0\.1:\d+/);
  try {
    const health = await fetch(`${apiUrl}/health`);
    expect(health.status).toBe(200);
    // The worker's start-up registered the janitor's schedule.
    const connection = await Connection.connect({ address: env.TEMPORAL_ADDRESS });
    try {
      const schedule = await new Client({ connection }).schedule.getHandle(JANITOR_SCHEDULE_ID).describe();
      expect(schedule.spec.intervals?.[0]?.every).toBe(300_000);
      expect(schedule.action).toMatchObject({ type: 'startWorkflow', workflowType: 'janitorWorkflow' });
    } finally {
      await connection.close();
    }
    // No tokens configured: the run command made one and keeps it in the data folder.
    const token = fs.readFileSync(path.join(dataDir, 'api-token'), 'utf8').trim();
    const auth = { authorization: `Bearer ${token}` };
    expect((await fetch(`${apiUrl}/v1/jobs`)).status).toBe(401);
    // The dashboard is served by the built API: the root leads to it, and it to the sign-in form.
    const root = await fetch(`${apiUrl}/`, { redirect: 'manual' });
    expect([root.status, root.headers.get('location')]).toEqual([302, '/ui/']);
    const page = await fetch(`${apiUrl}/ui/`, { redirect: 'manual', headers: { accept: 'text/html' } });
    expect([page.status, page.headers.get('location')]).toEqual([303, '/login?next=%2Fui%2F']);
    const signedIn = await fetch(`${apiUrl}/ui/`, { headers: { accept: 'text/html', cookie: await sessionCookie(apiUrl, token) } });
    expect([signedIn.status, await signedIn.text()]).toEqual([200, expect.stringMatching(/<script type="module" src="\/ui\/assets\/main-\w+\.js">/)]);
    const res = await fetch(`${apiUrl}/v1/jobs`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ repo: repo.url, commit: repo.commits[0], validate: ['test "$(cat marker)" = commit-1'] }),
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    let job: JobView;
    const deadline = Date.now() + 60_000;
    do {
      await new Promise((r) => setTimeout(r, 200));
      job = (await (await fetch(`${apiUrl}/v1/jobs/${id}`, { headers: auth })).json()) as JobView;
    } while (!job.finishedAt && Date.now() < deadline);
    expect(job.status).toBe('succeeded');

    expect(await stop(first.child)).toBe(0);
    expect(first.output()).toContain('stopped');
    expect(stackProcesses()).toEqual([]);

    // Started again on the same data folder, the job is still there.
    const second = await start();
    try {
      const again = (await (await fetch(`${apiUrl}/v1/jobs/${id}`, { headers: auth })).json()) as JobView;
      expect(again).toMatchObject({ id, status: 'succeeded' });
    } finally {
      expect(await stop(second.child)).toBe(0);
    }
    expect(stackProcesses()).toEqual([]);
  } finally {
    // On a failed assertion, stop the stack as a user would, so that it takes its servers with it.
    if (first.child.exitCode === null) await stop(first.child);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('the whole control plane SIGKILLed while a step runs: `npm start` starts it again the first time, and the job completes with nothing left behind', async () => {
  const first = await start();
  const token = fs.readFileSync(path.join(dataDir, 'api-token'), 'utf8').trim();
  const auth = { authorization: `Bearer ${token}` };
  const job = async (id: string) => (await (await fetch(`${apiUrl}/v1/jobs/${id}`, { headers: auth })).json()) as JobView;
  let second: Awaited<ReturnType<typeof start>> | undefined;
  try {
    const res = await fetch(`${apiUrl}/v1/jobs`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ repo: repo.url, commit: repo.commits[0], setup: ['echo started; sleep 6; echo finished'], validate: ['true'] }),
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const deadline = Date.now() + 60_000;
    while (!(await job(id)).steps.some((s) => s.kind === 'setup' && s.status === 'running')) {
      if (Date.now() > deadline) throw new Error(`setup-0 never ran: ${JSON.stringify(await job(id))}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // Everything the run command started (dev server, PostgreSQL, worker, API) dies at once.
    const exited = new Promise((r) => first.child.once('exit', r));
    process.kill(-first.child.pid!, 'SIGKILL');
    await exited;
    await new Promise((r) => setTimeout(r, 500));

    second = await start('npm');
    let ended: JobView;
    const until = Date.now() + 90_000;
    do {
      await new Promise((r) => setTimeout(r, 200));
      ended = await job(id);
    } while (!ended.finishedAt && Date.now() < until);
    expect(ended).toMatchObject({ status: 'succeeded' });
    const docker = new Docker();
    const filters = JSON.stringify({ label: [`${LABEL_JOB}=${id}`] });
    expect((await docker.listContainers({ all: true, filters })).map((c) => c.Names[0])).toEqual([]);
    expect((await docker.listVolumes({ filters })).Volumes ?? []).toEqual([]);
  } finally {
    if (first.child.exitCode === null && first.child.signalCode === null) await stop(first.child);
    if (second && second.child.exitCode === null) await stop(second.child);
    expect(stackProcesses()).toEqual([]);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
