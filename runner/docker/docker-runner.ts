import Docker from 'dockerode';
import { pack } from 'tar-stream';
import { ContainerLostError, EngineUnreachableError, ImageNotFoundError, RunnerError } from '../../common/errors';
import { LABEL_DEADLINE, LABEL_DEPLOYMENT, LABEL_JOB, LABEL_MANAGED, LABEL_PLACEMENT, LABEL_ROLE } from '../../common/names';
import { makeJobFolder, removeJobFolder, waitForListener } from './job-folder';
import type { JobResources, JobVolumeRef, LogLine, ManagedResource, Runner, StepExit, StepRef, StepRequest, StepState, VolumeRef } from '../runner';
import {
  type ContainerPolicy,
  containerName,
  gvisorEgressProblem,
  measureName,
  measureOptions,
  parseDu,
  containerOptions,
  exitTimes,
  holderName,
  holderOptions,
  jobLabels,
  volumeName,
  WORKSPACE_PATH,
} from './convert';
import { demuxDockerStream } from './demux';
import { acceptsConnections, waitNotRunning } from './engine-requests';
import { isEngineUnreachable, isWedged } from './engine-errors';
import { StepOutput } from './step-output';
import { WarmVolumes } from './warm-volumes';

interface DockerApiError {
  statusCode?: number;
  message?: string;
}

const statusOf = (err: unknown): number | undefined => (err as DockerApiError | null)?.statusCode;
const isGone = (err: unknown) => statusOf(err) === 404;

function parseTime(value: string | undefined): Date | null {
  // Docker reports "0001-01-01T00:00:00Z" for a time that has not happened.
  if (!value || value.startsWith('0001-')) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** The engine's filter for everything of one job of one deployment. */
const jobFilter = (jobId: string, deployment: string) => JSON.stringify({ label: [`${LABEL_DEPLOYMENT}=${deployment}`, `${LABEL_JOB}=${jobId}`] });
/** A listed container's name, without the engine's leading slash. */
const nameOf = (c: Docker.ContainerInfo) => (c.Names[0] ?? c.Id).replace(/^\//, '');
const isHolder = (c: Docker.ContainerInfo) => c.Labels[LABEL_ROLE] === 'holder';

/** gVisor's runtime, by its registered binary (or, with no path, by its name). */
const isGvisor = (name: string, entry: { path?: string }) => /(^|\/)runsc$/.test(entry.path ?? name);

/** Runs each step as one ephemeral container on a Docker engine, with a named volume per job. */
export class DockerRunner implements Runner {
  constructor(
    private readonly docker: Docker,
    /** Settled by ready(): where the steps' forwarder runs depends on the runtime the engine has. */
    private policy: ContainerPolicy,
  ) {
    this.warm = new WarmVolumes(
      docker,
      () => this.policy,
      (s) => this.bounded(s),
      (name) => this.removeContainer(name),
    );
    this.output = new StepOutput(docker, () => this.bounded());
  }

  private readonly warm: WarmVolumes;
  private readonly output: StepOutput;

  imageId(image: string): Promise<string> {
    return this.warm.imageId(image);
  }

  hashFiles(jobId: string, commit: string, pathspecs: string[]): Promise<string> {
    return this.warm.hashFiles(jobId, commit, pathspecs);
  }

  copyVolume(to: VolumeRef, from: VolumeRef | null): Promise<number> {
    return this.warm.copyVolume(to, from);
  }

  removeKept(id: string): Promise<boolean> {
    return this.warm.removeKept(id);
  }

  listKept(): Promise<{ id: string; createdAt: Date }[]> {
    return this.warm.listKept();
  }

  readVolume(ref: JobVolumeRef, onFile: (path: string, data: Buffer) => void, onName?: (path: string, link?: string) => void): Promise<void> {
    return this.warm.readVolume(ref, onFile, onName);
  }

  private name(step: StepRef): string {
    return containerName(step, this.policy.deployment);
  }

  /**
   * The bound on a request that the engine should answer at once (a stop: once its
   * grace is over). An engine that hangs fails it as unreachable (see
   * isEngineUnreachable), so the attempt is retried instead of held forever; the
   * long requests (a wait, a log follow) are watched by the step instead.
   */
  private bounded(afterSeconds = 0): { abortSignal: AbortSignal } {
    return { abortSignal: AbortSignal.timeout((afterSeconds + this.policy.engineRequestSeconds) * 1000) };
  }

  async hostKey(): Promise<string> {
    const ask = this.docker.info as (opts: { abortSignal: AbortSignal }) => Promise<{ ID?: string }>;
    const info = await ask.call(this.docker, this.bounded()).catch((err: unknown) => {
      throw new RunnerError('asking the engine for its id failed', err);
    });
    const modem = this.docker.modem as { socketPath?: string; host?: string; port?: number | string };
    return `${info.ID ?? 'unknown'}@${modem.socketPath ?? `${modem.host}:${modem.port}`}`;
  }

  identifyHost(id: string): void {
    this.policy = { ...this.policy, host: id };
  }

  async ready(): Promise<void> {
    const runtime = this.policy.runtime;
    if (!runtime) return;
    type Registered = { path?: string; runtimeArgs?: string[] };
    let info: { Runtimes?: Record<string, Registered> };
    try {
      // (dockerode's types leave out the options that its info takes.)
      const ask = this.docker.info as (opts: { abortSignal: AbortSignal }) => Promise<{ Runtimes?: Record<string, Registered> }>;
      info = await ask.call(this.docker, this.bounded());
    } catch (err) {
      throw new RunnerError('asking the engine for its runtimes failed', err);
    }
    const known = info.Runtimes ?? {};
    const entry = known[runtime];
    if (!entry) {
      throw new RunnerError(
        `DRAFTSMAN_STEP_RUNTIME=${runtime}, but the Docker engine has no runtime of that name (it has: ${Object.keys(known).join(', ') || 'none'}); ` +
          'register it in the engine\'s daemon.json ("runtimes") and restart the engine (docs/deployment.md, "gVisor")',
      );
    }
    const network = this.policy.network;
    if (network.mode !== 'proxy' || !isGvisor(runtime, entry)) return;
    // gVisor has a network stack of its own: a step joining the holder's namespace
    // gets no route to it, so each step runs its own forwarder to the job's socket.
    const problem = gvisorEgressProblem(entry.runtimeArgs ?? [], network.socketVolume);
    if (problem) throw new RunnerError(`DRAFTSMAN_STEP_RUNTIME=${runtime}: ${problem}`);
    this.policy = { ...this.policy, network: { ...network, forwarder: 'in-step' } };
  }

  async prepareWorkspace(jobId: string): Promise<void> {
    // The volume and the holder are independent: made side by side, so the holder adds
    // little to a job's pickup.
    await Promise.all([this.createVolume(jobId), this.ensureHolder(jobId)]);
  }

  private async createVolume(jobId: string): Promise<void> {
    try {
      // Creating an existing volume with the same name is a no-op on the engine.
      await this.docker.createVolume({
        Name: volumeName(jobId, this.policy.deployment),
        Labels: jobLabels(jobId, this.policy.deployment, this.policy.host),
        ...this.bounded(),
      });
    } catch (err) {
      throw new RunnerError(`creating workspace volume for job ${jobId} failed`, err);
    }
  }

  /**
   * The job's way out, when steps reach out through the egress proxy: its directory
   * (which the egress service watches, and where it listens for the job), and its
   * holder, running. Idempotent: a retry finds both and returns once the socket is there.
   */
  private async ensureHolder(jobId: string, again = false): Promise<void> {
    const network = this.policy.network;
    if (network.mode !== 'proxy') return;
    await makeJobFolder(network.socketDir, jobId, this.policy.deployment);
    if (network.forwarder === 'in-step') return waitForListener(network.socketDir, jobId, this.policy.deployment);

    const name = holderName(jobId, this.policy.deployment);
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer({ ...holderOptions(jobId, { ...this.policy, network }), ...this.bounded() });
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
        return this.ensureHolder(jobId, true);
      } else {
        throw new RunnerError(`starting the network holder ${name} failed`, err);
      }
    }
    await waitForListener(network.socketDir, jobId, this.policy.deployment);
  }

  async start(step: StepRequest): Promise<void> {
    const name = this.name(step);
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer({ ...containerOptions(step, this.policy, new Date()), ...this.bounded() });
    } catch (err) {
      if (statusOf(err) === 409) {
        // A container of this step exists: an earlier attempt created it. Re-attach.
        container = this.docker.getContainer(name);
        const info = await container.inspect(this.bounded());
        if (info.Config.Labels?.[LABEL_DEPLOYMENT] !== this.policy.deployment) {
          throw new RunnerError(`container ${name} exists but belongs to another deployment; refusing to attach to it`);
        }
        if (info.State.Status !== 'created') return;
      } else if (isGone(err) && !(await this.imageExists(step.image))) {
        throw new ImageNotFoundError(step.image);
      } else {
        throw new RunnerError(`creating container ${name} failed`, err);
      }
    }
    if (step.files?.length) await this.putFiles(container, name, step.files);
    try {
      await this.startContainer(container, step.jobId);
    } catch (err) {
      if (statusOf(err) === 304) return; // already started
      if (isWedged(err)) throw new ContainerLostError(`the engine lost container ${name} in a crash: ${(err as Error).message}`, err);
      throw new RunnerError(`starting container ${name} failed`, err);
    }
  }

  /** Files into the created container's workspace volume (the engine writes to a volume even under a read-only root). */
  private async putFiles(container: Docker.Container, name: string, files: { name: string; data: Buffer }[]): Promise<void> {
    const tar = pack();
    const [uid, gid] = this.policy.user.split(':').map(Number);
    for (const f of files) {
      if (!/^[A-Za-z0-9._-]+$/.test(f.name) || f.name === '.' || f.name === '..')
        throw new RunnerError(`a step's file must be a plain name, not ${JSON.stringify(f.name)}`);
      tar.entry({ name: f.name, mode: 0o600, uid, gid }, f.data);
    }
    tar.finalize();
    try {
      await container.putArchive(tar as unknown as NodeJS.ReadableStream, { path: WORKSPACE_PATH, ...this.bounded(60) });
    } catch (err) {
      throw new RunnerError(`putting files into ${name} failed`, err);
    }
  }

  /**
   * A step joins its job's holder, which an engine restart may have left stopped (its
   * restart policy does not always bring it back): it is started again first.
   */
  private async startContainer(container: Docker.Container, jobId: string): Promise<void> {
    try {
      await container.start(this.bounded());
    } catch (err) {
      if (!(statusOf(err) === 409 && /cannot join network of a non running container/.test(String((err as Error).message)))) throw err;
      await this.ensureHolder(jobId);
      await container.start(this.bounded());
    }
  }

  async status(step: StepRef): Promise<StepState> {
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.docker.getContainer(this.name(step)).inspect(this.bounded());
    } catch (err) {
      if (isGone(err)) return { state: 'missing' };
      if (isEngineUnreachable(err)) throw new EngineUnreachableError(`the engine did not answer an inspect of ${this.name(step)}`, err);
      throw new RunnerError(`inspecting ${this.name(step)} failed`, err);
    }
    const s = info.State;
    if (s.Status === 'created') return { state: 'created' };
    if (s.Running || s.Status === 'running' || s.Status === 'restarting' || s.Status === 'paused') {
      return { state: 'running', startedAt: parseTime(s.StartedAt) ?? new Date() };
    }
    // An engine that is stopping closes its API to new connections, then stops its
    // containers while connections already open (a wait, a kept-alive one) still get
    // answers: an end seen while the engine refuses new connections is the engine's
    // stop, not the command's (even an exit 0: a container stopped that way was seen
    // reported as exit 0 at once).
    if (!(await acceptsConnections(this.docker))) {
      throw new EngineUnreachableError(`the engine is stopping: it stopped ${this.name(step)} (exit ${s.ExitCode})`);
    }
    return {
      state: 'exited',
      exit: {
        exitCode: s.ExitCode,
        oomKilled: s.OOMKilled,
        ...exitTimes(parseTime(s.StartedAt), parseTime(s.FinishedAt)),
      },
    };
  }

  async wait(step: StepRef, signal?: AbortSignal): Promise<StepExit> {
    const name = this.name(step);
    try {
      await waitNotRunning(this.docker, name, signal);
    } catch (err) {
      if (signal?.aborted) throw err;
      if (isGone(err)) throw new RunnerError(`container ${name} is gone`, err);
      if (isEngineUnreachable(err)) throw new EngineUnreachableError(`the engine went away while ${name} ran`, err);
      throw new RunnerError(`waiting for ${name} failed`, err);
    }
    const state = await this.status(step);
    if (state.state !== 'exited') throw new RunnerError(`container ${name} is ${state.state} after wait`);
    return state.exit;
  }

  followLogs(step: StepRef, onLines: (lines: LogLine[]) => void | Promise<void>, opts: { skipLines: number; signal?: AbortSignal }): Promise<void> {
    return this.output.follow(this.name(step), () => this.status(step), onLines, opts);
  }

  stdout(step: StepRef, maxBytes: number): Promise<{ data: Buffer; truncated: boolean }> {
    return this.output.stdout(this.name(step), maxBytes);
  }

  async cancel(step: StepRef, graceSeconds: number): Promise<'stopped' | 'not-running'> {
    try {
      // The engine answers a stop once the grace period is over: the bound counts from then.
      await this.docker.getContainer(this.name(step)).stop({ t: graceSeconds, ...this.bounded(graceSeconds) });
      return 'stopped';
    } catch (err) {
      // 304: not running (if the engine is stopping, it stopped it); 404: never created or already removed.
      if (statusOf(err) === 304 && !(await acceptsConnections(this.docker))) {
        throw new EngineUnreachableError(`the engine is stopping: it stopped ${this.name(step)} before Draftsman did`, err);
      }
      if (statusOf(err) === 304 || isGone(err)) return 'not-running';
      if (isEngineUnreachable(err)) throw new EngineUnreachableError(`the engine did not answer a stop of ${this.name(step)}`, err);
      throw new RunnerError(`stopping ${this.name(step)} failed`, err);
    }
  }

  async remove(step: StepRef): Promise<void> {
    await this.removeContainer(this.name(step));
  }

  async removeJob(jobId: string): Promise<void> {
    // The job's one volume has a known name; only its containers need listing (a lost worker's are unknown here).
    let containers: Docker.ContainerInfo[];
    try {
      containers = await this.docker.listContainers({ all: true, filters: jobFilter(jobId, this.policy.deployment), ...this.bounded() });
    } catch (err) {
      throw new RunnerError(`listing containers of job ${jobId} failed`, err);
    }
    // Steps first: they share the holder's network namespace.
    await Promise.all(containers.filter((c) => !isHolder(c)).map((c) => this.removeContainer(nameOf(c))));
    await Promise.all(containers.filter(isHolder).map((c) => this.removeContainer(nameOf(c))));
    await this.removeEgressDir(jobId);
    // The workspace, and the job's copies of its caches when it has any.
    let volumes: string[];
    try {
      const listed = await this.docker.listVolumes({ filters: jobFilter(jobId, this.policy.deployment), ...this.bounded() });
      volumes = [...new Set([volumeName(jobId, this.policy.deployment), ...(listed.Volumes ?? []).map((v) => v.Name)])];
    } catch (err) {
      throw new RunnerError(`listing volumes of job ${jobId} failed`, err);
    }
    for (const name of volumes) {
      try {
        await this.docker.getVolume(name).remove(this.bounded());
      } catch (err) {
        if (!isGone(err)) throw new RunnerError(`removing volume ${name} of job ${jobId} failed`, err);
      }
    }
  }

  /** The job's socket directory: its removal tells the egress service to stop listening for the job. */
  private async removeEgressDir(jobId: string): Promise<void> {
    const network = this.policy.network;
    if (network.mode !== 'proxy') return;
    await removeJobFolder(network.socketDir, jobId, this.policy.deployment);
  }

  async workspaceBytes(jobId: string): Promise<number> {
    const name = measureName(jobId, this.policy.deployment);
    // One left by a measurement that a worker crash interrupted.
    await this.removeContainer(name);
    try {
      const container = await this.docker.createContainer({ ...measureOptions(jobId, this.policy), ...this.bounded() });
      await container.start(this.bounded());
      // du over a large tree takes a while: bounded like a stop past its grace.
      const { StatusCode } = (await container.wait(this.bounded(60))) as { StatusCode: number };
      const raw = (await container.logs({ stdout: true, stderr: true, follow: false, ...this.bounded() })) as unknown as Buffer;
      const output = Buffer.concat(demuxDockerStream(raw).map((c) => c.data)).toString();
      const bytes = parseDu(output);
      // du says what it could not read (exit 1) and still counts the rest.
      if (bytes === null) throw new RunnerError(`measuring the workspace of job ${jobId} failed (exit ${StatusCode}): ${output.slice(0, 200)}`);
      return bytes;
    } catch (err) {
      throw err instanceof RunnerError ? err : new RunnerError(`measuring the workspace of job ${jobId} failed`, err);
    } finally {
      await this.removeContainer(name).catch(() => undefined);
    }
  }

  async listJobResources(jobId: string): Promise<JobResources> {
    const filters = jobFilter(jobId, this.policy.deployment);
    try {
      const [containers, volumes] = await Promise.all([
        this.docker.listContainers({ all: true, filters, ...this.bounded() }),
        this.docker.listVolumes({ filters, ...this.bounded() }),
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
    const filters = JSON.stringify({ label: [`${LABEL_MANAGED}=true`, `${LABEL_DEPLOYMENT}=${this.policy.deployment}`] });
    try {
      const [containers, volumes] = await Promise.all([
        this.docker.listContainers({ all: true, filters, ...this.bounded() }),
        this.docker.listVolumes({ filters, ...this.bounded() }),
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
      await this.docker.getContainer(resource.name).stop({ t: graceSeconds, ...this.bounded(graceSeconds) });
    } catch (err) {
      if (statusOf(err) === 304 || isGone(err)) return;
      throw new RunnerError(`stopping ${resource.name} failed`, err);
    }
  }

  async removeManaged(resource: ManagedResource): Promise<void> {
    if (resource.type === 'step') return this.removeContainer(resource.name);
    if (resource.type === 'holder') {
      await this.removeContainer(resource.name);
      return this.removeEgressDir(resource.jobId);
    }
    try {
      await this.docker.getVolume(resource.name).remove(this.bounded());
    } catch (err) {
      if (isGone(err)) return;
      throw new RunnerError(`removing volume ${resource.name} failed`, err);
    }
  }

  /** Only creates the step's container (as a worker that dies before starting it would leave it). */
  async createOnly(step: StepRequest): Promise<void> {
    await this.docker.createContainer(containerOptions(step, this.policy, new Date()));
  }

  /** A 404 on create names no object: the image is one candidate, a missing network or volume driver another. */
  private async imageExists(image: string): Promise<boolean> {
    try {
      await this.docker.getImage(image).inspect();
      return true;
    } catch (err) {
      if (isGone(err)) return false;
      throw new RunnerError(`inspecting image ${image} failed`, err);
    }
  }

  private async removeContainer(name: string): Promise<void> {
    try {
      await this.docker.getContainer(name).remove({ force: true, ...this.bounded() });
    } catch (err) {
      // 409: a removal of the same container is already in progress.
      if (isGone(err) || statusOf(err) === 409) return;
      throw new RunnerError(`removing container ${name} failed`, err);
    }
  }
}
