/** The fake backend's step runner: steps interpreted by the fake engine (fake-engine.ts). */
import { EngineUnreachableError, ImageNotFoundError, RunnerError } from '../../common/errors';
import type { LogLine, StepExit, StepRef, StepRequest, StepRunner, StepState, StepUsage } from '../runner';
import { ABORT, type FakeEngine, nameOf } from './fake-engine';

export class FakeStepRunner implements StepRunner {
  constructor(private readonly e: FakeEngine) {}

  async prepareWorkspace(jobId: string): Promise<void> {
    this.e.workspaces.add(jobId);
  }

  async start(step: StepRequest): Promise<void> {
    this.e.reachable();
    const name = nameOf(step);
    let s = this.e.steps.get(name);
    if (!s) {
      await this.e.opts.beforeCreate?.(step);
      if (this.e.opts.images && !this.e.opts.images.includes(step.image)) throw new ImageNotFoundError(step.image);
      // A create that raced with another attempt's create finds that one.
      s = this.e.steps.get(name) ?? this.e.create(step, name);
    }
    if (s.state !== 'created') return;
    for (const f of step.files ?? []) this.e.volumes.write(step, f.name, f.data.toString('latin1'));
    s.state = 'running';
    s.startedAt = new Date();
    this.e.starts.set(name, (this.e.starts.get(name) ?? 0) + 1);
    void this.e.run(s);
  }

  async status(ref: StepRef): Promise<StepState> {
    this.e.reachable();
    const s = this.e.steps.get(nameOf(ref));
    if (!s) return { state: 'missing' };
    if (s.state === 'created') return { state: 'created' };
    if (s.state === 'running') return { state: 'running', startedAt: s.startedAt! };
    return { state: 'exited', exit: s.exit! };
  }

  async wait(ref: StepRef, signal?: AbortSignal): Promise<StepExit> {
    const s = this.e.steps.get(nameOf(ref));
    if (!s) throw new RunnerError(`container ${nameOf(ref)} is gone`);
    this.e.reachable();
    if (signal?.aborted) throw ABORT();
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => {
        signal?.removeEventListener('abort', onAbort);
        reject(err);
      };
      const onAbort = () => fail(ABORT());
      signal?.addEventListener('abort', onAbort, { once: true });
      this.e.waiting.add(fail);
      void s.exited.then(() => {
        this.e.waiting.delete(fail);
        if (this.e.quiet) return;
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
    if (!this.e.steps.has(s.name) || !s.exit) throw new RunnerError(`container ${s.name} is gone`);
    return s.exit;
  }

  async followLogs(ref: StepRef, onLines: (lines: LogLine[]) => void | Promise<void>, opts: { skipLines: number; signal?: AbortSignal }): Promise<void> {
    const s = this.e.steps.get(nameOf(ref));
    if (!s) return;
    let next = opts.skipLines;
    for (;;) {
      if (opts.signal?.aborted) return;
      // The engine's log stream breaks with the engine.
      if (this.e.down) throw new EngineUnreachableError('the fake engine stopped under the output stream');
      if (next < s.lines.length) {
        const batch = s.lines.slice(next);
        next = s.lines.length;
        await onLines(batch);
        continue;
      }
      if (s.state === 'exited' || !this.e.steps.has(s.name)) return;
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
    const s = this.e.steps.get(nameOf(ref));
    const data = Buffer.from(
      (s?.lines ?? [])
        .filter((l) => l.stream === 'stdout')
        .map((l) => `${l.text}\n`)
        .join(''),
    );
    return data.length > maxBytes ? { data: data.subarray(0, maxBytes), truncated: true } : { data, truncated: false };
  }

  async cancel(ref: StepRef, graceSeconds: number): Promise<'stopped' | 'not-running'> {
    this.e.reachable();
    const s = this.e.steps.get(nameOf(ref));
    if (!s || s.state !== 'running') return 'not-running';
    // A frozen step is thawed to be stopped, as the engine does.
    this.e.freeze(s, false);
    s.signalled = 'TERM';
    s.wake();
    const killAfter = setTimeout(
      () => {
        s.signalled = 'KILL';
        s.wake();
      },
      graceSeconds * (this.e.opts.secondMs ?? 1000),
    );
    await s.exited;
    clearTimeout(killAfter);
    return 'stopped';
  }

  async pause(ref: StepRef): Promise<void> {
    this.e.reachable();
    const s = this.e.steps.get(nameOf(ref));
    if (s?.state === 'running') this.e.freeze(s, true);
  }

  async unpause(ref: StepRef): Promise<void> {
    this.e.reachable();
    const s = this.e.steps.get(nameOf(ref));
    if (s) this.e.freeze(s, false);
  }

  async usage(ref: StepRef): Promise<StepUsage | null> {
    this.e.reachable();
    const s = this.e.steps.get(nameOf(ref));
    return s ? this.e.usage(s) : null;
  }

  async remove(ref: StepRef): Promise<void> {
    this.e.drop(nameOf(ref));
  }

  async removeJob(jobId: string): Promise<void> {
    for (const s of [...this.e.steps.values()]) if (s.ref.jobId === jobId) this.e.drop(s.name);
    this.e.workspaces.delete(jobId);
    this.e.filled.delete(jobId);
    this.e.volumes.removeJob(jobId);
  }

  /** Only creates the step's container (as a worker that dies before starting it would leave it). */
  async createOnly(step: StepRequest): Promise<void> {
    const name = nameOf(step);
    if (!this.e.steps.has(name)) this.e.create(step, name);
  }
}
