/**
 * The fake engine of the in-memory Runner for tests, driven by the step's own command in a tiny shell
 * subset (`;`-separated): `echo TEXT`, `echo TEXT >&2`, `sleep SECONDS`, `exit N`,
 * `true`, `false`, `trap "exit N" TERM`, `fake-fill MIB` (the workspace grows by MIB
 * MiB), `printf TEXT > PATH` (a file in the workspace, or under /cache/NAME in one of
 * the step's caches; elsewhere the root file system is read-only), `mkdir` and `git`
 * (nothing: the fake's files have no folders, and every one counts as tracked), `fake-burn SECONDS` (a sleep
 * that counts as CPU time), `fake-mem MIB` (the step's memory peaks there), and `fake-lose` (the container vanishes,
 * as when the engine's data is lost). `stopEngine`/`startEngine` restart the engine as
 * a real one does: its API goes away first, then it stops its running containers. Unknown words fail the step with 127. Hooks let a test
 * stop between phases (before a create), and `starts` counts how often each step's
 * command started: the witness for "at most once".
 */
import { createHash } from 'node:crypto';
import { EngineUnreachableError } from '../../common/errors';
import type { LogLine, StepExit, StepRef, StepRequest } from '../runner';
import { FakeVolumes } from './fake-volumes';

export interface FakeStep {
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
  /** CPU time its `fake-burn`s used, and since when the one running burns. */
  cpuMs: number;
  burningSince: number | null;
  peakMemoryBytes: number;
  /** Frozen (pause): a burn uses no CPU until thawed (the fake's clock runs on). */
  frozen: boolean;
  burning: boolean;
}

export interface FakeRunnerOptions {
  /** Images the fake engine has; others are not found. */
  images?: readonly string[];
  /** Called before a step's container is created: a test may wait here to hit that window. */
  beforeCreate?: (step: StepRequest) => Promise<void> | void;
  /** Milliseconds one `sleep 1` lasts (tests run time faster). */
  secondMs?: number;
}

export const ABORT = () => Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
export const nameOf = (r: StepRef) => `fake-${r.jobId}${r.placement && r.placement > 1 ? `-p${r.placement}` : ''}-${r.kind}-${r.index}`;

/** One fake engine: its steps, workspaces and volumes, whether it answers, and the interpreter of step commands. */
export class FakeEngine {
  readonly steps = new Map<string, FakeStep>();
  readonly workspaces = new Set<string>();
  /** Bytes each job's workspace holds, grown by `fake-fill`. */
  readonly filled = new Map<string, number>();
  /** Times each step's command started, by container name. */
  readonly starts = new Map<string, number>();
  down = false;
  /** Waits in progress, failed when the engine stops. */
  readonly waiting = new Set<(err: Error) => void>();
  /** Waits never hear of an exit (their connection went quiet), until recoverEngine. */
  quiet = false;
  hung = false;

  constructor(readonly opts: FakeRunnerOptions = {}) {}

  /** The files of each job's workspace and caches and of each kept volume. */
  readonly volumes = new FakeVolumes();

  /** One fake engine per runner object. */
  readonly key = `fake-${Math.random().toString(36).slice(2)}`;

  /** `printf TEXT > PATH` in a step: 0, or 1 where the path is not the step's to write. */
  write(s: FakeStep, arg: string): number {
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

  reachable(): void {
    if (this.down) throw new EngineUnreachableError('the fake engine is down');
    if (this.hung) throw new EngineUnreachableError('the fake engine did not answer in time');
  }

  /** The image's id, as an engine that has it answers. */
  imageIdOf(image: string): string {
    return `sha256:${createHash('sha256').update(image).digest('hex')}`;
  }

  /** The container vanishes under its step, as when the engine restarts. */
  lose(ref: StepRef): void {
    this.drop(nameOf(ref));
  }

  create(step: StepRequest, name: string): FakeStep {
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
      cpuMs: 0,
      burningSince: null,
      peakMemoryBytes: 0,
      frozen: false,
      burning: false,
    };
    this.steps.set(name, s);
    return s;
  }

  drop(name: string): void {
    const s = this.steps.get(name);
    if (!s) return;
    this.steps.delete(name);
    s.wake();
    s.markExited();
  }

  finish(s: FakeStep, exitCode: number): void {
    if (s.state === 'exited') return;
    s.state = 'exited';
    s.exit = { exitCode, oomKilled: false, startedAt: s.startedAt!, finishedAt: new Date() };
    s.wake();
    s.markExited();
  }

  print(s: FakeStep, stream: 'stdout' | 'stderr', text: string): void {
    s.lines.push({ stream, time: new Date().toISOString(), text });
    const wake = s.wake;
    s.wake = () => undefined;
    wake();
  }

  /** Freezes or thaws a step: a burn's CPU time stops counting while it is frozen, and its program waits. */
  freeze(s: FakeStep, frozen: boolean): void {
    if (s.frozen === frozen) return;
    s.frozen = frozen;
    if (frozen && s.burningSince !== null) {
      s.cpuMs += Date.now() - s.burningSince;
      s.burningSince = null;
    }
    if (!frozen && s.burning) s.burningSince = Date.now();
  }

  /** The CPU seconds (in the fake's time: `secondMs` per second) and memory peak of a step so far. */
  usage(s: FakeStep): { cpuSeconds: number; peakMemoryBytes: number } {
    const ms = s.cpuMs + (s.burningSince === null ? 0 : Date.now() - s.burningSince);
    return { cpuSeconds: ms / (this.opts.secondMs ?? 1000), peakMemoryBytes: s.peakMemoryBytes };
  }

  /** Waits `ms`, or less when the step is signalled or dropped. */
  private async pause(s: FakeStep, ms: number, interrupted: () => number | null): Promise<void> {
    const until = Date.now() + ms;
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
  }

  /** Interprets the command; a signal ends it as a real shell would. */
  async run(s: FakeStep): Promise<void> {
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
        await this.pause(s, Number(arg) * secondMs, interrupted);
      } else if (word === 'fake-burn') {
        s.burning = true;
        if (!s.frozen) s.burningSince = Date.now();
        await this.pause(s, Number(arg) * secondMs, interrupted);
        if (s.burningSince !== null) s.cpuMs += Date.now() - s.burningSince;
        s.burningSince = null;
        s.burning = false;
      } else if (word === 'fake-mem') {
        s.peakMemoryBytes = Math.max(s.peakMemoryBytes, Number(arg) * 2 ** 20);
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
