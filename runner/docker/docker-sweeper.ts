/** The Docker backend's sweeper: what a deployment owns on the engine, listed and removed (the janitor, and tests). */
import { RunnerError } from '../../common/errors';
import { LABEL_DEADLINE, LABEL_DEPLOYMENT, LABEL_JOB, LABEL_MANAGED, LABEL_PLACEMENT, LABEL_ROLE } from '../../common/names';
import type { JobResources, ManagedResource, Sweeper } from '../runner';

import { type DockerEngine, isGone, isHolder, jobFilter, nameOf, statusOf } from './engine';

export class DockerSweeper implements Sweeper {
  constructor(private readonly e: DockerEngine) {}

  async listJobResources(jobId: string): Promise<JobResources> {
    const filters = jobFilter(jobId, this.e.policy.deployment);
    try {
      const [containers, volumes] = await Promise.all([
        this.e.docker.listContainers({ all: true, filters, ...this.e.bounded() }),
        this.e.docker.listVolumes({ filters, ...this.e.bounded() }),
      ]);
      return {
        steps: containers.filter((c) => !isHolder(c)).map(nameOf),
        holders: containers.filter(isHolder).map(nameOf),
        workspaces: (volumes.Volumes ?? []).map((v) => v.Name),
      };
    } catch (err) {
      throw new RunnerError(`listing resources of job ${jobId} failed`, err);
    }
  }

  async listManaged(): Promise<ManagedResource[]> {
    // Only this deployment's: another deployment on the same engine, and resources of
    // versions from before deployment labels, are never listed, so never removed.
    const filters = JSON.stringify({ label: [`${LABEL_MANAGED}=true`, `${LABEL_DEPLOYMENT}=${this.e.policy.deployment}`] });
    try {
      const [containers, volumes] = await Promise.all([
        this.e.docker.listContainers({ all: true, filters, ...this.e.bounded() }),
        this.e.docker.listVolumes({ filters, ...this.e.bounded() }),
      ]);
      return [
        ...containers.map((c): ManagedResource => ({
          type: isHolder(c) ? 'holder' : 'step',
          name: nameOf(c),
          jobId: c.Labels[LABEL_JOB] ?? '',
          placement: Number(c.Labels[LABEL_PLACEMENT]) || 1,
          running: c.State === 'running',
          deadline: Number(c.Labels[LABEL_DEADLINE]) || undefined,
        })),
        // Kept volumes (saved caches, kept workspaces) are no job's: the budget and listKept decide about them.
        ...(volumes.Volumes ?? [])
          .filter((v) => v.Labels?.[LABEL_ROLE] !== 'kept')
          .map((v): ManagedResource => ({ type: 'workspace', name: v.Name, jobId: v.Labels?.[LABEL_JOB] ?? '' })),
      ];
    } catch (err) {
      throw new RunnerError('listing Draftsman containers and volumes failed', err);
    }
  }

  async stopManaged(resource: ManagedResource, graceSeconds: number): Promise<void> {
    if (resource.type !== 'step') return;
    try {
      await this.e.docker.getContainer(resource.name).stop({ t: graceSeconds, ...this.e.bounded(graceSeconds) });
    } catch (err) {
      if (statusOf(err) === 304 || isGone(err)) return;
      throw new RunnerError(`stopping ${resource.name} failed`, err);
    }
  }

  async removeManaged(resource: ManagedResource): Promise<void> {
    if (resource.type === 'step') return this.e.removeContainer(resource.name);
    if (resource.type === 'holder') {
      await this.e.removeContainer(resource.name);
      return this.e.removeEgressDir(resource.jobId);
    }
    try {
      await this.e.docker.getVolume(resource.name).remove(this.e.bounded());
    } catch (err) {
      if (isGone(err)) return;
      throw new RunnerError(`removing volume ${resource.name} failed`, err);
    }
  }
}
