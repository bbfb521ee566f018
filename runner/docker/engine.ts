/**
 * One Docker engine as the four roles of the Docker backend share it: the client, the
 * container policy (settled by ready() and identifyHost()), the bound on requests that
 * should answer at once, and the calls more than one role makes.
 */
import Docker from 'dockerode';
import { ImageNotFoundError, RunnerError } from '../../common/errors';
import { LABEL_DEPLOYMENT, LABEL_JOB, LABEL_ROLE } from '../../common/names';
import type { StepRef } from '../runner';
import { type ContainerPolicy, containerName, holderName, holderOptions } from './convert';
import { isWedged } from './engine-errors';
import { makeJobFolder, removeJobFolder, waitForListener } from './job-folder';

export interface DockerApiError {
  statusCode?: number;
  message?: string;
}

export const statusOf = (err: unknown): number | undefined => (err as DockerApiError | null)?.statusCode;
export const isGone = (err: unknown) => statusOf(err) === 404;

export function parseTime(value: string | undefined): Date | null {
  // Docker reports "0001-01-01T00:00:00Z" for a time that has not happened.
  if (!value || value.startsWith('0001-')) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** The engine's filter for everything of one job of one deployment. */
export const jobFilter = (jobId: string, deployment: string) => JSON.stringify({ label: [`${LABEL_DEPLOYMENT}=${deployment}`, `${LABEL_JOB}=${jobId}`] });
/** A listed container's name, without the engine's leading slash. */
export const nameOf = (c: Docker.ContainerInfo) => (c.Names[0] ?? c.Id).replace(/^\//, '');
export const isHolder = (c: Docker.ContainerInfo) => c.Labels[LABEL_ROLE] === 'holder';

/** gVisor's runtime, by its registered binary (or, with no path, by its name). */
export const isGvisor = (name: string, entry: { path?: string }) => /(^|\/)runsc$/.test(entry.path ?? name);

export class DockerEngine {
  constructor(
    readonly docker: Docker,
    /** Settled by ready(): where the steps' forwarder runs depends on the runtime the engine has. */
    public policy: ContainerPolicy,
  ) {}

  name(step: StepRef): string {
    return containerName(step, this.policy.deployment);
  }

  /**
   * The bound on a request that the engine should answer at once (a stop: once its
   * grace is over). An engine that hangs fails it as unreachable (see
   * isEngineUnreachable), so the attempt is retried instead of held forever; the
   * long requests (a wait, a log follow) are watched by the step instead.
   */
  bounded(afterSeconds = 0): { abortSignal: AbortSignal } {
    return { abortSignal: AbortSignal.timeout((afterSeconds + this.policy.engineRequestSeconds) * 1000) };
  }

  /**
   * The job's way out, when steps reach out through the egress proxy: its directory
   * (which the egress service watches, and where it listens for the job), and its
   * holder, running. Idempotent: a retry finds both and returns once the socket is there.
   */
  async ensureHolder(jobId: string, { again = false, taken = false }: { again?: boolean; taken?: boolean } = {}): Promise<void> {
    const network = this.policy.network;
    if (network.mode !== 'proxy') return;
    if (!taken) await makeJobFolder(network.socketDir, jobId, this.policy.deployment);
    if (network.forwarder === 'in-step') return waitForListener(network.socketDir, jobId, this.policy.deployment);

    const name = holderName(jobId, this.policy.deployment);
    let container: Docker.Container;
    try {
      // A ready holder the job took is there already (ready-holders.ts): started again below if it had stopped.
      container = taken
        ? this.docker.getContainer(name)
        : await this.docker.createContainer({ ...holderOptions(jobId, { ...this.policy, network }), ...this.bounded() });
    } catch (err) {
      if (statusOf(err) !== 409) {
        if (isGone(err) && !(await this.imageExists(network.holderImage))) throw new ImageNotFoundError(network.holderImage);
        throw new RunnerError(`creating the network holder ${name} failed`, err);
      }
      container = this.docker.getContainer(name);
    }
    try {
      await container.start(this.bounded());
    } catch (err) {
      if (statusOf(err) === 304) {
        // already running
      } else if (isWedged(err) && !again) {
        // The engine was killed while it started the holder, and cannot start it any
        // more. A holder keeps no state (only the forwarder runs in it): made anew.
        await this.removeContainer(name);
        return this.ensureHolder(jobId, { again: true });
      } else {
        throw new RunnerError(`starting the network holder ${name} failed`, err);
      }
    }
    await waitForListener(network.socketDir, jobId, this.policy.deployment);
  }

  /** The job's socket directory: its removal tells the egress service to stop listening for the job. */
  async removeEgressDir(jobId: string): Promise<void> {
    const network = this.policy.network;
    if (network.mode !== 'proxy') return;
    await removeJobFolder(network.socketDir, jobId, this.policy.deployment);
  }

  /** A 404 on create names no object: the image is one candidate, a missing network or volume driver another. */
  async imageExists(image: string): Promise<boolean> {
    try {
      await this.docker.getImage(image).inspect();
      return true;
    } catch (err) {
      if (isGone(err)) return false;
      throw new RunnerError(`inspecting image ${image} failed`, err);
    }
  }

  async removeContainer(name: string): Promise<void> {
    try {
      await this.docker.getContainer(name).remove({ force: true, ...this.bounded() });
    } catch (err) {
      // 409: a removal of the same container is already in progress.
      if (isGone(err) || statusOf(err) === 409) return;
      throw new RunnerError(`removing container ${name} failed`, err);
    }
  }
}
