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
import type { JobResources, JobVolumeRef, LogLine, ManagedResource, Runner, StepExit, StepRef, StepRequest, StepState, StepUsage, VolumeRef } from '../runner';
import { FakeEngine, type FakeRunnerOptions } from './fake-engine';
import { FakeHostFacts, FakeSweeper, FakeVolumeStore } from './fake-roles';
import { FakeStepRunner } from './fake-steps';

export type { FakeRunnerOptions } from './fake-engine';

/** The four roles over one fake engine (one module each), with the engine's controls for tests. */
export class FakeRunner implements Runner {
  private readonly e: FakeEngine;
  readonly steps: FakeStepRunner;
  readonly volumes: FakeVolumeStore;
  readonly sweeper: FakeSweeper;
  readonly host: FakeHostFacts;

  constructor(opts: FakeRunnerOptions = {}) {
    this.e = new FakeEngine(opts);
    this.steps = new FakeStepRunner(this.e);
    this.volumes = new FakeVolumeStore(this.e);
    this.sweeper = new FakeSweeper(this.e, this.steps);
    this.host = new FakeHostFacts(this.e);
  }

  /** Times each step's command started, by container name: the witness for "at most once". */
  get starts(): Map<string, number> {
    return this.e.starts;
  }

  /** A volume's files (a test reads what a cache or kept workspace holds). */
  files = (ref: VolumeRef): Map<string, Buffer> | undefined => this.e.volumes.files(ref);
  /** The engine stops: waits break, running steps get SIGTERM, unless `keepContainers` (live restore). */
  stopEngine = (opts: { keepContainers?: boolean } = {}): void => this.e.stopEngine(opts);
  startEngine = (): void => this.e.startEngine();
  /** Waits stop hearing from the engine (their exit never comes); the engine answers on. */
  quietWaits = (): void => this.e.quietWaits();
  /** The engine hangs: steps run on, waits never settle, other requests fail as unreachable. */
  hangEngine = (): void => this.e.hangEngine();
  recoverEngine = (): void => this.e.recoverEngine();
  /** The container vanishes under its step, as when the engine restarts. */
  lose = (ref: StepRef): void => this.e.lose(ref);
  /** Only creates the step's container (as a worker that dies before starting it would leave it). */
  createOnly = (step: StepRequest): Promise<void> => this.steps.createOnly(step);

  // HostFacts
  ready = (): Promise<void> => this.host.ready();
  hostKey = (): Promise<string> => this.host.hostKey();
  imageId = (image: string): Promise<string> => this.host.imageId(image);

  // StepRunner
  prepareWorkspace = (jobId: string): Promise<void> => this.steps.prepareWorkspace(jobId);
  start = (step: StepRequest): Promise<void> => this.steps.start(step);
  status = (step: StepRef): Promise<StepState> => this.steps.status(step);
  wait = (step: StepRef, signal?: AbortSignal): Promise<StepExit> => this.steps.wait(step, signal);
  followLogs = (step: StepRef, onLines: (lines: LogLine[]) => void | Promise<void>, opts: { skipLines: number; signal?: AbortSignal }): Promise<void> =>
    this.steps.followLogs(step, onLines, opts);
  stdout = (step: StepRef, maxBytes: number): Promise<{ data: Buffer; truncated: boolean }> => this.steps.stdout(step, maxBytes);
  cancel = (step: StepRef, graceSeconds: number): Promise<'stopped' | 'not-running'> => this.steps.cancel(step, graceSeconds);
  pause = (step: StepRef): Promise<void> => this.steps.pause(step);
  unpause = (step: StepRef): Promise<void> => this.steps.unpause(step);
  usage = (step: StepRef): Promise<StepUsage | null> => this.steps.usage(step);
  remove = (step: StepRef): Promise<void> => this.steps.remove(step);
  removeJob = (jobId: string): Promise<void> => this.steps.removeJob(jobId);

  // VolumeStore
  workspaceBytes = (jobId: string): Promise<number> => this.volumes.workspaceBytes(jobId);
  hashFiles = (jobId: string, commit: string, pathspecs: string[]): Promise<string> => this.volumes.hashFiles(jobId, commit, pathspecs);
  copyVolume = (to: VolumeRef, from: VolumeRef | null): Promise<number> => this.volumes.copyVolume(to, from);
  removeKept = (id: string): Promise<boolean> => this.volumes.removeKept(id);
  listKept = (): Promise<{ id: string; createdAt: Date }[]> => this.volumes.listKept();
  readVolume = (ref: JobVolumeRef, onFile: (path: string, data: Buffer) => void): Promise<void> => this.volumes.readVolume(ref, onFile);

  // Sweeper
  listJobResources = (jobId: string): Promise<JobResources> => this.sweeper.listJobResources(jobId);
  listManaged = (): Promise<ManagedResource[]> => this.sweeper.listManaged();
  stopManaged = (resource: ManagedResource, graceSeconds: number): Promise<void> => this.sweeper.stopManaged(resource, graceSeconds);
  removeManaged = (resource: ManagedResource): Promise<void> => this.sweeper.removeManaged(resource);
}
