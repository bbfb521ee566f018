/**
 * The Runner contract, one suite per role (StepRunner, VolumeStore, Sweeper, HostFacts),
 * run against every backend (FakeRunner in the unit tests, DockerRunner against the
 * real engine). The commands keep to the
 * shell subset FakeRunner interprets, so both run the same steps.
 */
import { ImageNotFoundError } from '../common/errors';
import type { LogLine, Runner, StepRef, StepRequest, StepRunner } from './runner';

export interface ContractSubject {
  runner: Runner;
  image: string;
  /** An image the backend does not have. */
  missingImage: string;
  /** Seconds of grace for cancel, small so the suite is quick. */
  graceSeconds: number;
  /** Removes everything the suite's jobs left (called after each test). */
  cleanup(jobIds: string[]): Promise<void>;
  /** A command that uses `seconds` of CPU time, for a backend that measures usage (its shell's, or the fake's `fake-burn`). */
  burn?: (seconds: number) => string;
}

/** The roles of the runner seam (runner.ts), each a suite of its own. */
export type Role = 'steps' | 'volumes' | 'sweeper' | 'host';
const ROLES: Role[] = ['steps', 'volumes', 'sweeper', 'host'];

/**
 * The contract of the roles a backend implements (all four by default). A new backend may
 * start with `['steps']`: its StepRunner alone, a subject whose runner has no other role.
 */
export function runnerContract(name: string, subject: () => ContractSubject, roles: Role[] = ROLES): void {
  const role = (r: Role, title: string, body: () => void) => {
    if (roles.includes(r)) describe(title, body);
  };
  describe(`Runner contract: ${name}`, () => {
    let s: ContractSubject;
    const jobs: string[] = [];
    let n = 0;
    const newJob = () => {
      const id = `contract-${process.pid}-${Date.now().toString(36)}-${n++}`;
      jobs.push(id);
      return id;
    };
    const request = (jobId: string, command: string, index = 0): StepRequest => ({
      jobId,
      kind: 'setup',
      index,
      image: s.image,
      command,
      env: {},
      timeoutSeconds: 60,
    });
    const ref = (r: StepRequest): StepRef => ({ jobId: r.jobId, kind: r.kind, index: r.index });
    const run = async (command: string) => {
      const jobId = newJob();
      await s.runner.prepareWorkspace(jobId);
      const step = request(jobId, command);
      await s.runner.start(step);
      return { jobId, step, ref: ref(step) };
    };

    beforeAll(() => {
      s = subject();
    });
    afterEach(async () => {
      await s.cleanup(jobs.splice(0));
    });

    role('steps', 'StepRunner', () => {
      it.each([
        ['true', 0],
        ['exit 3', 3],
        ['echo a; false', 1],
      ])('runs `%s` to its exit code %d, with start and finish times', async (command, code) => {
        const { ref: r } = await run(command);
        const exit = await s.runner.wait(r);
        expect(exit.exitCode).toBe(code);
        expect(exit.oomKilled).toBe(false);
        expect(exit.startedAt!.getTime()).toBeLessThanOrEqual(exit.finishedAt!.getTime());
        expect(await s.runner.status(r)).toEqual({ state: 'exited', exit });
      });

      it('usage: the CPU time a step burnt, read after its exit, and none once it is removed', async () => {
        if (!s.burn) return void expect(await s.runner.usage({ jobId: newJob(), kind: 'setup', index: 0 })).toBeNull();
        await s.runner.ready();
        const { ref: r } = await run(s.burn(0.5));
        await s.runner.wait(r);
        const used = await s.runner.usage(r);
        expect(used!.cpuSeconds).toBeGreaterThanOrEqual(0.45);
        expect(used!.cpuSeconds).toBeLessThan(1.5);
        expect(used!.peakMemoryBytes).toBeGreaterThanOrEqual(0);
        await s.runner.remove(r);
        expect(await s.runner.usage(r)).toBeNull();
      });

      it('a second start of the same step re-attaches: the command does not run again', async () => {
        const { step, ref: r } = await run('echo once');
        await s.runner.wait(r);
        await s.runner.start(step);
        expect(await s.runner.status(r)).toMatchObject({ state: 'exited' });
        expect((await s.runner.stdout(r, 1000)).data.toString()).toBe('once\n');
      });

      it.each([
        [10, false, 'abcdefghi\n'],
        [9, true, 'abcdefghi'],
      ])('stdout with a cap of %d bytes on 10 bytes of output: truncated %s', async (max, truncated, data) => {
        const { ref: r } = await run('echo abcdefghi; echo not-stdout >&2');
        await s.runner.wait(r);
        expect(await s.runner.stdout(r, max)).toEqual({ data: Buffer.from(data), truncated });
      });

      it('an unknown step is missing; cancel and remove of it succeed', async () => {
        const r: StepRef = { jobId: newJob(), kind: 'setup', index: 9 };
        expect(await s.runner.status(r)).toEqual({ state: 'missing' });
        expect(await s.runner.cancel(r, s.graceSeconds)).toBe('not-running');
        await expect(s.runner.remove(r)).resolves.toBeUndefined();
        await expect(s.runner.wait(r)).rejects.toThrow();
      });

      it('follows output in order within each stream, and skips the lines an earlier attempt stored', async () => {
        const { ref: r } = await run('echo one; echo two >&2; echo three');
        const all: LogLine[] = [];
        await s.runner.followLogs(r, (lines) => void all.push(...lines), { skipLines: 0 });
        // The two streams are separate pipes: their relative order is the engine's.
        expect(all.filter((l) => l.stream === 'stdout').map((l) => l.text)).toEqual(['one', 'three']);
        expect(all.filter((l) => l.stream === 'stderr').map((l) => l.text)).toEqual(['two']);
        const rest: LogLine[] = [];
        await s.runner.followLogs(r, (lines) => void rest.push(...lines), { skipLines: 2 });
        expect(rest).toEqual(all.slice(2));
      });

      it('cancel sends SIGTERM first: a step that traps it exits with its own code', async () => {
        const { ref: r } = await run('trap "exit 42" TERM; echo ready; sleep 30');
        await waitForLine(s.runner, r, 'ready');
        expect(await s.runner.cancel(r, s.graceSeconds)).toBe('stopped');
        expect(await s.runner.status(r)).toMatchObject({ state: 'exited', exit: { exitCode: 42 } });
        // Cancelling an exited step succeeds, and says it had ended.
        expect(await s.runner.cancel(r, s.graceSeconds)).toBe('not-running');
      });

      it('wait rejects when its signal aborts, and the step keeps running', async () => {
        const { ref: r } = await run('sleep 30');
        const abort = new AbortController();
        const waiting = s.runner.wait(r, abort.signal);
        abort.abort();
        await expect(waiting).rejects.toThrow();
        expect((await s.runner.status(r)).state).toBe('running');
        await s.runner.remove(r);
        expect(await s.runner.status(r)).toEqual({ state: 'missing' });
      });

      it('a step of an image the backend does not have fails with ImageNotFoundError', async () => {
        const jobId = newJob();
        await s.runner.prepareWorkspace(jobId);
        await expect(s.runner.start({ ...request(jobId, 'true'), image: s.missingImage })).rejects.toBeInstanceOf(ImageNotFoundError);
      });
    });

    role('sweeper', 'Sweeper', () => {
      it('removeJob removes every step and the workspace, running or not, and succeeds again', async () => {
        const { jobId } = await run('sleep 30');
        await s.runner.start(request(jobId, 'true', 1));
        expect((await s.runner.listJobResources(jobId)).steps).toHaveLength(2);
        expect(
          (await s.runner.listManaged())
            .filter((m) => m.jobId === jobId)
            .map((m) => m.type)
            .sort(),
        ).toEqual(['step', 'step', 'workspace']);
        await s.runner.removeJob(jobId);
        await s.runner.removeJob(jobId);
        expect(await s.runner.listJobResources(jobId)).toEqual({ steps: [], holders: [], workspaces: [] });
      });
    });

    role('volumes', 'VolumeStore (warm starts)', () => {
      const kept: string[] = [];
      afterEach(async () => {
        for (const id of kept.splice(0)) expect(await s.runner.removeKept(id)).toBe(true);
      });
      const ran = async (jobId: string, command: string, extra: Partial<StepRequest> = {}, index = 0) => {
        const step = { ...request(jobId, command, index), ...extra };
        await s.runner.start(step);
        return (await s.runner.wait(ref(step))).exitCode;
      };
      const files = async (jobId: string) => {
        const seen: Record<string, string> = {};
        await s.runner.readVolume({ workspace: jobId }, (path, data) => {
          if (!path.startsWith('.git/')) seen[path] = data.toString();
        });
        return seen;
      };

      /** Commits the workspace's files; the commit's id (the fake's git keeps none: it hashes the files it has). */
      const committed = async (jobId: string, command: string, index: number) => {
        const step = request(jobId, `${command}; git init -q; git add -A; git -c user.name=t -c user.email=t@t commit -qm c; git rev-parse HEAD`, index);
        await s.runner.start(step);
        expect((await s.runner.wait(ref(step))).exitCode).toBe(0);
        return (await s.runner.stdout(ref(step), 1000)).data.toString().trim() || '0'.repeat(40);
      };

      it("hashFiles hashes the commit's files a glob matches: empty for none, the same for the same files, another for another commit", async () => {
        const jobId = newJob();
        await s.runner.prepareWorkspace(jobId);
        const first = await committed(jobId, 'printf one > a.lock; mkdir -p sub; printf two > sub/b.lock; printf x > other', 0);
        expect(await s.runner.hashFiles(jobId, first, [':(glob)*.none'])).toBe('');
        const all = await s.runner.hashFiles(jobId, first, [':(glob)**/*.lock']);
        expect(all).toMatch(/^[0-9a-f]{64}$/);
        expect(await s.runner.hashFiles(jobId, first, [':(glob)**/*.lock'])).toBe(all);
        const top = await s.runner.hashFiles(jobId, first, [':(glob)*.lock']);
        expect(top).not.toBe(all);
        expect(await s.runner.hashFiles(jobId, first, [':(glob)**/*.lock', ':(glob,exclude)sub/**'])).toBe(top);
        const second = await committed(jobId, 'printf changed > sub/b.lock', 1);
        expect(await s.runner.hashFiles(jobId, second, [':(glob)**/*.lock'])).not.toBe(all);
      });

      it('files given with a step are in its workspace when its command starts', async () => {
        const jobId = newJob();
        await s.runner.prepareWorkspace(jobId);
        expect(await ran(jobId, 'git hash-object handed.txt', { files: [{ name: 'handed.txt', data: Buffer.from('handed over') }] })).toBe(0);
        expect((await files(jobId))['handed.txt']).toBe('handed over');
      });

      it("a kept copy of a workspace restores into another job's workspace, is no job's resource, and is removed by id", async () => {
        const a = newJob();
        await s.runner.prepareWorkspace(a);
        expect(await ran(a, 'printf hello > greeting; mkdir -p d; printf deep > d/file')).toBe(0);
        const id = `contract-kept-${process.pid}-${n++}`;
        kept.push(id);
        expect(await s.runner.copyVolume({ kept: id }, { workspace: a })).toBeGreaterThan(0);
        expect((await s.runner.listKept()).map((k) => k.id)).toContain(id);
        expect((await s.runner.listManaged()).map((r) => r.name).join(' ')).not.toContain(id);
        const b = newJob();
        await s.runner.prepareWorkspace(b);
        await s.runner.copyVolume({ workspace: b }, { kept: id });
        expect(await files(b)).toEqual({ greeting: 'hello', 'd/file': 'deep' });
        // The step user owns what was restored: it can change it and add to it.
        expect(await ran(b, 'printf again > greeting; printf new > added; printf other > d/other')).toBe(0);
        expect(await files(b)).toEqual({ greeting: 'again', added: 'new', 'd/file': 'deep', 'd/other': 'other' });
        // What b wrote never reaches the kept volume: another restore has the kept files.
        const c = newJob();
        await s.runner.prepareWorkspace(c);
        await s.runner.copyVolume({ workspace: c }, { kept: id });
        expect(await files(c)).toEqual({ greeting: 'hello', 'd/file': 'deep' });
        // Removing it while jobs use it never takes their files: it is gone, or left for later.
        const gone = await s.runner.removeKept(id);
        expect((await s.runner.listKept()).map((k) => k.id).includes(id)).toBe(!gone);
        expect(await files(b)).toEqual({ greeting: 'again', added: 'new', 'd/file': 'deep', 'd/other': 'other' });
        expect(await files(c)).toEqual({ greeting: 'hello', 'd/file': 'deep' });
        await s.runner.removeJob(b);
        await s.runner.removeJob(c);
        expect(await s.runner.removeKept(id)).toBe(true);
        expect(await s.runner.removeKept(id)).toBe(true);
        expect((await s.runner.listKept()).map((k) => k.id)).not.toContain(id);
        for (const job of [b, c]) expect(await s.runner.listJobResources(job)).toEqual({ steps: [], holders: [], workspaces: [] });
      });

      it('a copy from a kept volume that is gone fails, and leaves no volume of that name', async () => {
        const jobId = newJob();
        await s.runner.prepareWorkspace(jobId);
        const gone = `contract-gone-${process.pid}-${n++}`;
        await expect(s.runner.copyVolume({ workspace: jobId }, { kept: gone })).rejects.toThrow(/gone/);
        await expect(s.runner.copyVolume({ cache: { jobId, name: 'deps' } }, { kept: gone })).rejects.toThrow(/gone/);
        expect((await s.runner.listKept()).map((k) => k.id)).not.toContain(gone);
        // A job's volume can still be made after it.
        expect(await s.runner.copyVolume({ workspace: jobId }, null)).toBeGreaterThanOrEqual(0);
        expect(await ran(jobId, 'printf ok > after')).toBe(0);
        await s.runner.removeJob(jobId);
        expect(await s.runner.listJobResources(jobId)).toEqual({ steps: [], holders: [], workspaces: [] });
      });

      it('a step writes the caches it mounts, and no other path outside its workspace', async () => {
        const jobId = newJob();
        await s.runner.prepareWorkspace(jobId);
        await s.runner.copyVolume({ cache: { jobId, name: 'deps' } }, null);
        expect(await ran(jobId, 'printf cached > /cache/deps/pkg', { caches: ['deps'] })).toBe(0);
        expect(await ran(jobId, 'printf poison > /cache/deps/pkg', {}, 1)).not.toBe(0);
        // Read for a scan: the cache's files, apart from the workspace's.
        const cached: Record<string, string> = {};
        await s.runner.readVolume({ cache: { jobId, name: 'deps' } }, (path, data) => (cached[path] = data.toString()));
        expect(cached).toEqual({ pkg: 'cached' });
        expect(await files(jobId)).not.toHaveProperty('pkg');
        const id = `contract-kept-${process.pid}-${n++}`;
        kept.push(id);
        await s.runner.copyVolume({ kept: id }, { cache: { jobId, name: 'deps' } });
        const other = newJob();
        await s.runner.prepareWorkspace(other);
        await s.runner.copyVolume({ workspace: other }, { kept: id });
        expect(await files(other)).toEqual({ pkg: 'cached' });
        // The job's caches go with the job.
        await s.runner.removeJob(jobId);
        expect(await s.runner.listJobResources(jobId)).toEqual({ steps: [], holders: [], workspaces: [] });
        await s.runner.removeJob(other);
        expect(await s.runner.removeKept(id)).toBe(true);
      });

      it("a cache with a path is mounted there in the workspace: writes under it land in the cache, the workspace's own files stay apart", async () => {
        const jobId = newJob();
        await s.runner.prepareWorkspace(jobId);
        await s.runner.copyVolume({ cache: { jobId, name: 'mods' } }, null);
        const workspaceCaches = [{ name: 'mods', path: 'node_modules' }];
        expect(await ran(jobId, 'printf dep > node_modules/dep; printf own > own', { workspaceCaches })).toBe(0);
        const id = `contract-kept-${process.pid}-${n++}`;
        kept.push(id);
        await s.runner.copyVolume({ kept: id }, { cache: { jobId, name: 'mods' } });
        const other = newJob();
        await s.runner.prepareWorkspace(other);
        await s.runner.copyVolume({ workspace: other }, { kept: id });
        expect(await files(other)).toEqual({ dep: 'dep' });
        expect(await files(jobId)).toEqual({ own: 'own' });
        await s.runner.removeJob(other);
        await s.runner.removeJob(jobId);
      });
    });

    role('host', 'HostFacts', () => {
      it('names its host with a key that stays the same (host ids derive from it)', async () => {
        const key = await s.runner.hostKey();
        expect(key).toMatch(/\S/);
        expect(await s.runner.hostKey()).toBe(key);
      });
    });
  });
}

async function waitForLine(runner: StepRunner, ref: StepRef, text: string): Promise<void> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 30_000);
  let seen = false;
  await runner.followLogs(
    ref,
    (lines) => {
      if (lines.some((l) => l.text === text)) {
        seen = true;
        abort.abort();
      }
    },
    { skipLines: 0, signal: abort.signal },
  );
  clearTimeout(timer);
  if (!seen) throw new Error(`no line ${text}`);
}
