/** The Docker backend's volume store: a job's workspace volume and network holder, its size, and the warm-start volumes (warm-volumes.ts). */
import { RunnerError } from '../../common/errors';
import type { JobVolumeRef, VolumeRef, VolumeStore } from '../runner';
import { measureName, measureOptions, parseDu } from './convert';
import { demuxDockerStream } from './demux';
import type { DockerEngine } from './engine';
import type { WarmVolumes } from './warm-volumes';

export class DockerVolumeStore implements VolumeStore {
  constructor(
    private readonly e: DockerEngine,
    private readonly warm: WarmVolumes,
  ) {}

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

  async workspaceBytes(jobId: string): Promise<number> {
    const name = measureName(jobId, this.e.policy.deployment);
    // One left by a measurement that a worker crash interrupted.
    await this.e.removeContainer(name);
    try {
      const container = await this.e.docker.createContainer({ ...measureOptions(jobId, this.e.policy), ...this.e.bounded() });
      await container.start(this.e.bounded());
      // du over a large tree takes a while: bounded like a stop past its grace.
      const { StatusCode } = (await container.wait(this.e.bounded(60))) as { StatusCode: number };
      const raw = (await container.logs({ stdout: true, stderr: true, follow: false, ...this.e.bounded() })) as unknown as Buffer;
      const output = Buffer.concat(demuxDockerStream(raw).map((c) => c.data)).toString();
      const bytes = parseDu(output);
      // du says what it could not read (exit 1) and still counts the rest.
      if (bytes === null) throw new RunnerError(`measuring the workspace of job ${jobId} failed (exit ${StatusCode}): ${output.slice(0, 200)}`);
      return bytes;
    } catch (err) {
      throw err instanceof RunnerError ? err : new RunnerError(`measuring the workspace of job ${jobId} failed`, err);
    } finally {
      await this.e.removeContainer(name).catch(() => undefined);
    }
  }
}
