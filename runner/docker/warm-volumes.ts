/**
 * DockerRunner's warm-start operations: copying volumes (a cache restored or saved, a
 * workspace kept or restored), hashing a workspace's files, reading it for a scan, and
 * the kept volumes of the host. Each copy runs in a short-lived helper container; a
 * restore from a kept volume layers the job's volume on it instead where the engine can
 * (overlayfs), which copies nothing.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import Docker from 'dockerode';
import { extract } from 'tar-stream';
import { RunnerError, WorkspaceGitError } from '../../common/errors';
import { HASH_FILES_SCRIPT } from '../../common/trusted-git';
import { LABEL_DEPLOYMENT, LABEL_HOST, LABEL_KEPT, LABEL_LOWER, LABEL_ROLE } from '../../common/names';
import type { JobVolumeRef, VolumeRef } from '../runner';
import { type ContainerPolicy, jobLabels, parseDu, WORKSPACE_PATH } from './convert';
import { demuxDockerStream } from './demux';
import {
  COPY_CAPS,
  COPY_SCRIPT,
  copyMounts,
  helperOptions,
  keptVolumeName,
  layerDriverOpts,
  layerVolumes,
  ownerOptions,
  refJob,
  refLabels,
  refVolume,
  workspaceMount,
} from './volumes';

const statusOf = (err: unknown): number | undefined => (err as { statusCode?: number } | null)?.statusCode;

export class WarmVolumes {
  constructor(
    private readonly docker: Docker,
    private readonly policy: () => ContainerPolicy,
    private readonly bounded: (afterSeconds?: number) => { abortSignal: AbortSignal },
    private readonly removeContainer: (name: string) => Promise<void>,
  ) {}

  private helperName(jobId: string | null, what: string): string {
    return `draftsman-${this.policy().deployment}-${jobId ? `${jobId}-` : ''}${what}-${randomBytes(4).toString('hex')}`;
  }

  /** Runs a helper to its end; its output (stdout and stderr) and exit code. Removed whatever happens. */
  private async runHelper(options: Docker.ContainerCreateOptions, seconds: number): Promise<{ code: number; output: string }> {
    try {
      const container = await this.docker.createContainer({ ...options, ...this.bounded() });
      await container.start(this.bounded());
      const { StatusCode } = (await container.wait(this.bounded(seconds))) as { StatusCode: number };
      const raw = (await container.logs({ stdout: true, stderr: true, follow: false, ...this.bounded() })) as unknown as Buffer;
      return { code: StatusCode, output: Buffer.concat(demuxDockerStream(raw).map((c) => c.data)).toString() };
    } finally {
      await this.removeContainer(options.name!).catch(() => undefined);
    }
  }

  /** Asked once: whether the engine mounts an overlay volume over its volumes' directories, owned by the step user. */
  private layering?: Promise<boolean>;

  private async removeVolume(name: string): Promise<void> {
    try {
      await this.docker.getVolume(name).remove(this.bounded());
    } catch (err) {
      if (statusOf(err) !== 404) throw new RunnerError(`removing volume ${name} failed`, err);
    }
  }

  private async mountpoint(name: string): Promise<string> {
    try {
      return ((await this.docker.getVolume(name).inspect(this.bounded())) as { Mountpoint: string }).Mountpoint;
    } catch (err) {
      throw new RunnerError(`inspecting volume ${name} failed`, err);
    }
  }

  /** Gives a fresh volume's root the step user's owner and mode: a container created with it, never started. */
  private async ownRoot(name: string, labels: Record<string, string>, jobId: string | null): Promise<void> {
    const options = ownerOptions(this.helperName(jobId, 'own'), name, { ...labels, [LABEL_ROLE]: 'helper' }, this.policy());
    try {
      await this.docker.createContainer({ ...options, ...this.bounded() });
    } catch (err) {
      throw new RunnerError(`preparing volume ${name} for the step user failed`, err);
    } finally {
      await this.removeContainer(options.name!).catch(() => undefined);
    }
  }

  /**
   * `name` made anew as an overlay on the volume `lower`: its upper and work volumes are
   * made (anew: a retry's may hold writes) with `labels`, the upper one owned like a
   * workspace. What the job writes lands in its upper volume; `lower` is never written.
   */
  private async makeLayered(name: string, lower: { name: string; kept: string }, labels: Record<string, string>, jobId: string | null): Promise<void> {
    const parts = layerVolumes(name);
    await this.removeVolume(name);
    await Promise.all([parts.upper, parts.work].map((n) => this.removeVolume(n)));
    try {
      await Promise.all(
        [parts.upper, parts.work].map((n) => this.docker.createVolume({ Name: n, Labels: { ...labels, [LABEL_ROLE]: 'layer' }, ...this.bounded() })),
      );
    } catch (err) {
      throw new RunnerError(`creating the layers of volume ${name} failed`, err);
    }
    const [lowerDir, upper, work] = await Promise.all([
      this.mountpoint(lower.name),
      this.mountpoint(parts.upper),
      this.mountpoint(parts.work),
      this.ownRoot(parts.upper, labels, jobId),
    ]);
    try {
      await this.docker.createVolume({
        Name: name,
        Driver: 'local',
        DriverOpts: layerDriverOpts({ lower: lowerDir, upper, work }),
        Labels: { ...labels, [LABEL_LOWER]: lower.kept },
        ...this.bounded(),
      });
    } catch (err) {
      throw new RunnerError(`creating volume ${name} layered on ${lower.name} failed`, err);
    }
  }

  /**
   * Whether layering works on this engine: an overlay needs its data root on a file
   * system overlayfs takes as upper layer (not itself an overlay, as in a nested engine),
   * and the tool image's /workspace must belong to the step user (its owner is what a
   * fresh volume's root gets). A layer over a small kept-like volume is written and its
   * root's owner read by a helper, then all is removed. Where either fails, a job's
   * volume is made by a copy that owns it to the step user.
   */
  private layers(): Promise<boolean> {
    this.layering ??= (async () => {
      const policy = this.policy();
      const base = this.helperName(null, 'layer-probe');
      const labels = { [LABEL_DEPLOYMENT]: policy.deployment, [LABEL_ROLE]: 'helper' };
      const names = [base, `${base}-lower`, ...Object.values(layerVolumes(base))];
      try {
        await this.docker.createVolume({ Name: `${base}-lower`, Labels: labels, ...this.bounded() });
        await this.makeLayered(base, { name: `${base}-lower`, kept: 'probe' }, labels, null);
        const mounts = [{ Type: 'volume' as const, Source: base, Target: '/to', ReadOnly: false }];
        const probe = 'touch /to/probe && test -f /to/probe && [ "$(stat -c %u:%g /to)" = "$DRAFTSMAN_OWNER" ]';
        const { code } = await this.runHelper(
          helperOptions(`${base}-run`, ['sh', '-c', probe], mounts, labels, policy, { caps: COPY_CAPS, env: { DRAFTSMAN_OWNER: policy.user } }),
          60,
        );
        return code === 0;
      } catch {
        return false;
      } finally {
        for (const n of names) await this.removeVolume(n).catch(() => undefined);
      }
    })();
    return this.layering;
  }

  private async createVolume(ref: VolumeRef): Promise<void> {
    const policy = this.policy();
    try {
      await this.docker.createVolume({ Name: refVolume(ref, policy.deployment), Labels: refLabels(ref, policy), ...this.bounded() });
    } catch (err) {
      throw new RunnerError(`creating volume ${refVolume(ref, policy.deployment)} failed`, err);
    }
  }

  async imageId(image: string): Promise<string> {
    try {
      const info = await this.docker.getImage(image).inspect();
      return info.Id;
    } catch (err) {
      throw new RunnerError(`inspecting image ${image} failed`, err);
    }
  }

  async hashFiles(jobId: string, commit: string, pathspecs: string[]): Promise<string> {
    const policy = this.policy();
    const name = this.helperName(jobId, 'hash');
    // It runs git on what a step wrote (a fork's workspace): as the step user, with no capability.
    const options = helperOptions(
      name,
      ['sh', '-c', HASH_FILES_SCRIPT, 'hash-files', ...pathspecs],
      [workspaceMount(jobId, policy.deployment)],
      { ...jobLabels(jobId, policy.deployment, policy.host), [LABEL_ROLE]: 'helper' },
      policy,
      {
        caps: [],
        user: policy.user,
        env: { DRAFTSMAN_COMMIT: commit },
        tmpMb: 64,
      },
    );
    const { code, output } = await this.runHelper(options, 60).catch((err: unknown) => {
      throw new RunnerError(`hashing files of job ${jobId} failed`, err);
    });
    const hash = output.trim();
    // The helper ran to its end and git said no: it will say so on every try (a kill by the engine is not that).
    if (code !== 0 && code !== 137 && code !== 143)
      throw new WorkspaceGitError(`hashing files of job ${jobId} failed (exit ${code}): ${output.trim().slice(0, 300)}`);
    // Stopped by the engine, its output is no answer; not quoted (what git printed there is not masked here).
    if (code !== 0 || !/^([0-9a-f]{64})?$/.test(hash))
      throw new RunnerError(`hashing files of job ${jobId} failed (exit ${code}, ${output.length} bytes of output)`);
    return hash;
  }

  async copyVolume(to: VolumeRef, from: VolumeRef | null): Promise<number> {
    const policy = this.policy();
    const jobId = refJob(to) ?? (from ? refJob(from) : null);
    if (!jobId) throw new RunnerError('a copy is made for a job: from or to its workspace or caches');
    // A job's volume starts empty or from a kept one without a copy where the engine can.
    const lower = from && 'kept' in from ? from.kept : null;
    if (lower !== null) await this.keptPresent(lower);
    if (!('kept' in to) && (from === null || lower !== null) && (await this.layers())) {
      const name = refVolume(to, policy.deployment);
      if (lower === null) {
        await this.removeVolume(name);
        await this.createVolume(to);
        await this.ownRoot(name, refLabels(to, policy), jobId);
        return 0;
      }
      await this.makeLayered(name, { name: keptVolumeName(lower, policy.deployment), kept: lower }, refLabels(to, policy), jobId);
      return 0;
    }
    await this.createVolume(to);
    // A kept volume keeps the owners of what it copied; a job's workspace and caches are the step user's.
    const owner = 'kept' in to ? '' : policy.user;
    const options = helperOptions(
      this.helperName(jobId, 'copy'),
      ['sh', '-c', COPY_SCRIPT],
      copyMounts(to, from, policy.deployment),
      { ...jobLabels(jobId, policy.deployment, policy.host), [LABEL_ROLE]: 'helper' },
      policy,
      {
        caps: COPY_CAPS,
        env: { DRAFTSMAN_OWNER: owner },
      },
    );
    const what = `copying ${from ? refVolume(from, policy.deployment) : 'nothing'} to ${refVolume(to, policy.deployment)}`;
    // A large tree takes a while: bounded like a long stop.
    const { code, output } = await this.runHelper(options, 600).catch((err: unknown) => {
      throw new RunnerError(`${what} failed`, err);
    });
    const bytes = parseDu(output);
    if (code !== 0 || bytes === null) throw new RunnerError(`${what} failed (exit ${code}): ${output.slice(0, 300)}`);
    // Removed between the look above and the helper's mount, the engine made an empty one to mount.
    if (lower !== null) await this.keptPresent(lower);
    return bytes;
  }

  /**
   * Fails unless the kept volume is there as Draftsman made it. A mount names a volume
   * that the engine creates, empty and unlabelled, when it is missing: such a stand-in is
   * removed (no sweep would find it) and the copy fails rather than restore nothing.
   */
  private async keptPresent(id: string): Promise<void> {
    const name = keptVolumeName(id, this.policy().deployment);
    let labels: Record<string, string> | null;
    try {
      labels = ((await this.docker.getVolume(name).inspect(this.bounded())) as { Labels: Record<string, string> | null }).Labels;
    } catch (err) {
      throw new RunnerError(statusOf(err) === 404 ? `kept volume ${name} is gone` : `inspecting kept volume ${name} failed`, err);
    }
    if (labels?.[LABEL_KEPT] === id) return;
    await this.removeVolume(name).catch(() => undefined);
    throw new RunnerError(`kept volume ${name} is gone (removed while it was being copied)`);
  }

  async removeKept(id: string): Promise<boolean> {
    const policy = this.policy();
    const name = keptVolumeName(id, policy.deployment);
    // The engine knows nothing of a layer's lower directory: while a job's volume is
    // layered on this one, removing it would pull the files from under that job.
    try {
      const filters = JSON.stringify({ label: [`${LABEL_DEPLOYMENT}=${policy.deployment}`, `${LABEL_LOWER}=${id}`] });
      const { Volumes } = await this.docker.listVolumes({ filters, ...this.bounded() });
      if ((Volumes ?? []).length > 0) return false;
    } catch (err) {
      throw new RunnerError(`listing the volumes layered on kept volume ${name} failed`, err);
    }
    try {
      await this.docker.getVolume(name).remove(this.bounded());
    } catch (err) {
      if (statusOf(err) === 404) return true;
      // In use by a container (a copy from it running): left for later.
      if (statusOf(err) === 409) return false;
      throw new RunnerError(`removing kept volume ${name} failed`, err);
    }
    return true;
  }

  async listKept(): Promise<{ id: string; createdAt: Date }[]> {
    const policy = this.policy();
    // This host's own (two hosts' workers may share an engine in a test, never their records).
    const filters = JSON.stringify({
      label: [`${LABEL_DEPLOYMENT}=${policy.deployment}`, `${LABEL_ROLE}=kept`, ...(policy.host ? [`${LABEL_HOST}=${policy.host}`] : [])],
    });
    try {
      const { Volumes } = await this.docker.listVolumes({ filters, ...this.bounded() });
      return (Volumes ?? [])
        .filter((v) => v.Labels?.[LABEL_KEPT])
        .map((v) => ({ id: v.Labels![LABEL_KEPT]!, createdAt: new Date((v as { CreatedAt?: string }).CreatedAt ?? 0) }));
    } catch (err) {
      throw new RunnerError('listing kept volumes failed', err);
    }
  }

  /**
   * The files of a job's workspace or cache copy, through the engine's archive of a
   * container that mounts it read-only (created, never started: nothing runs while it is read).
   */
  async readVolume(ref: JobVolumeRef, onFile: (path: string, data: Buffer) => void, onName?: (path: string, link?: string) => void): Promise<void> {
    const policy = this.policy();
    const jobId = refJob(ref)!;
    const mount = { Type: 'volume' as const, Source: refVolume(ref, policy.deployment), Target: WORKSPACE_PATH, ReadOnly: true };
    const options = helperOptions(
      this.helperName(jobId, 'read'),
      ['true'],
      [mount],
      { ...jobLabels(jobId, policy.deployment, policy.host), [LABEL_ROLE]: 'helper' },
      policy,
      { caps: [] },
    );
    try {
      const container = await this.docker.createContainer({ ...options, ...this.bounded() });
      const archive = (await container.getArchive({ path: WORKSPACE_PATH })) as unknown as Readable;
      await new Promise<void>((resolve, reject) => {
        const tar = extract();
        tar.on('entry', (header, stream, next) => {
          if (header.type !== 'file') {
            onName?.(header.name.replace(/^workspace\/?/, ''), header.type === 'symlink' || header.type === 'link' ? (header.linkname ?? '') : undefined);
            stream.resume();
            stream.on('end', next);
            return;
          }
          const chunks: Buffer[] = [];
          stream.on('data', (c: unknown) => chunks.push(c as Buffer));
          stream.on('end', () => {
            onFile(header.name.replace(/^workspace\//, ''), Buffer.concat(chunks));
            next();
          });
          stream.on('error', reject);
        });
        tar.on('finish', resolve);
        tar.on('error', reject);
        archive.on('error', reject);
        archive.pipe(tar);
      });
    } catch (err) {
      throw new RunnerError(`reading ${'cache' in ref ? `the cache ${ref.cache.name}` : 'the workspace'} of job ${jobId} failed`, err);
    } finally {
      await this.removeContainer(options.name!).catch(() => undefined);
    }
  }
}
