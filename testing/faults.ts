/**
 * Fault injection for tests, by wrapping: the store and the runner are given to the
 * worker wrapped, and the wrapper pauses, fails or drops a call at a named boundary of
 * a step's life. Production code has no switch for any of it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { activityStepContext, type StepContext } from '../activities/step/context';
import type { StepLogStore } from '../db/log-store';
import type { StepStore } from '../db/step-store';
import type { JobStore } from '../db/store';
import type { JobVolumeRef, Runner, StepRef, VolumeRef } from '../runner/runner';
import type { WorkerWrap } from '../worker/main';

/** The named boundaries a probe is called at, and the call each one wraps. */
export const BOUNDARIES = [
  /** Before runner.start: the container is about to be created. */
  'before-create',
  /** After runner.start: the command runs. */
  'after-create',
  /** After runner.wait answered: the step exited, its end not yet recorded. */
  'at-step-end',
  /** Before the claim of a step that is not a clone: between the steps of a batch. */
  'between-steps',
  /** Before a job's end looks for steps still running: during cleanup. */
  'during-cleanup',
  /** After a cache or workspace is copied to a kept volume, before its entry is committed. */
  'at-cache-save',
  /** After a job's volume is restored from a kept one, before the entry is looked up. */
  'at-restore',
] as const;
export type Boundary = (typeof BOUNDARIES)[number];
export type Probe = (boundary: Boundary, at: { jobId: string; step: string | null }) => Promise<void>;

/** An object whose named methods are replaced, the others bound to it. */
export function overriding<T extends object>(real: T, replaced: Partial<T> = {}): T {
  return new Proxy(real, {
    get(target, prop, receiver) {
      if (prop in replaced) return replaced[prop as keyof T];
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** The store with some of its steps' or logs' methods replaced: what a test holds, fails or drops. */
export function wrapStore(store: JobStore, over: { steps?: Partial<StepStore>; logs?: Partial<StepLogStore> }): JobStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'steps') return overriding(target.steps, over.steps);
      if (prop === 'logs') return overriding(target.logs, over.logs);
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

const stepName = (ref: StepRef) => `${ref.kind}-${ref.index}`;
const volumeJob = (ref: JobVolumeRef) => ('workspace' in ref ? ref.workspace : ref.cache.jobId);
const volumeName = (ref: JobVolumeRef) => ('cache' in ref ? ref.cache.name : 'workspace');
const isKept = (ref: VolumeRef | null): ref is { kept: string } => ref !== null && 'kept' in ref;

/** The runner with `probe` called at the boundaries around its calls. */
export function probedRunner<R extends Runner>(runner: R, probe: Probe): R {
  return overriding<R>(runner, {
    start: async (req) => {
      await probe('before-create', { jobId: req.jobId, step: stepName(req) });
      await runner.start(req);
      await probe('after-create', { jobId: req.jobId, step: stepName(req) });
    },
    wait: async (ref, signal) => {
      const exit = await runner.wait(ref, signal);
      await probe('at-step-end', { jobId: ref.jobId, step: stepName(ref) });
      return exit;
    },
    copyVolume: async (to, from) => {
      const bytes = await runner.copyVolume(to, from);
      if (isKept(to) && from && !isKept(from)) await probe('at-cache-save', { jobId: volumeJob(from), step: volumeName(from) });
      if (isKept(from) && !isKept(to)) await probe('at-restore', { jobId: volumeJob(to), step: volumeName(to) });
      return bytes;
    },
  } as Partial<R>);
}

/** The store with `probe` called between a batch's steps and during a job's cleanup. */
export function probedStore(store: JobStore, probe: Probe): JobStore {
  return wrapStore(store, {
    steps: {
      claim: async (jobId, step, attempt) => {
        if (step.kind !== 'clone') await probe('between-steps', { jobId, step: `${step.kind}-${step.index}` });
        return store.steps.claim(jobId, step, attempt);
      },
      running: async (jobId) => {
        await probe('during-cleanup', { jobId, step: null });
        return store.steps.running(jobId);
      },
    },
  });
}

/** Both wrappers, as a test stack or a test worker takes them. */
export const probed = (probe: Probe) => ({ runner: <R extends Runner>(r: R) => probedRunner(r, probe), store: (s: JobStore) => probedStore(s, probe) });

const attemptState = new AsyncLocalStorage<{ started: boolean }>();

/**
 * A fixed defect put back by wrapping: the step's cancel listener attached only once
 * its container is created, so that a cancel sent while it is created is missed. The
 * context hides every abort that comes before the wrapped runner's start has returned.
 */
export function lateCancelListener(base: () => StepContext): { context: () => StepContext; runner: <R extends Runner>(r: R) => R } {
  return {
    context: () => {
      const real = base();
      const state = { started: false };
      attemptState.enterWith(state);
      const late = new AbortController();
      real.signal.addEventListener('abort', () => {
        if (state.started) late.abort(real.signal.reason);
      });
      return { attempt: real.attempt, signal: late.signal, cancelRequested: () => real.cancelRequested(), heartbeat: (d) => real.heartbeat(d) };
    },
    runner: <R extends Runner>(r: R) =>
      overriding<R>(r, {
        start: async (req) => {
          await r.start(req);
          const state = attemptState.getStore();
          if (state) state.started = true;
        },
      } as Partial<R>),
  };
}

/**
 * A fixed defect put back by wrapping: the engine's loss under a running step is not
 * noted, so that the next attempt takes the engine's stop for the step's own exit.
 */
export const engineLossForgotten = (store: JobStore): JobStore =>
  wrapStore(store, {
    steps: {
      engineInterrupted: async (jobId, kind, index, attempt, interrupted, placement) => {
        if (!interrupted) await store.steps.engineInterrupted(jobId, kind, index, attempt, interrupted, placement);
      },
    },
  });

/** What a test worker is built with for the switches named in DRAFTSMAN_TEST_FAULTS (comma-separated), and the probe. */
export function testWorkerWrap(switches: string[], probe: Probe): WorkerWrap {
  const known = ['cancel-listener-after-create', 'engine-stop-as-own-exit'];
  const unknown = switches.filter((s) => !known.includes(s));
  if (unknown.length) throw new Error(`DRAFTSMAN_TEST_FAULTS: unknown switch ${unknown.join(', ')} (known: ${known.join(', ')})`);
  const late = switches.includes('cancel-listener-after-create') ? lateCancelListener(activityStepContext) : null;
  const forget = switches.includes('engine-stop-as-own-exit');
  return {
    runner: (r) => {
      const wrapped = probedRunner(r, probe);
      return late ? late.runner(wrapped) : wrapped;
    },
    store: (s) => probedStore(forget ? engineLossForgotten(s) : s, probe),
    ...(late ? { stepContext: late.context } : {}),
  };
}
