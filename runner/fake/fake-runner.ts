/**
 * An in-memory Runner for tests, driven by the step's own command in a tiny shell
 * subset (`;`-separated): `echo TEXT`, `echo TEXT >&2`, `sleep SECONDS`, `exit N`,
 * `true`, `false`, `trap "exit N" TERM`, `fake-fill MIB` (the workspace grows by MIB
 * MiB), `printf TEXT > PATH` (a file in the workspace, or under /cache/NAME in one of
 * the step's caches; elsewhere the root file system is read-only), `mkdir` and `git`
 * (nothing: the fake's files have no folders, and every one counts as tracked), and `fake-lose` (the container vanishes,
 * as when the engine's data is lost). `stopEngine`/`startEngine` restart the engine as
 * a real one does: its API goes away first, then it stops its running containers. Unknown words fail the step with 127. Hooks let a test
 * stop between phases (before a create), and `starts` counts how often each step's
 * command started: the witness for "at most once".
 */
import { EngineUnreachableError, ImageNotFoundError, RunnerError } from '../../common/errors';
import { createHash } from 'node:crypto';
import { FakeVolumes } from './fake-volumes';
import type { JobResources, JobVolumeRef, LogLine, ManagedResource, Runner, StepExit, StepRef, StepRequest, StepState, VolumeRef } from '../runner';

interface FakeStep {
  ref: StepRef;
  name: string;
  state: 'created' | 'running' | 'exited';
  request: StepRequest;
  lines: LogLine[];
  exit?: StepExit;
  startedAt?: Date;
  termExit?: number;
  /** Settles when the step exits. */
  exited: Promise<void>;
  markExited: () => void;
  /** Wakes the step's program (a line printed, a signal). */
  wake: () => void;
  signalled: 'TERM' | 'KILL' | null;
  deadline: number;
}

export interface FakeRunnerOptions {
  /** Images the fake engine has; others are not found. */
  images?: readonly string[];
  /** Called before a step's container is created: a test may wait here to hit that window. */
  beforeCreate?: (step: StepRequest) => Promise<void> | void;
  /** Milliseconds one `sleep 1` lasts (tests run time faster). */
  secondMs?: number;
}

const ABORT = () => Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
const nameOf = (r: StepRef) => `fake-${r.jobId}${r.placement && r.placement > 1 ? `-p${r.placement}` : ''}-${r.kind}-${r.index}`;

export class FakeRunner implements Runner {
  private readonly steps = new Map<string, FakeStep>();
  private readonly workspaces = new Set<string>();
  /** Bytes each job's workspace holds, grown by `fake-fill`. */
  private readonly filled = new Map<string, number>();
  /** Times each step's command started, by container name. */
  readonly starts = new Map<string, number>();
  private down = false;
  /** Waits in progress, failed when the engine stops. */
  private readonly waiting = new Set<(err: Error) => void>();
  /** Waits never hear of an exit (their connection went quiet), until recoverEngine. */
  private quiet = false;
  private hung = false;

  constructor(private readonly opts: FakeRunnerOptions = {}) {}

  /** The files of each job's workspace and caches and of each kept volume. */
  private readonly volumes = new FakeVolumes();

  /** A volume's files (a test reads what a cache or kept workspace holds). */
  files(ref: VolumeRef): Map<string, Buffer> | undefined {
    return this.volumes.files(ref);
  }

  async imageId(image: string): Promise<string> {
    this.reachable();
    if (this.opts.images && !this.opts.images.includes(image)) throw new ImageNotFoundError(image);
    return `sha256:${createHash('sha256').update(image).digest('hex')}`;
  }

  async hashFiles(jobId: string, _commit: string, pathspecs: string[]): Promise<string> {
    this.reachable();
    return this.volumes.hashFiles(jobId, pathspecs);
  }

  async copyVolume(to: VolumeRef, from: VolumeRef | null): Promise<number> {
    this.reachable();
    if (from && 'kept' in from && !this.volumes.files(from)) throw new RunnerError(`kept volume ${from.kept} is gone`);
    if ('workspace' in to) this.workspaces.add(to.workspace);
    return this.volumes.copy(to, from);
  }

  /** The fake copies on every restore: a kept volume is never in use. */
  async removeKept(id: string): Promise<boolean> {
    this.reachable();
    this.volumes.removeKept(id);
    return true;
  }

  async listKept(): Promise<{ id: string; createdAt: Date }[]> {
    this.reachable();
    return this.volumes.listKept();
  }

  async readVolume(ref: JobVolumeRef, onFile: (path: string, data: Buffer) => void): Promise<void> {
    this.reachable();
    for (const [p, data] of this.volumes.files(ref) ?? []) onFile(p, data);
  }

  /** `printf TEXT > PATH` in a step: 0, or 1 where the path is not the step's to write. */
  private write(s: FakeStep, arg: string): number {
    const m = /^(?:'([^']*)'|(\S+))\s*>\s*(\S+)$/.exec(arg);
    if (!m) return 2;
    if (this.volumes.write(s.request, m[3]!, m[1] ?? m[2]!)) return 0;
    this.print(s, 'stderr', `sh: ${m[3]}: Read-only file system`);
    return 1;
  }

  /**
   * The engine stops: waits in progress break, and running steps get SIGTERM (their
   * trap's code, else 143), unless `keepContainers` (the engine's live restore).
   */
  stopEngine(opts: { keepContainers?: boolean } = {}): void {
    this.down = true;
    for (const fail of this.waiting) fail(new EngineUnreachableError('the fake engine stopped'));
    this.waiting.clear();
    if (opts.keepContainers) return;
    for (const s of this.steps.values()) {
      if (s.state !== 'running') continue;
      s.signalled = 'TERM';
      s.wake();
    }
  }

  startEngine(): void {
    this.down = false;
  }

  /** Waits, in progress and new, stop hearing from the engine (their exit never comes); the engine itself answers on. */
  quietWaits(): void {
    this.quiet = true;
  }

  /**
   * The engine hangs: its steps run on, the waits in progress never settle, and every
   * other request fails as a bounded request to a hanging engine does (unreachable).
   */
  hangEngine(): void {
    this.hung = true;
    this.quietWaits();
  }

  recoverEngine(): void {
    this.hung = false;
    this.quiet = false;
  }

  private reachable(): void {
    if (this.down) throw new EngineUnreachableError('the fake engine is down');
    if (this.hung) throw new EngineUnreachableError('the fake engine did not answer in time');
  }

  async ready(): Promise<void> {
    this.reachable();
  }

  /** One fake engine per runner object. */
  private readonly key = `fake-${Math.random().toString(36).slice(2)}`;

  async hostKey(): Promise<string> {
    this.reachable();
    return this.key;
  }

  async prepareWorkspace(jobId: string): Promise<void> {
    this.workspaces.add(jobId);
  }

  async start(step: StepRequest): Promise<void> {
    this.reachable();
    const name = nameOf(step);
    let s = this.steps.get(name);
    if (!s) {
      await this.opts.beforeCreate?.(step);
      if (this.opts.images && !this.opts.images.includes(step.image)) throw new ImageNotFoundError(step.image);
      // A create that raced with another attempt's create finds that one.
      s = this.steps.get(name) ?? this.create(step, name);
    }
    if (s.state !== 'created') return;
    for (const f of step.files ?? []) this.volumes.write(step, f.name, f.data.toString('latin1'));
    s.state = 'running';
    s.startedAt = new Date();
    this.starts.set(name, (this.starts.get(name) ?? 0) + 1);
    void this.run(s);
  }

  async status(ref: StepRef): Promise<StepState> {
    this.reachable();
    const s = this.steps.get(nameOf(ref));
    if (!s) return { state: 'missing' };
    if (s.state === 'created') return { state: 'created' };
    if (s.state === 'running') return { state: 'running', startedAt: s.startedAt! };
    return { state: 'exited', exit: s.exit! };
  }

  async wait(ref: StepRef, signal?: AbortSignal): Promise<StepExit> {
    const s = this.steps.get(nameOf(ref));
    if (!s) throw new RunnerError(`container ${nameOf(ref)} is gone`);
    this.reachable();
    if (signal?.aborted) throw ABORT();
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => {
        signal?.removeEventListener('abort', onAbort);
        reject(err);
      };
      const onAbort = () => fail(ABORT());
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.add(fail);
      void s.exited.then(() => {
        this.waiting.delete(fail);
        if (this.quiet) return;
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
    if (!this.steps.has(s.name) || !s.exit) throw new RunnerError(`container ${s.name} is gone`);
    return s.exit;
  }

  async followLogs(ref: StepRef, onLines: (lines: LogLine[]) => void | Promise<void>, opts: { skipLines: number; signal?: AbortSignal }): Promise<void> {
    const s = this.steps.get(nameOf(ref));
    if (!s) return;
    let next = opts.skipLines;
    for (;;) {
      if (opts.signal?.aborted) return;
      // The engine's log stream breaks with the engine.
      if (this.down) throw new EngineUnreachableError('the fake engine stopped under the output stream');
      if (next < s.lines.length) {
        const batch = s.lines.slice(next);
        next = s.lines.length;
        await onLines(batch);
        continue;
      }
      if (s.state === 'exited' || !this.steps.has(s.name)) return;
      await new Promise<void>((resolve) => {
        const prev = s.wake;
        s.wake = () => {
          prev();
          resolve();
        };
        opts.signal?.addEventListener('abort', () => resolve(), { once: true });
      });
    }
  }

  async stdout(ref: StepRef, maxBytes: number): Promise<{ data: Buffer; truncated: boolean }> {
    const s = this.steps.get(nameOf(ref));
    const data = Buffer.from(
      (s?.lines ?? [])
        .filter((l) => l.stream === 'stdout')
        .map((l) => `${l.text}\n`)
        .join(''),
    );
    return data.length > maxBytes ? { data: data.subarray(0, maxBytes), truncated: true } : { data, truncated: false };
  }

  async cancel(ref: StepRef, graceSeconds: number): Promise<'stopped' | 'not-running'> {
    this.reachable();
    const s = this.steps.get(nameOf(ref));
    if (!s || s.state !== 'running') return 'not-running';
    s.signalled = 'TERM';
    s.wake();
    const killAfter = setTimeout(
      () => {
        s.signalled = 'KILL';
        s.wake();
      },
      graceSeconds * (this.opts.secondMs ?? 1000),
    );
    await s.exited;
    clearTimeout(killAfter);
    return 'stopped';
  }

  async remove(ref: StepRef): Promise<void> {
    this.drop(nameOf(ref));
  }

  async removeJob(jobId: string): Promise<void> {
    for (const s of [...this.steps.values()]) if (s.ref.jobId === jobId) this.drop(s.name);
    this.workspaces.delete(jobId);
    this.filled.delete(jobId);
    this.volumes.removeJob(jobId);
  }

  async workspaceBytes(jobId: string): Promise<number> {
    this.reachable();
    return this.filled.get(jobId) ?? 0;
  }

  async listJobResources(jobId: string): Promise<JobResources> {
    return {
      holders: [],
      steps: [...this.steps.values()].filter((s) => s.ref.jobId === jobId).map((s) => s.name),
      workspaces: this.workspaces.has(jobId) ? [`fake-${jobId}-workspace`] : [],
    };
  }

  async listManaged(): Promise<ManagedResource[]> {
    return [
      ...[...this.steps.values()].map((s): ManagedResource => ({
        type: 'step',
        name: s.name,
        jobId: s.ref.jobId,
        placement: s.ref.placement ?? 1,
        running: s.state === 'running',
        deadline: s.deadline,
      })),
      ...[...this.workspaces].map((jobId): ManagedResource => ({ type: 'workspace', name: `fake-${jobId}-workspace`, jobId })),
    ];
  }

  async stopManaged(resource: ManagedResource, graceSeconds: number): Promise<void> {
    const s = this.steps.get(resource.name);
    if (s) await this.cancel(s.ref, graceSeconds);
  }

  async removeManaged(resource: ManagedResource): Promise<void> {
    if (resource.type === 'step') this.drop(resource.name);
    else this.workspaces.delete(resource.jobId);
  }

  /** Only creates the step's container (as a worker that dies before starting it would leave it). */
  async createOnly(step: StepRequest): Promise<void> {
    const name = nameOf(step);
    if (!this.steps.has(name)) this.create(step, name);
  }

  /** The container vanishes under its step, as when the engine restarts. */
  lose(ref: StepRef): void {
    this.drop(nameOf(ref));
  }

  private create(step: StepRequest, name: string): FakeStep {
    let markExited!: () => void;
    const exited = new Promise<void>((r) => (markExited = r));
    const s: FakeStep = {
      ref: { jobId: step.jobId, kind: step.kind, index: step.index, ...(step.placement ? { placement: step.placement } : {}) },
      name,
      state: 'created',
      request: step,
      lines: [],
      exited,
      markExited,
      wake: () => undefined,
      signalled: null,
      deadline: Math.floor(Date.now() / 1000) + step.timeoutSeconds,
    };
    this.steps.set(name, s);
    return s;
  }

  private drop(name: string): void {
    const s = this.steps.get(name);
    if (!s) return;
    this.steps.delete(name);
    s.wake();
    s.markExited();
  }

  private finish(s: FakeStep, exitCode: number): void {
    if (s.state === 'exited') return;
    s.state = 'exited';
    s.exit = { exitCode, oomKilled: false, startedAt: s.startedAt!, finishedAt: new Date() };
    s.wake();
    s.markExited();
  }

  private print(s: FakeStep, stream: 'stdout' | 'stderr', text: string): void {
    s.lines.push({ stream, time: new Date().toISOString(), text });
    const wake = s.wake;
    s.wake = () => undefined;
    wake();
  }

  /** Interprets the command; a signal ends it as a real shell would. */
  private async run(s: FakeStep): Promise<void> {
    const secondMs = this.opts.secondMs ?? 1000;
    const interrupted = () => {
      if (s.signalled === 'KILL') return 137;
      if (s.signalled === 'TERM') return s.termExit ?? 143;
      return null;
    };
    for (const raw of s.request.command
      .split(';')
      .map((c) => c.trim())
      .filter(Boolean)) {
      if (!this.steps.has(s.name)) return;
      const [word, ...rest] = raw.split(/\s+/);
      const arg = rest.join(' ');
      if (word === 'echo') {
        const toErr = arg.endsWith('>&2');
        this.print(s, toErr ? 'stderr' : 'stdout', (toErr ? arg.slice(0, -3) : arg).trim());
      } else if (word === 'sleep') {
        const until = Date.now() + Number(arg) * secondMs;
        while (Date.now() < until && interrupted() === null && this.steps.has(s.name)) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, until - Date.now());
            const prev = s.wake;
            s.wake = () => {
              prev();
              clearTimeout(timer);
              resolve();
            };
          });
        }
      } else if (word === 'exit') {
        return this.finish(s, Number(arg));
      } else if (word === 'true') {
        // nothing
      } else if (word === 'false') {
        return this.finish(s, 1);
      } else if (word === 'trap') {
        const m = /^"exit (\d+)" TERM$/.exec(arg);
        if (!m) return this.finish(s, 2);
        s.termExit = Number(m[1]);
      } else if (word === 'fake-fill') {
        this.filled.set(s.ref.jobId, (this.filled.get(s.ref.jobId) ?? 0) + Number(arg) * 2 ** 20);
      } else if (word === 'printf') {
        const code = this.write(s, arg);
        if (code !== 0) return this.finish(s, code);
      } else if (word === 'mkdir' || word === 'git') {
        // nothing
      } else if (word === 'fake-lose') {
        return this.lose(s.ref);
      } else {
        this.print(s, 'stderr', `sh: ${word}: not found`);
        return this.finish(s, 127);
      }
      const code = interrupted();
      if (code !== null) return this.finish(s, code);
    }
    const code = interrupted();
    this.finish(s, code ?? 0);
  }
}
