/**
 * Ready network holders on the real engine: made ahead of jobs, each given to one job,
 * which reaches its own socket through it; removed with the job, on stop, and (what a
 * killed worker left) on the next start. The egress service is a stand-in here that
 * answers each connection with the folder it listens in.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { loadConfig } from '../../common/config';
import { jobDir, JOB_FILE, SOCKET_NAME } from '../../common/egress-layout';
import { LABEL_READY } from '../../common/names';
import { holderName } from '../../runner/docker/convert';
import { DockerRunner } from '../../runner/docker/docker-runner';
import { leftovers } from '../../testing/stack';
import { waitFor } from '../../testing/helpers';
import { stepPolicy } from '../../worker/worker';

const docker = new Docker();
const socketDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dr-ready-'));
const config = loadConfig({ DRAFTSMAN_DEPLOYMENT_ID: 'ready', DRAFTSMAN_EGRESS_SOCKET_DIR: socketDir });
const policy = stepPolicy(config);
const runner = () => new DockerRunner(docker, policy);

/** The egress service's part: a listener in every job folder that appears, answering with the folder's name. */
function standIn(): { stop(): void } {
  const servers = new Map<string, net.Server>();
  const scan = () => {
    for (const key of fs.readdirSync(socketDir)) {
      if (key.startsWith('.') || servers.has(key) || !fs.existsSync(path.join(socketDir, key, JOB_FILE))) continue;
      const server = net.createServer((c) => c.end(`folder ${key}\n`));
      server.listen(path.join(socketDir, key, SOCKET_NAME), () => fs.chmodSync(path.join(socketDir, key, SOCKET_NAME), 0o666));
      servers.set(key, server);
    }
  };
  const timer = setInterval(scan, 10);
  return {
    stop() {
      clearInterval(timer);
      for (const s of servers.values()) s.close();
    },
  };
}

const readyOnEngine = async () =>
  (await docker.listContainers({ all: true, filters: JSON.stringify({ label: ['org.draftsman.deployment=ready', LABEL_READY] }) })).map((c) =>
    c.Names[0]!.slice(1),
  );
const readyFolders = () => fs.readdirSync(socketDir).filter((f) => f.startsWith('.ready-'));

/** What a step of the job reads from 127.0.0.1:3128, the forwarder of the holder it joins. */
async function throughHolder(r: DockerRunner, jobId: string): Promise<string> {
  const ref = { jobId, kind: 'setup' as const, index: 0 };
  await r.start({ ...ref, image: config.DRAFTSMAN_DEFAULT_IMAGE, command: 'echo hi | socat - TCP:127.0.0.1:3128', env: {}, timeoutSeconds: 30 });
  const exit = await r.wait(ref);
  const out = (await r.stdout(ref, 10_000)).data.toString();
  expect(exit.exitCode).toBe(0);
  return out.trim();
}

let listener: { stop(): void };
beforeAll(() => {
  listener = standIn();
});
afterAll(async () => {
  listener.stop();
  for (const name of await readyOnEngine()) await docker.getContainer(name).remove({ force: true });
  fs.rmSync(socketDir, { recursive: true, force: true });
});

test('a job takes a ready holder, reaches its own socket through it, and the pool refills; the job removes it at its end', async () => {
  const r = runner();
  const stop = await r.keepReady(2);
  const jobs = [`ready-a-${process.pid}`, `ready-b-${process.pid}`];
  try {
    await waitFor(async () => r.readyHolders.count === 2 && (await readyOnEngine()).length === 2 && readyFolders().length === 2, 'two holders ready');
    const before = await readyOnEngine();
    for (const jobId of jobs) await r.prepareWorkspace(jobId);
    // Each job got one of the ready ones, renamed for it: never the same one.
    const after = await readyOnEngine();
    expect(jobs.map((j) => holderName(j, 'ready')).every((n) => after.includes(n))).toBe(true);
    expect(before.filter((n) => after.includes(n))).toEqual([]);
    expect((await r.listJobResources(jobs[0]!)).holders).toEqual([holderName(jobs[0]!, 'ready')]);
    // Each job's step reaches the listener in its own folder, and nothing else.
    for (const jobId of jobs) expect(await throughHolder(r, jobId)).toBe(`folder ${path.basename(jobDir(socketDir, jobId, 'ready'))}`);
    // The janitor sees a taken holder as its job's, and never an untaken one.
    const managed = (await r.listManaged()).filter((m) => m.type === 'holder');
    expect(managed.map((m) => [m.name, m.jobId]).sort()).toEqual(jobs.map((j) => [holderName(j, 'ready'), j]).sort());
    await waitFor(async () => r.readyHolders.count === 2 && (await readyOnEngine()).length === 4 && readyFolders().length === 2, 'the pool refilled');
    for (const jobId of jobs) await r.removeJob(jobId);
    for (const jobId of jobs) expect(await leftovers(docker, jobId)).toEqual([]);
    expect(await readyOnEngine()).toHaveLength(2);
  } finally {
    for (const jobId of jobs) await r.removeJob(jobId);
    await stop();
  }
  // Stopped: no holder left ready, no folder left.
  expect(await readyOnEngine()).toEqual([]);
  expect(readyFolders()).toEqual([]);
});

test("a retry whose job folder is there keeps that attempt's holder: the ready one is removed, not used", async () => {
  const r = runner();
  const jobId = `ready-retry-${process.pid}`;
  const plain = new DockerRunner(docker, policy);
  try {
    // The first attempt made the job's own holder (no pool).
    await plain.prepareWorkspace(jobId);
    const own = (await docker.getContainer(holderName(jobId, 'ready')).inspect()).Id;
    const stop = await r.keepReady(1);
    try {
      await waitFor(async () => r.readyHolders.count === 1, 'one holder ready');
      await r.prepareWorkspace(jobId);
      expect((await docker.getContainer(holderName(jobId, 'ready')).inspect()).Id).toBe(own);
      expect(await throughHolder(r, jobId)).toBe(`folder ${path.basename(jobDir(socketDir, jobId, 'ready'))}`);
    } finally {
      await stop();
    }
  } finally {
    await r.removeJob(jobId);
  }
  expect(await leftovers(docker, jobId)).toEqual([]);
  expect(await readyOnEngine()).toEqual([]);
});

test('a start removes the ready holders an earlier worker of the host left (killed before its stop)', async () => {
  const killed = runner();
  await killed.keepReady(2);
  await waitFor(async () => killed.readyHolders.count === 2, 'two holders ready');
  const left = await readyOnEngine();
  // No stop: the next worker's start finds them.
  const next = runner();
  const stop = await next.keepReady(1);
  try {
    await waitFor(async () => next.readyHolders.count === 1 && (await readyOnEngine()).length === 1, 'its own holder ready');
    expect((await readyOnEngine()).filter((n) => left.includes(n))).toEqual([]);
    expect(readyFolders()).toHaveLength(1);
  } finally {
    await stop();
  }
  expect(await readyOnEngine()).toEqual([]);
});
