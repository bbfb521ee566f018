import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { EngineUnreachableError, ImageNotFoundError, RunnerError } from '../../common/errors';
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
}));

describe('DockerRunner on a shared engine', () => {
  const step = (jobId: string) => ({ jobId, kind: 'setup' as const, index: 0, image: config.DRAFTSMAN_DEFAULT_IMAGE, command: 'sleep 30', env: {}, timeoutSeconds: 60 });

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
    ['the engine\'s default runtime', undefined],
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
      await runner.start({ ...ref, image: config.DRAFTSMAN_DEFAULT_IMAGE, command: 'head -c 2097152 /dev/urandom > a && mkdir hid && head -c 1048576 /dev/urandom > hid/b && chmod 000 hid', env: {}, timeoutSeconds: 60 });
      expect((await runner.wait(ref)).exitCode).toBe(0);
      const full = await runner.workspaceBytes(jobId);
      expect(full - empty).toBeGreaterThanOrEqual(3 * 2 ** 20);
      expect(full - empty).toBeLessThan(3 * 2 ** 20 + 256 * 1024);
      expect((await runner.listJobResources(jobId)).steps).toEqual([expect.stringMatching(/-setup-0$/)]);
    } finally {
      await runner.removeJob(jobId);
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
