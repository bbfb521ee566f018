import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { EngineUnreachableError, ImageNotFoundError, RunnerError } from '../../common/errors';
import { containerName } from '../../runner/docker/convert';
import { DockerRunner } from '../../runner/docker/docker-runner';
import { runnerContract } from '../../runner/runner.contract';
import { loadConfig } from '../../common/config';
import { stepPolicy } from '../../worker/worker';

const docker = new Docker();
const config = loadConfig({ DRAFTSMAN_DEPLOYMENT_ID: 'contract', DRAFTSMAN_STEP_EGRESS: 'none', DRAFTSMAN_STOP_GRACE_SECONDS: '2' });
const runner = new DockerRunner(docker, stepPolicy(config));

runnerContract('DockerRunner', () => ({
  runner,
  image: config.DRAFTSMAN_DEFAULT_IMAGE,
  missingImage: 'draftsman-no-such-image:never',
  graceSeconds: 2,
  cleanup: async (jobIds) => {
    for (const id of jobIds) await runner.removeJob(id);
  },
  burn: (seconds) => `perl -e 'while ((times)[0] + (times)[1] < ${seconds}) {}'`,
}));

describe('DockerRunner on a shared engine', () => {
  const step = (jobId: string) => ({
    jobId,
    kind: 'setup' as const,
    index: 0,
    image: config.DRAFTSMAN_DEFAULT_IMAGE,
    command: 'sleep 30',
    env: {},
    timeoutSeconds: 60,
  });

  it('lists and touches only its own deployment: a job id shared with another deployment stays apart', async () => {
    const other = new DockerRunner(docker, stepPolicy(loadConfig({ DRAFTSMAN_DEPLOYMENT_ID: 'other', DRAFTSMAN_STEP_EGRESS: 'none' })));
    const jobId = `shared-${process.pid}`;
    try {
      await Promise.all([runner.prepareWorkspace(jobId), other.prepareWorkspace(jobId)]);
      await runner.start(step(jobId));
      await other.start(step(jobId));
      expect((await runner.listManaged()).filter((m) => m.jobId === jobId)).toHaveLength(2);
      await runner.removeJob(jobId);
      expect(await runner.listJobResources(jobId)).toEqual({ steps: [], holders: [], workspaces: [] });
      // The other deployment's step still runs, in its own workspace.
      expect((await other.status(step(jobId))).state).toBe('running');
      expect((await other.listJobResources(jobId)).workspaces).toHaveLength(1);
    } finally {
      await Promise.all([runner.removeJob(jobId), other.removeJob(jobId)]);
    }
  });

  it.each([
    ["the engine's default runtime", undefined],
    ['a runtime the engine has', 'runc'],
  ])('is ready with %s', async (_name, runtime) => {
    await expect(new DockerRunner(docker, { ...stepPolicy(config), runtime }).ready()).resolves.toBeUndefined();
  });

  it('refuses to start with a runtime the engine does not have, naming it and the ones it has', async () => {
    const err = await new DockerRunner(docker, { ...stepPolicy(config), runtime: 'draftsman-no-such-runtime' }).ready().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunnerError);
    expect((err as Error).message).toMatch(/DRAFTSMAN_STEP_RUNTIME=draftsman-no-such-runtime.*no runtime of that name \(it has: .*runc/);
  });

  it('measures the workspace on disk, files its step cannot read included, and leaves no helper behind', async () => {
    const jobId = `measure-${process.pid}`;
    try {
      await runner.prepareWorkspace(jobId);
      const empty = await runner.workspaceBytes(jobId);
      const ref = { jobId, kind: 'setup' as const, index: 0 };
      // 3 MiB, 1 MiB of it in a folder the step then makes unreadable to itself.
      await runner.start({
        ...ref,
        image: config.DRAFTSMAN_DEFAULT_IMAGE,
        command: 'head -c 2097152 /dev/urandom > a && mkdir hid && head -c 1048576 /dev/urandom > hid/b && chmod 000 hid',
        env: {},
        timeoutSeconds: 60,
      });
      expect((await runner.wait(ref)).exitCode).toBe(0);
      const full = await runner.workspaceBytes(jobId);
      expect(full - empty).toBeGreaterThanOrEqual(3 * 2 ** 20);
      expect(full - empty).toBeLessThan(3 * 2 ** 20 + 256 * 1024);
      expect((await runner.listJobResources(jobId)).steps).toEqual([expect.stringMatching(/-setup-0$/)]);
    } finally {
      await runner.removeJob(jobId);
    }
  });

  it("reads an exited step's end from the engine once, and again after the step is removed", async () => {
    const counted = new Docker();
    let inspects = 0;
    const getContainer = counted.getContainer.bind(counted);
    counted.getContainer = (id: string) => {
      const c = getContainer(id);
      const inspect = c.inspect.bind(c) as (opts?: object) => Promise<Docker.ContainerInspectInfo>;
      c.inspect = ((opts?: object) => {
        inspects++;
        return inspect(opts);
      }) as typeof c.inspect;
      return c;
    };
    const r = new DockerRunner(counted, stepPolicy(config));
    const jobId = `exited-${process.pid}`;
    const ref = { jobId, kind: 'setup' as const, index: 0 };
    try {
      await r.prepareWorkspace(jobId);
      await r.start({ ...ref, image: config.DRAFTSMAN_DEFAULT_IMAGE, command: 'exit 3', env: {}, timeoutSeconds: 30 });
      const exit = await r.wait(ref);
      const after = inspects;
      expect(await r.status(ref)).toEqual({ state: 'exited', exit });
      expect(inspects).toBe(after);
      expect(exit.exitCode).toBe(3);
      await r.remove(ref);
      expect(await r.status(ref)).toEqual({ state: 'missing' });
      expect(inspects).toBe(after + 1);
    } finally {
      await r.removeJob(jobId);
    }
  });

  it('a 404 that is not about the image is an engine error, not "image not found"', async () => {
    const broken = new DockerRunner(docker, { ...stepPolicy(config), network: { mode: 'insecure', network: 'draftsman-no-such-network' } });
    const jobId = `net-${process.pid}`;
    try {
      const err = await broken.start(step(jobId)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RunnerError);
      expect(err).not.toBeInstanceOf(ImageNotFoundError);
    } finally {
      await broken.removeJob(jobId);
    }
  });
});

describe('DockerRunner on an engine that hangs', () => {
  // An engine that takes connections and never answers (seen in a chaos campaign after a restart).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'draftsman-hung-'));
  const socketPath = path.join(dir, 'docker.sock');
  const held: net.Socket[] = [];
  const server = net.createServer((c) => void held.push(c));
  beforeAll(() => new Promise<void>((resolve) => server.listen(socketPath, resolve)));
  afterAll(async () => {
    for (const c of held) c.destroy();
    await new Promise((r) => server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const hung = new DockerRunner(new Docker({ socketPath }), { ...stepPolicy(config), engineRequestSeconds: 1 });
  const ref = { jobId: 'hung', kind: 'setup' as const, index: 0 };

  it.each([
    ['an inspect', () => hung.status(ref)],
    ['a stop (bounded past its grace)', () => hung.cancel(ref, 0)],
  ])('%s fails as unreachable within its bound instead of waiting forever', async (_name, call) => {
    const began = Date.now();
    const err = await call().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineUnreachableError);
    expect(Date.now() - began).toBeGreaterThanOrEqual(900);
    expect(Date.now() - began).toBeLessThan(5_000);
  });

  it.each([
    ['a create', () => hung.start({ ...ref, image: 'x', command: 'true', env: {}, timeoutSeconds: 60 })],
    ['a removal', () => hung.removeJob('hung')],
    ['a listing', () => hung.listManaged()],
  ])('%s fails within its bound, for the attempt to be retried', async (_name, call) => {
    const began = Date.now();
    const err = await call().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunnerError);
    expect(Date.now() - began).toBeLessThan(5_000);
  });
});

describe('DockerRunner behind an engine that ends a follow early', () => {
  // The engine can end a follow normally before the last lines of a container that has
  // exited (seen with Debian's 20.10). A proxy plays that engine: it turns each follow
  // into a read up to a time between the step's two bursts of output.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'draftsman-cut-'));
  const socketPath = path.join(dir, 'docker.sock');
  let cutAt = '';
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const engine = net.connect('/var/run/docker.sock');
    for (const s of [client, engine]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s)).on('error', () => undefined);
    }
    client.on('data', (d: Buffer) => {
      engine.write(d.toString('latin1').replace(/^(GET \S*\/logs\?\S*)follow=(1|true)/m, `$1follow=0&until=${cutAt}`), 'latin1');
    });
    engine.pipe(client);
  });
  beforeAll(() => new Promise<void>((resolve) => server.listen(socketPath, resolve)));
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const cutting = new DockerRunner(new Docker({ socketPath }), stepPolicy(config));

  it.each([
    ["a few lines after the cut: read from the log's tail", 10],
    ['more lines after the cut than the tail holds: read from the cut', 2500],
  ])('%s, each line once and in order', async (_name, after) => {
    const jobId = `cut-${after}-${process.pid}`;
    const ref = { jobId, kind: 'setup' as const, index: 0 };
    try {
      await runner.prepareWorkspace(jobId);
      await runner.start({
        ...ref,
        image: config.DRAFTSMAN_DEFAULT_IMAGE,
        command: `echo a0; sleep 0.1; seq 1 5 | sed s/^/a/; sleep 2; seq 1 ${after} | sed s/^/b/`,
        env: {},
        timeoutSeconds: 60,
      });
      expect((await runner.wait(ref)).exitCode).toBe(0);
      // The cut: a second after the first burst's last line, a second before the next.
      const stamped = (await docker.getContainer(containerName(ref, 'contract')).logs({ stdout: true, timestamps: true, follow: false })).toString();
      const lastA = /(\d{4}-\d\d-\d\dT[\d:.]+)Z a5\n/.exec(stamped)![1]!;
      cutAt = String((Date.parse(`${lastA.slice(0, 23)}Z`) + 1000) / 1000);

      const lines: string[] = [];
      await cutting.followLogs(ref, (batch) => void lines.push(...batch.map((l) => l.text)), { skipLines: 0 });
      const expected = [...[0, 1, 2, 3, 4, 5].map((i) => `a${i}`), ...Array.from({ length: after }, (_, i) => `b${i + 1}`)];
      expect(lines).toEqual(expected);
    } finally {
      await runner.removeJob(jobId);
    }
  });
});
