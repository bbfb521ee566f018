/**
 * The Docker backend: the four roles of the runner seam (runner/runner.ts) over one
 * engine, each in its own module; this class only puts them together for a worker that
 * wants them all.
 */
import Docker from 'dockerode';
import type { JobResources, JobVolumeRef, LogLine, ManagedResource, Runner, StepExit, StepRef, StepRequest, StepState, StepUsage, VolumeRef } from '../runner';
import type { ContainerPolicy } from './convert';
import { DockerHostFacts } from './docker-host';
import { DockerStepRunner } from './docker-steps';
import { DockerSweeper } from './docker-sweeper';
import { DockerVolumeStore } from './docker-volumes';
import { DockerEngine } from './engine';
import { ReadyHolders } from './ready-holders';
import { WarmVolumes } from './warm-volumes';

/** Runs each step as one ephemeral container on a Docker engine, with a named volume per job. */
export class DockerRunner implements Runner {
  readonly steps: DockerStepRunner;
  readonly volumes: DockerVolumeStore;
  readonly sweeper: DockerSweeper;
  readonly host: DockerHostFacts;
  readonly readyHolders: ReadyHolders;

  constructor(docker: Docker, policy: ContainerPolicy) {
    const engine = new DockerEngine(docker, policy);
    const warm = new WarmVolumes(
      docker,
      () => engine.policy,
      (s) => engine.bounded(s),
      (name) => engine.removeContainer(name),
    );
    this.readyHolders = new ReadyHolders(engine);
    this.steps = new DockerStepRunner(engine, this.readyHolders);
    this.volumes = new DockerVolumeStore(engine, warm);
    this.sweeper = new DockerSweeper(engine);
    this.host = new DockerHostFacts(engine, warm);
  }

  // HostFacts
  ready = (): Promise<void> => this.host.ready();
  accountingProblem = (): string | null => this.host.accountingProblem();
  hostKey = (): Promise<string> => this.host.hostKey();
  identifyHost = (id: string): void => this.host.identifyHost(id);
  imageId = (image: string): Promise<string> => this.host.imageId(image);
  keepReady = async (size: number, onError?: (err: unknown) => void): Promise<() => Promise<void>> => {
    await this.readyHolders.start(size, onError);
    return () => this.readyHolders.stop();
  };

  // StepRunner
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
  prepareWorkspace = (jobId: string): Promise<void> => this.steps.prepareWorkspace(jobId);
  removeJob = (jobId: string): Promise<void> => this.steps.removeJob(jobId);
  /** Only creates the step's container (as a worker that dies before starting it would leave it). */
  createOnly = (step: StepRequest): Promise<void> => this.steps.createOnly(step);

  // VolumeStore
  workspaceBytes = (jobId: string): Promise<number> => this.volumes.workspaceBytes(jobId);
  hashFiles = (jobId: string, commit: string, pathspecs: string[]): Promise<string> => this.volumes.hashFiles(jobId, commit, pathspecs);
  copyVolume = (to: VolumeRef, from: VolumeRef | null): Promise<number> => this.volumes.copyVolume(to, from);
  removeKept = (id: string): Promise<boolean> => this.volumes.removeKept(id);
  listKept = (): Promise<{ id: string; createdAt: Date }[]> => this.volumes.listKept();
  readVolume = (ref: JobVolumeRef, onFile: (path: string, data: Buffer) => void, onName?: (path: string, link?: string) => void): Promise<void> =>
    this.volumes.readVolume(ref, onFile, onName);

  // Sweeper
  listJobResources = (jobId: string): Promise<JobResources> => this.sweeper.listJobResources(jobId);
  listManaged = (): Promise<ManagedResource[]> => this.sweeper.listManaged();
  stopManaged = (resource: ManagedResource, graceSeconds: number): Promise<void> => this.sweeper.stopManaged(resource, graceSeconds);
  removeManaged = (resource: ManagedResource): Promise<void> => this.sweeper.removeManaged(resource);
}
