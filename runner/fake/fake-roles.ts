/** The fake backend's volume store, sweeper and host facts, over the fake engine (fake-engine.ts). */
import { ImageNotFoundError, RunnerError } from '../../common/errors';
import type { HostFacts, JobResources, JobVolumeRef, ManagedResource, StepRunner, Sweeper, VolumeRef, VolumeStore } from '../runner';
import type { FakeEngine } from './fake-engine';

export class FakeVolumeStore implements VolumeStore {
  constructor(private readonly e: FakeEngine) {}

  async hashFiles(jobId: string, _commit: string, pathspecs: string[]): Promise<string> {
    this.e.reachable();
    return this.e.volumes.hashFiles(jobId, pathspecs);
  }

  async copyVolume(to: VolumeRef, from: VolumeRef | null): Promise<number> {
    this.e.reachable();
    if (from && 'kept' in from && !this.e.volumes.files(from)) throw new RunnerError(`kept volume ${from.kept} is gone`);
    if ('workspace' in to) this.e.workspaces.add(to.workspace);
    return this.e.volumes.copy(to, from);
  }

  /** The fake copies on every restore: a kept volume is never in use. */
  async removeKept(id: string): Promise<boolean> {
    this.e.reachable();
    this.e.volumes.removeKept(id);
    return true;
  }

  async listKept(): Promise<{ id: string; createdAt: Date }[]> {
    this.e.reachable();
    return this.e.volumes.listKept();
  }

  async readVolume(ref: JobVolumeRef, onFile: (path: string, data: Buffer) => void): Promise<void> {
    this.e.reachable();
    for (const [p, data] of this.e.volumes.files(ref) ?? []) onFile(p, data);
  }

  async workspaceBytes(jobId: string): Promise<number> {
    this.e.reachable();
    return this.e.filled.get(jobId) ?? 0;
  }
}

export class FakeSweeper implements Sweeper {
  constructor(
    private readonly e: FakeEngine,
    private readonly steps: Pick<StepRunner, 'cancel'>,
  ) {}

  async listJobResources(jobId: string): Promise<JobResources> {
    return {
      holders: [],
      steps: [...this.e.steps.values()].filter((s) => s.ref.jobId === jobId).map((s) => s.name),
      workspaces: this.e.workspaces.has(jobId) ? [`fake-${jobId}-workspace`] : [],
    };
  }

  async listManaged(): Promise<ManagedResource[]> {
    return [
      ...[...this.e.steps.values()].map((s): ManagedResource => ({
        type: 'step',
        name: s.name,
        jobId: s.ref.jobId,
        placement: s.ref.placement ?? 1,
        running: s.state === 'running',
        deadline: s.deadline,
      })),
      ...[...this.e.workspaces].map((jobId): ManagedResource => ({ type: 'workspace', name: `fake-${jobId}-workspace`, jobId })),
    ];
  }

  async stopManaged(resource: ManagedResource, graceSeconds: number): Promise<void> {
    const s = this.e.steps.get(resource.name);
    if (s) await this.steps.cancel(s.ref, graceSeconds);
  }

  async removeManaged(resource: ManagedResource): Promise<void> {
    if (resource.type === 'step') this.e.drop(resource.name);
    else this.e.workspaces.delete(resource.jobId);
  }
}

export class FakeHostFacts implements HostFacts {
  constructor(private readonly e: FakeEngine) {}

  async ready(): Promise<void> {
    this.e.reachable();
  }

  async hostKey(): Promise<string> {
    this.e.reachable();
    return this.e.key;
  }

  async imageId(image: string): Promise<string> {
    this.e.reachable();
    if (this.e.opts.images && !this.e.opts.images.includes(image)) throw new ImageNotFoundError(image);
    return this.e.imageIdOf(image);
  }
}
