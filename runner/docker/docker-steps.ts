/** The Docker backend's step runner: each step one ephemeral container, re-attached by its name, on its job's workspace volume. */
import type Docker from 'dockerode';
import { pack } from 'tar-stream';
import { ContainerLostError, EngineUnreachableError, ImageNotFoundError, RunnerError } from '../../common/errors';
import { LABEL_DEPLOYMENT } from '../../common/names';
import type { LogLine, StepExit, StepRef, StepRequest, StepRunner, StepState, StepUsage } from '../runner';
import { readUsage, removeCgroup, stepCgroup } from './cgroups';
import { readJobCa } from './job-folder';
import { containerOptions, exitTimes, holderName, jobLabels, volumeName, withJobTrust, WORKSPACE_PATH } from './convert';
import type { ReadyHolders } from './ready-holders';
import { type DockerEngine, isGone, isHolder, jobFilter, nameOf, parseTime, statusOf } from './engine';
import { acceptsConnections, waitNotRunning } from './engine-requests';
import { isEngineUnreachable, isWedged } from './engine-errors';
import { StepOutput } from './step-output';

/** Exited steps whose end is remembered; the oldest are forgotten first. */
const EXITED_KEPT = 512;

export class DockerStepRunner implements StepRunner {
  private readonly output: StepOutput;
  /**
   * An exited container's end does not change, and a step asks for it twice (its wait,
   * and its log follow's last read), each an inspect and a ping on a new connection:
   * the second is answered from here. Forgotten when the container is removed.
   */
  private readonly exited = new Map<string, StepState>();

  constructor(
    private readonly e: DockerEngine,
    /** Holders made ahead of their jobs, when the worker keeps some ready. */
    private readonly readyHolders?: ReadyHolders,
  ) {
    this.output = new StepOutput(e.docker, () => e.bounded());
  }

  async start(request: StepRequest): Promise<void> {
    const step = await this.trusting(request);
    const name = this.e.name(step);
    let container: Docker.Container;
    try {
      container = await this.e.docker.createContainer({ ...containerOptions(step, this.e.policy, new Date()), ...this.e.bounded() });
    } catch (err) {
      if (statusOf(err) === 409) {
        // A container of this step exists: an earlier attempt created it. Re-attach.
        container = this.e.docker.getContainer(name);
        const info = await container.inspect(this.e.bounded());
        if (info.Config.Labels?.[LABEL_DEPLOYMENT] !== this.e.policy.deployment) {
          throw new RunnerError(`container ${name} exists but belongs to another deployment; refusing to attach to it`);
        }
        if (info.State.Status !== 'created') return;
      } else if (isGone(err) && !(await this.e.imageExists(step.image))) {
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

  /** A step that holds a credential trusts its job's CA (behind the proxy only: nothing else terminates TLS with it). */
  private async trusting(step: StepRequest): Promise<StepRequest> {
    const network = this.e.policy.network;
    if (!step.trustJobCa || network.mode !== 'proxy') return step;
    return withJobTrust(step, await readJobCa(network.socketDir, step.jobId, this.e.policy.deployment));
  }

  /** Files into the created container's workspace volume (the engine writes to a volume even under a read-only root). */
  private async putFiles(container: Docker.Container, name: string, files: { name: string; data: Buffer }[]): Promise<void> {
    const tar = pack();
    const [uid, gid] = this.e.policy.user.split(':').map(Number);
    for (const f of files) {
      if (!/^[A-Za-z0-9._-]+$/.test(f.name) || f.name === '.' || f.name === '..')
        throw new RunnerError(`a step's file must be a plain name, not ${JSON.stringify(f.name)}`);
      tar.entry({ name: f.name, mode: 0o600, uid, gid }, f.data);
    }
    tar.finalize();
    try {
      await container.putArchive(tar as unknown as NodeJS.ReadableStream, { path: WORKSPACE_PATH, ...this.e.bounded(60) });
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
      await container.start(this.e.bounded());
    } catch (err) {
      if (!(statusOf(err) === 409 && /cannot join network of a non running container/.test(String((err as Error).message)))) throw err;
      await this.e.ensureHolder(jobId);
      await container.start(this.e.bounded());
    }
  }

  async status(step: StepRef): Promise<StepState> {
    const name = this.e.name(step);
    const known = this.exited.get(name);
    if (known) return known;
    const state = await this.inspectState(step);
    if (state.state === 'exited') {
      this.exited.set(name, state);
      if (this.exited.size > EXITED_KEPT) this.exited.delete(this.exited.keys().next().value!);
    }
    return state;
  }

  private async inspectState(step: StepRef): Promise<StepState> {
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.e.docker.getContainer(this.e.name(step)).inspect(this.e.bounded());
    } catch (err) {
      if (isGone(err)) return { state: 'missing' };
      if (isEngineUnreachable(err)) throw new EngineUnreachableError(`the engine did not answer an inspect of ${this.e.name(step)}`, err);
      throw new RunnerError(`inspecting ${this.e.name(step)} failed`, err);
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
    if (!(await acceptsConnections(this.e.docker))) {
      throw new EngineUnreachableError(`the engine is stopping: it stopped ${this.e.name(step)} (exit ${s.ExitCode})`);
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
    const name = this.e.name(step);
    try {
      await waitNotRunning(this.e.docker, name, signal);
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
    return this.output.follow(this.e.name(step), () => this.status(step), onLines, opts);
  }

  stdout(step: StepRef, maxBytes: number): Promise<{ data: Buffer; truncated: boolean }> {
    return this.output.stdout(this.e.name(step), maxBytes);
  }

  async cancel(step: StepRef, graceSeconds: number): Promise<'stopped' | 'not-running'> {
    try {
      // The engine answers a stop once the grace period is over: the bound counts from then.
      await this.e.docker.getContainer(this.e.name(step)).stop({ t: graceSeconds, ...this.e.bounded(graceSeconds) });
      return 'stopped';
    } catch (err) {
      // 304: not running (if the engine is stopping, it stopped it); 404: never created or already removed.
      if (statusOf(err) === 304 && !(await acceptsConnections(this.e.docker))) {
        throw new EngineUnreachableError(`the engine is stopping: it stopped ${this.e.name(step)} before Draftsman did`, err);
      }
      if (statusOf(err) === 304 || isGone(err)) return 'not-running';
      if (isEngineUnreachable(err)) throw new EngineUnreachableError(`the engine did not answer a stop of ${this.e.name(step)}`, err);
      throw new RunnerError(`stopping ${this.e.name(step)} failed`, err);
    }
  }

  async pause(step: StepRef): Promise<void> {
    await this.freeze(step, 'pause');
  }

  async unpause(step: StepRef): Promise<void> {
    await this.freeze(step, 'unpause');
  }

  private async freeze(step: StepRef, how: 'pause' | 'unpause'): Promise<void> {
    const container = this.e.docker.getContainer(this.e.name(step));
    try {
      await (how === 'pause' ? container.pause(this.e.bounded()) : container.unpause(this.e.bounded()));
    } catch (err) {
      // 409: frozen already, not frozen, or not running: nothing to do.
      if (statusOf(err) === 409) return;
      if (isEngineUnreachable(err)) throw new EngineUnreachableError(`the engine did not answer a ${how} of ${this.e.name(step)}`, err);
      throw new RunnerError(`${how === 'pause' ? 'freezing' : 'unfreezing'} ${this.e.name(step)} failed`, err);
    }
  }

  async usage(step: StepRef): Promise<StepUsage | null> {
    const cgroup = this.e.policy.cgroup;
    return cgroup ? readUsage(cgroup.layout, stepCgroup(cgroup.parent, this.e.name(step))) : null;
  }

  async remove(step: StepRef): Promise<void> {
    this.exited.delete(this.e.name(step));
    await this.e.removeContainer(this.e.name(step));
    await this.removeCgroups([this.e.name(step)]);
  }

  /** The step cgroups of removed containers (empty once their container is gone). */
  private async removeCgroups(names: string[]): Promise<void> {
    const cgroup = this.e.policy.cgroup;
    if (!cgroup) return;
    await Promise.all(names.map((n) => removeCgroup(cgroup.layout, stepCgroup(cgroup.parent, n))));
  }

  /** Only creates the step's container (as a worker that dies before starting it would leave it). */
  async createOnly(step: StepRequest): Promise<void> {
    await this.e.docker.createContainer(containerOptions(step, this.e.policy, new Date()));
  }
  async prepareWorkspace(jobId: string): Promise<void> {
    // The volume and the holder are independent: made side by side, so the holder adds
    // little to a job's pickup.
    await Promise.all([this.createVolume(jobId), this.holder(jobId)]);
  }

  private async holder(jobId: string): Promise<void> {
    const taken = (await this.readyHolders?.take(jobId)) ?? false;
    await this.e.ensureHolder(jobId, { taken });
  }

  private async createVolume(jobId: string): Promise<void> {
    try {
      // Creating an existing volume with the same name is a no-op on the engine.
      await this.e.docker.createVolume({
        Name: volumeName(jobId, this.e.policy.deployment),
        Labels: jobLabels(jobId, this.e.policy.deployment, this.e.policy.host),
        ...this.e.bounded(),
      });
    } catch (err) {
      throw new RunnerError(`creating workspace volume for job ${jobId} failed`, err);
    }
  }

  async removeJob(jobId: string): Promise<void> {
    // The job's one volume has a known name; only its containers need listing (a lost worker's are unknown here).
    let containers: Docker.ContainerInfo[];
    try {
      containers = await this.e.docker.listContainers({ all: true, filters: jobFilter(jobId, this.e.policy.deployment), ...this.e.bounded() });
    } catch (err) {
      throw new RunnerError(`listing containers of job ${jobId} failed`, err);
    }
    for (const c of containers) this.exited.delete(nameOf(c));
    // Steps first: they share the holder's network namespace. A holder that was made
    // ready before its job has no job label, so it is removed by its name.
    await Promise.all(containers.filter((c) => !isHolder(c)).map((c) => this.e.removeContainer(nameOf(c))));
    await this.removeCgroups(containers.filter((c) => !isHolder(c)).map(nameOf));
    const holders = containers.filter(isHolder).map(nameOf);
    if (this.e.policy.network.mode === 'proxy') holders.push(holderName(jobId, this.e.policy.deployment));
    await Promise.all([...new Set(holders)].map((name) => this.e.removeContainer(name)));
    await this.e.removeEgressDir(jobId);
    // The workspace, and the job's copies of its caches when it has any.
    let volumes: string[];
    try {
      const listed = await this.e.docker.listVolumes({ filters: jobFilter(jobId, this.e.policy.deployment), ...this.e.bounded() });
      volumes = [...new Set([volumeName(jobId, this.e.policy.deployment), ...(listed.Volumes ?? []).map((v) => v.Name)])];
    } catch (err) {
      throw new RunnerError(`listing volumes of job ${jobId} failed`, err);
    }
    for (const name of volumes) {
      try {
        await this.e.docker.getVolume(name).remove(this.e.bounded());
      } catch (err) {
        if (!isGone(err)) throw new RunnerError(`removing volume ${name} of job ${jobId} failed`, err);
      }
    }
  }
}
