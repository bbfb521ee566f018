/**
 * DockerRunner's warm-start operations: copying volumes (a cache restored or saved, a
 * workspace kept or restored), hashing a workspace's files, reading it for a scan, and
 * the kept volumes of the host. Each copy runs in a short-lived helper container.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import Docker from 'dockerode';
import { extract } from 'tar-stream';
import { RunnerError } from '../../common/errors';
import { LABEL_DEPLOYMENT, LABEL_HOST, LABEL_KEPT, LABEL_ROLE } from '../../common/names';
import type { VolumeRef } from '../runner';
import { type ContainerPolicy, jobLabels, parseDu, WORKSPACE_PATH } from './convert';
import { demuxDockerStream } from './demux';
import { COPY_CAPS, COPY_SCRIPT, copyMounts, HASH_FILES_SCRIPT, helperOptions, keptVolumeName, READ_CAPS, refJob, refLabels, refVolume, workspaceMount } from './volumes';

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

  async hashFiles(jobId: string, pathspecs: string[]): Promise<string> {
    const policy = this.policy();
    const name = this.helperName(jobId, 'hash');
    const options = helperOptions(name, ['sh', '-c', HASH_FILES_SCRIPT, 'hash-files', ...pathspecs], [workspaceMount(jobId, policy.deployment)], { ...jobLabels(jobId, policy.deployment, policy.host), [LABEL_ROLE]: 'helper' }, policy, {
      caps: READ_CAPS,
    });
    const { code, output } = await this.runHelper(options, 60).catch((err: unknown) => {
      throw new RunnerError(`hashing files of job ${jobId} failed`, err);
    });
    const hash = output.trim();
    if (code !== 0 || !/^([0-9a-f]{64})?$/.test(hash)) throw new RunnerError(`hashing files of job ${jobId} failed (exit ${code}): ${output.slice(0, 300)}`);
    return hash;
  }

  async copyVolume(to: VolumeRef, from: VolumeRef | null): Promise<number> {
    const policy = this.policy();
    await this.createVolume(to);
    const jobId = refJob(to) ?? (from ? refJob(from) : null);
    if (!jobId) throw new RunnerError('a copy is made for a job: from or to its workspace or caches');
    // A kept volume keeps the owners of what it copied; a job's workspace and caches are the step user's.
    const owner = 'kept' in to ? '' : policy.user;
    const options = helperOptions(this.helperName(jobId, 'copy'), ['sh', '-c', COPY_SCRIPT], copyMounts(to, from, policy.deployment), { ...jobLabels(jobId, policy.deployment, policy.host), [LABEL_ROLE]: 'helper' }, policy, {
      caps: COPY_CAPS,
      env: { DRAFTSMAN_OWNER: owner },
    });
    const what = `copying ${from ? refVolume(from, policy.deployment) : 'nothing'} to ${refVolume(to, policy.deployment)}`;
    // A large tree takes a while: bounded like a long stop.
    const { code, output } = await this.runHelper(options, 600).catch((err: unknown) => {
      throw new RunnerError(`${what} failed`, err);
    });
    const bytes = parseDu(output);
    if (code !== 0 || bytes === null) throw new RunnerError(`${what} failed (exit ${code}): ${output.slice(0, 300)}`);
    return bytes;
  }

  async removeKept(id: string): Promise<void> {
    const name = keptVolumeName(id, this.policy().deployment);
    try {
      await this.docker.getVolume(name).remove(this.bounded());
    } catch (err) {
      if (statusOf(err) === 404) return;
      throw new RunnerError(`removing kept volume ${name} failed`, err);
    }
  }

  async listKept(): Promise<{ id: string; createdAt: Date }[]> {
    const policy = this.policy();
    // This host's own (two hosts' workers may share an engine in a test, never their records).
    const filters = JSON.stringify({ label: [`${LABEL_DEPLOYMENT}=${policy.deployment}`, `${LABEL_ROLE}=kept`, ...(policy.host ? [`${LABEL_HOST}=${policy.host}`] : [])] });
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
   * The workspace's files through the engine's archive of a container that mounts it
   * (created, never started: nothing of the job's runs while it is read).
   */
  async readWorkspace(jobId: string, onFile: (path: string, data: Buffer) => void): Promise<void> {
    const policy = this.policy();
    const options = helperOptions(this.helperName(jobId, 'read'), ['true'], [workspaceMount(jobId, policy.deployment)], { ...jobLabels(jobId, policy.deployment, policy.host), [LABEL_ROLE]: 'helper' }, policy, { caps: [] });
    try {
      const container = await this.docker.createContainer({ ...options, ...this.bounded() });
      const archive = (await container.getArchive({ path: WORKSPACE_PATH })) as unknown as Readable;
      await new Promise<void>((resolve, reject) => {
        const tar = extract();
        tar.on('entry', (header, stream, next) => {
          if (header.type !== 'file') {
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
      throw new RunnerError(`reading the workspace of job ${jobId} failed`, err);
    } finally {
      await this.removeContainer(options.name!).catch(() => undefined);
    }
  }
}
