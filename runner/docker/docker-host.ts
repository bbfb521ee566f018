/** The Docker backend's host facts: the engine's identity, the runtime it has, the images it holds. */
import { RunnerError } from '../../common/errors';
import type { HostFacts } from '../runner';
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
    if (!runtime) return;
    type Registered = { path?: string; runtimeArgs?: string[] };
    let info: { Runtimes?: Record<string, Registered> };
    try {
      // (dockerode's types leave out the options that its info takes.)
      const ask = this.e.docker.info as (opts: { abortSignal: AbortSignal }) => Promise<{ Runtimes?: Record<string, Registered> }>;
      info = await ask.call(this.e.docker, this.e.bounded());
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
    const network = this.e.policy.network;
    if (network.mode !== 'proxy' || !isGvisor(runtime, entry)) return;
    // gVisor has a network stack of its own: a step joining the holder's namespace
    // gets no route to it, so each step runs its own forwarder to the job's socket.
    const problem = gvisorEgressProblem(entry.runtimeArgs ?? [], network.socketVolume);
    if (problem) throw new RunnerError(`DRAFTSMAN_STEP_RUNTIME=${runtime}: ${problem}`);
    this.e.policy = { ...this.e.policy, network: { ...network, forwarder: 'in-step' } };
  }
}
