/**
 * Ready network holders: a few holders made and started before any job asks, so that a
 * new job's first step does not wait for its holder to be created and started (about
 * 200 ms of a job's pickup on a 2-core host, measured with bench/trace.ts).
 *
 * Each is made for one job and given to one job: taking it renames its folder to the
 * job's folder (the holder's mount follows the folder) and the container to the job's
 * holder name, after which it is the job's holder and is removed with the job. A holder
 * never goes back to the pool. Taking one is a best effort: anything unexpected removes
 * it and the job makes its own holder as before.
 *
 * Bounded by `size`, refilled one at a time in the background, removed on stop; what a
 * worker killed before its stop left is removed by the next start on the same host.
 * Only with a forwarder in the holder and the socket folder on the engine's host (a
 * folder of a shared volume has no mount of its own to follow it).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type Docker from 'dockerode';
import { JOB_FILE, jobDir } from '../../common/egress-layout';
import { LABEL_DEPLOYMENT, LABEL_HOST, LABEL_READY } from '../../common/names';
import { holderName, readyHolderDir, readyHolderName, readyHolderOptions } from './convert';
import type { DockerEngine } from './engine';
import { statusOf } from './engine';

/**
 * How long after a take the pool refills: long enough that a holder's creation and start
 * (about 250 ms of the engine's time here) does not contend with the taking job's first
 * container (created and started within about 150 ms of the take), short enough that
 * jobs coming one after another do not find the pool empty (a second's delay did: every
 * third or fourth job then made its own holder).
 */
const REFILL_DELAY_MS = 150;

interface Ready {
  slot: string;
  name: string;
  dir: string;
}

export class ReadyHolders {
  private readonly ready: Ready[] = [];
  private size = 0;
  private filling: Promise<void> | null = null;
  private refillTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  private onError: (err: unknown) => void = () => undefined;

  constructor(private readonly e: DockerEngine) {}

  /** Whether this engine's policy can use ready holders at all. */
  get usable(): boolean {
    const n = this.e.policy.network;
    return n.mode === 'proxy' && n.forwarder !== 'in-step' && !n.socketVolume;
  }

  /** Removes what an earlier worker of this host left ready, then makes `size` ready (resolving once they are) and keeps them so. */
  async start(size: number, onError?: (err: unknown) => void): Promise<void> {
    if (!this.usable || size <= 0) return;
    this.size = size;
    if (onError) this.onError = onError;
    this.stopped = false;
    await this.removeLeftovers();
    // The first jobs of a worker that just started find their holders ready too.
    this.refill();
    await this.filling;
  }

  /** Stops refilling and removes the holders no job took. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.refillTimer) clearTimeout(this.refillTimer);
    this.refillTimer = null;
    await this.filling;
    const left = this.ready.splice(0);
    await Promise.all(left.map((r) => this.discard(r)));
  }

  /** How many are ready now. */
  get count(): number {
    return this.ready.length;
  }

  /**
   * Gives a ready holder to the job: true when the job's folder and holder are now that
   * holder's (running, or started again by the caller), false when there was none or it
   * could not be given (the caller makes the job's own).
   */
  async take(jobId: string): Promise<boolean> {
    const r = this.ready.shift();
    this.refillSoon();
    if (!r) return false;
    const network = this.e.policy.network;
    if (network.mode !== 'proxy') return false;
    const deployment = this.e.policy.deployment;
    try {
      await fs.writeFile(path.join(r.dir, JOB_FILE), JSON.stringify({ jobId, deployment }));
      // Fails when the job's folder exists (an earlier attempt made it): that attempt's holder stays the job's.
      await fs.rename(r.dir, jobDir(network.socketDir, jobId, deployment));
    } catch (err) {
      this.onError(err);
      await this.discard(r);
      return false;
    }
    const name = holderName(jobId, deployment);
    try {
      await this.rename(r.name, name);
    } catch (err) {
      if (statusOf(err) !== 409) {
        this.onError(err);
        // The folder is the job's now: its own holder, made by the caller, mounts it.
        await this.e.removeContainer(r.name).catch(this.onError);
        return false;
      }
      // A holder of this name with no folder of its own is left by an earlier attempt cut
      // short after its folder went; it mounts a folder nothing listens in.
      await this.e.removeContainer(name);
      await this.rename(r.name, name);
    }
    return true;
  }

  private rename(from: string, to: string): Promise<void> {
    return this.e.docker.getContainer(from).rename({ name: to, ...this.e.bounded() }) as Promise<void>;
  }

  private refillSoon(): void {
    if (this.refillTimer || this.stopped || this.size === 0) return;
    this.refillTimer = setTimeout(() => {
      this.refillTimer = null;
      this.refill();
    }, REFILL_DELAY_MS);
    this.refillTimer.unref();
  }

  /** Fills the pool to its size, one holder at a time, in the background. */
  private refill(): void {
    if (this.filling || this.stopped) return;
    this.filling = (async () => {
      while (!this.stopped && this.ready.length < this.size) {
        try {
          this.ready.push(await this.make());
        } catch (err) {
          // An engine that fails now fails the jobs' own holders too, which say why; the pool waits for the next take.
          this.onError(err);
          break;
        }
      }
    })().finally(() => (this.filling = null));
  }

  private async make(): Promise<Ready> {
    const network = this.e.policy.network;
    if (network.mode !== 'proxy') throw new Error('ready holders need the egress proxy');
    const slot = randomBytes(6).toString('hex');
    const r = { slot, name: readyHolderName(slot, this.e.policy.deployment), dir: readyHolderDir(network.socketDir, slot) };
    await fs.mkdir(network.socketDir, { recursive: true, mode: 0o755 });
    await fs.mkdir(r.dir, { mode: 0o755 });
    try {
      const c = await this.e.docker.createContainer({ ...readyHolderOptions(slot, { ...this.e.policy, network }), ...this.e.bounded() });
      await c.start(this.e.bounded());
    } catch (err) {
      await this.discard(r);
      throw err;
    }
    return r;
  }

  private async discard(r: Ready): Promise<void> {
    await this.e.removeContainer(r.name).catch(this.onError);
    await fs.rm(r.dir, { recursive: true, force: true }).catch(this.onError);
  }

  /** Ready holders (and their folders) of this deployment and host that no job took: an earlier worker's. */
  private async removeLeftovers(): Promise<void> {
    const network = this.e.policy.network;
    if (network.mode !== 'proxy') return;
    const { deployment, host } = this.e.policy;
    const labels = [`${LABEL_DEPLOYMENT}=${deployment}`, LABEL_READY, ...(host ? [`${LABEL_HOST}=${host}`] : [])];
    const listed = (await this.e.docker.listContainers({
      all: true,
      filters: JSON.stringify({ label: labels }),
      ...this.e.bounded(),
    })) as Docker.ContainerInfo[];
    // Taken ones carry a job holder's name now, and go with their job.
    const untaken = listed.filter(
      (c) => /^[0-9a-f]{12}$/.test(c.Labels[LABEL_READY] ?? '') && c.Names[0] === `/${readyHolderName(c.Labels[LABEL_READY]!, deployment)}`,
    );
    await Promise.all(
      untaken.map((c) =>
        this.discard({ slot: c.Labels[LABEL_READY]!, name: c.Names[0]!.slice(1), dir: readyHolderDir(network.socketDir, c.Labels[LABEL_READY]!) }),
      ),
    );
  }
}
