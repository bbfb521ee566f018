/** The Docker backend's host facts: the engine's identity, the runtime it has, its cgroups, the images it holds. */
import { RunnerError } from '../../common/errors';
import type { HostFacts } from '../runner';
import { deploymentCgroup, detectLayout } from './cgroups';
import { gvisorEgressProblem } from './convert';
import { type DockerEngine, isGvisor } from './engine';
import type { WarmVolumes } from './warm-volumes';

export class DockerHostFacts implements HostFacts {
  constructor(
    private readonly e: DockerEngine,
    private readonly warm: WarmVolumes,
  ) {}

  imageId(image: string): Promise<string> {
    return this.warm.imageId(image);
  }

  async hostKey(): Promise<string> {
    const ask = this.e.docker.info as (opts: { abortSignal: AbortSignal }) => Promise<{ ID?: string }>;
    const info = await ask.call(this.e.docker, this.e.bounded()).catch((err: unknown) => {
      throw new RunnerError('asking the engine for its id failed', err);
    });
    const modem = this.e.docker.modem as { socketPath?: string; host?: string; port?: number | string };
    return `${info.ID ?? 'unknown'}@${modem.socketPath ?? `${modem.host}:${modem.port}`}`;
  }

  identifyHost(id: string): void {
    this.e.policy = { ...this.e.policy, host: id };
  }

  async ready(): Promise<void> {
    const runtime = this.e.policy.runtime;
    if (!runtime && !this.e.policy.cgroupRoot) return;
    type Registered = { path?: string; runtimeArgs?: string[] };
    let info: { Runtimes?: Record<string, Registered>; CgroupDriver?: string };
    try {
      // (dockerode's types leave out the options that its info takes.)
      const ask = this.e.docker.info as (opts: { abortSignal: AbortSignal }) => Promise<typeof info>;
      info = await ask.call(this.e.docker, this.e.bounded());
    } catch (err) {
      throw new RunnerError('asking the engine for its runtimes failed', err);
    }
    await this.accounting(info.CgroupDriver);
    if (!runtime) return;
    const known = info.Runtimes ?? {};
    const entry = known[runtime];
    if (!entry) {
      throw new RunnerError(
        `DRAFTSMAN_STEP_RUNTIME=${runtime}, but the Docker engine has no runtime of that name (it has: ${Object.keys(known).join(', ') || 'none'}); ` +
          'register it in the engine\'s daemon.json ("runtimes") and restart the engine (docs/deployment.md, "gVisor")',
      );
    }
    const network = this.e.policy.network;
    if (network.mode !== 'proxy' || !isGvisor(runtime, entry)) return;
    // gVisor has a network stack of its own: a step joining the holder's namespace
    // gets no route to it, so each step runs its own forwarder to the job's socket.
    const problem = gvisorEgressProblem(entry.runtimeArgs ?? [], network.socketVolume);
    if (problem) throw new RunnerError(`DRAFTSMAN_STEP_RUNTIME=${runtime}: ${problem}`);
    this.e.policy = { ...this.e.policy, network: { ...network, forwarder: 'in-step' } };
  }

  /**
   * Steps run under cgroups of their own when the engine names cgroups by path (its
   * cgroupfs driver) and the hierarchy can be read here; otherwise they have no usage
   * figures, which the worker's log says once.
   */
  private async accounting(driver: string | undefined): Promise<void> {
    const root = this.e.policy.cgroupRoot;
    if (!root) return;
    const layout = driver === 'cgroupfs' ? await detectLayout(root) : null;
    if (!layout) {
      this.e.policy = { ...this.e.policy, cgroup: undefined };
      this.noAccounting =
        driver === 'cgroupfs'
          ? `no cgroup accounting is readable under ${root} (DRAFTSMAN_CGROUP_ROOT)`
          : `the engine's cgroup driver is ${driver ?? 'unknown'}, not cgroupfs`;
      return;
    }
    this.e.policy = { ...this.e.policy, cgroup: { layout, parent: deploymentCgroup(this.e.policy.deployment) } };
  }

  private noAccounting: string | null = null;

  accountingProblem(): string | null {
    return this.noAccounting;
  }
}
