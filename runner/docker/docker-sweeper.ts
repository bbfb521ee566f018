/** The Docker backend's sweeper: what a deployment owns on the engine, listed and removed (the janitor, and tests). */
import { RunnerError } from '../../common/errors';
import type Docker from 'dockerode';
import { LABEL_DEADLINE, LABEL_DEPLOYMENT, LABEL_JOB, LABEL_MANAGED, LABEL_PLACEMENT, LABEL_READY, LABEL_ROLE } from '../../common/names';
import { readyHolderName } from './convert';
import type { JobResources, ManagedResource, Sweeper } from '../runner';

import { type DockerEngine, isGone, isHolder, jobFilter, nameOf, statusOf } from './engine';

export class DockerSweeper implements Sweeper {
  constructor(private readonly e: DockerEngine) {}

  async listJobResources(jobId: string): Promise<JobResources> {
    const filters = jobFilter(jobId, this.e.policy.deployment);
    try {
      const [containers, volumes, taken] = await Promise.all([
        this.e.docker.listContainers({ all: true, filters, ...this.e.bounded() }),
        this.e.docker.listVolumes({ filters, ...this.e.bounded() }),
        this.takenHolders(),
      ]);
      return {
        steps: containers.filter((c) => !isHolder(c)).map(nameOf),
        holders: [...containers.filter(isHolder), ...taken.filter((t) => t.jobId === jobId).map((t) => t.container)].map(nameOf),
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
        // A ready holder no job took is its worker's (ready-holders.ts); a taken one is its job's, named for it.
        ...containers.flatMap((c): ManagedResource[] => {
          const ready = c.Labels[LABEL_READY] !== undefined;
          const jobId = ready ? this.jobOfTaken(c) : (c.Labels[LABEL_JOB] ?? '');
          return ready && jobId === null ? [] : [{ type: isHolder(c) ? 'holder' : 'step', name: nameOf(c), jobId: jobId ?? '', ...this.stepFacts(c) }];
        }),

        // Kept volumes (saved caches, kept workspaces) are no job's: the budget and listKept decide about them.
        ...(volumes.Volumes ?? [])
          .filter((v) => v.Labels?.[LABEL_ROLE] !== 'kept')
          .map((v): ManagedResource => ({ type: 'workspace', name: v.Name, jobId: v.Labels?.[LABEL_JOB] ?? '' })),
      ];
    } catch (err) {
      throw new RunnerError('listing Draftsman containers and volumes failed', err);
    }
  }

  private stepFacts(c: Docker.ContainerInfo): Pick<ManagedResource, 'placement' | 'running' | 'deadline'> {
    return { placement: Number(c.Labels[LABEL_PLACEMENT]) || 1, running: c.State === 'running', deadline: Number(c.Labels[LABEL_DEADLINE]) || undefined };
  }

  /** The job a taken ready holder is named for (null: not taken yet). */
  private jobOfTaken(c: Docker.ContainerInfo): string | null {
    const prefix = `draftsman-${this.e.policy.deployment}-`;
    const name = nameOf(c);
    return name !== readyHolderName(c.Labels[LABEL_READY] ?? '', this.e.policy.deployment) && name.startsWith(prefix) && name.endsWith('-holder')
      ? name.slice(prefix.length, -'-holder'.length)
      : null;
  }

  /** Ready holders taken by jobs, with the job each is named for. */
  private async takenHolders(): Promise<{ jobId: string; container: Docker.ContainerInfo }[]> {
    const filters = JSON.stringify({ label: [`${LABEL_DEPLOYMENT}=${this.e.policy.deployment}`, LABEL_READY] });
    const listed = await this.e.docker.listContainers({ all: true, filters, ...this.e.bounded() });
    return listed.flatMap((container) => {
      const jobId = this.jobOfTaken(container);
      return jobId === null ? [] : [{ jobId, container }];
    });
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
