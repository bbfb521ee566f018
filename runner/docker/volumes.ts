/**
 * Pure translation of warm starts to Docker objects: the volumes of a job's caches and
 * of kept volumes, and the short-lived helper containers that copy and hash them. No
 * I/O here.
 */
import type Docker from 'dockerode';
import { LABEL_DEPLOYMENT, LABEL_HOST, LABEL_KEPT, LABEL_MANAGED, LABEL_ROLE } from '../../common/names';
import type { VolumeRef } from '../runner';
import { cacheVolumeName, type ContainerPolicy, jobLabels, volumeName, WORKSPACE_PATH } from './convert';

export function keptVolumeName(id: string, deployment: string): string {
  return `draftsman-${deployment}-kept-${id}`;
}

/** The engine's name of a volume a warm start copies. */
export function refVolume(ref: VolumeRef, deployment: string): string {
  if ('workspace' in ref) return volumeName(ref.workspace, deployment);
  if ('cache' in ref) return cacheVolumeName(ref.cache.jobId, ref.cache.name, deployment);
  return keptVolumeName(ref.kept, deployment);
}

/**
 * A kept volume belongs to no job (the janitor's job sweep never sees it): it is found
 * by its role and id. A job's caches are the job's, removed with it.
 */
export function refLabels(ref: VolumeRef, policy: Pick<ContainerPolicy, 'deployment' | 'host'>): Record<string, string> {
  if ('kept' in ref) {
    return {
      [LABEL_MANAGED]: 'true',
      [LABEL_DEPLOYMENT]: policy.deployment,
      ...(policy.host ? { [LABEL_HOST]: policy.host } : {}),
      [LABEL_ROLE]: 'kept',
      [LABEL_KEPT]: ref.kept,
    };
  }
  const jobId = 'workspace' in ref ? ref.workspace : ref.cache.jobId;
  return { ...jobLabels(jobId, policy.deployment, policy.host), ...('cache' in ref ? { [LABEL_ROLE]: 'cache' } : {}) };
}

/** The job a copy is made for (its helper carries the job's labels, so the janitor removes one a crash left). */
export const refJob = (ref: VolumeRef): string | null => ('workspace' in ref ? ref.workspace : 'cache' in ref ? ref.cache.jobId : null);

/**
 * The copy: the target emptied (it may hold a copy cut short), the source's files
 * copied with their modes and owners, then (for a job's workspace or cache) owned by
 * the step user, and measured.
 */
export const COPY_SCRIPT = [
  'set -eu',
  'find /to -mindepth 1 -delete',
  'if [ -d /from ]; then cp -a /from/. /to/; fi',
  'if [ -n "$DRAFTSMAN_OWNER" ]; then chown -R "$DRAFTSMAN_OWNER" /to; fi',
  'du -skx /to',
].join('\n');

/**
 * A helper container: the tool image as root with only the capabilities its work needs
 * (reading everything, and for a copy keeping owners and modes), no network, a
 * read-only root, bounded memory and processes. Root helpers only read, copy and
 * measure files (cp, chown, du, tar: none follows a symlink or runs what it reads); a
 * helper that runs git on a workspace runs as the step user with no capability at all.
 */
export function helperOptions(
  name: string,
  cmd: string[],
  mounts: Docker.MountSettings[],
  labels: Record<string, string>,
  policy: Pick<ContainerPolicy, 'toolImage'>,
  opts: { caps: string[]; env?: Record<string, string>; user?: string; tmpMb?: number },
): Docker.ContainerCreateOptions {
  const memory = 256 * 1024 * 1024;
  return {
    name,
    Image: policy.toolImage,
    Cmd: cmd,
    User: opts.user ?? '0:0',
    WorkingDir: '/',
    Env: Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`),
    Labels: labels,
    HostConfig: {
      Mounts: mounts,
      NetworkMode: 'none',
      CapDrop: ['ALL'],
      CapAdd: opts.caps,
      SecurityOpt: ['no-new-privileges'],
      Privileged: false,
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': `rw,nosuid,nodev,size=${opts.tmpMb ?? 16}m` },
      Memory: memory,
      MemorySwap: memory,
      PidsLimit: 64,
      RestartPolicy: { Name: 'no' },
      LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '1' } },
    },
  };
}

export const COPY_CAPS = ['CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER'];
export const READ_CAPS = ['DAC_READ_SEARCH'];

/** The mounts of a copy: the source read-only at /from (when there is one), the target at /to. */
export function copyMounts(to: VolumeRef, from: VolumeRef | null, deployment: string): Docker.MountSettings[] {
  return [
    ...(from ? [{ Type: 'volume' as const, Source: refVolume(from, deployment), Target: '/from', ReadOnly: true }] : []),
    { Type: 'volume', Source: refVolume(to, deployment), Target: '/to', ReadOnly: false },
  ];
}

/**
 * A restore without a copy: the job's volume is an overlay whose lower layer is the kept
 * volume (read-only to it, shared by every job restored from it) and whose upper layer,
 * its own, takes what the job writes. The upper and work directories are two more
 * volumes of the job, removed with it.
 */
export function layerVolumes(toName: string): { upper: string; work: string } {
  return { upper: `${toName}-upper`, work: `${toName}-work` };
}

/** The local driver's options of an overlay volume over three directories of the engine's host. */
export function layerDriverOpts(dirs: { lower: string; upper: string; work: string }): Record<string, string> {
  // The mount options are a comma list of key=value: a path holding either cannot be named.
  for (const dir of Object.values(dirs))
    if (!/^\/[^,:=]*$/.test(dir)) throw new Error(`cannot layer a volume on ${JSON.stringify(dir)}: not an absolute path without , : or =`);
  return { type: 'overlay', device: 'overlay', o: `lowerdir=${dirs.lower},upperdir=${dirs.upper},workdir=${dirs.work}` };
}

/**
 * A container that is created, never started, with a fresh volume at the tool image's
 * /workspace: the engine then gives the volume's root that directory's owner and mode
 * (the step user's, as a job's workspace has them), without running anything.
 */
export function ownerOptions(
  name: string,
  volume: string,
  labels: Record<string, string>,
  policy: Pick<ContainerPolicy, 'toolImage'>,
): Docker.ContainerCreateOptions {
  return helperOptions(name, ['true'], [{ Type: 'volume', Source: volume, Target: WORKSPACE_PATH, ReadOnly: false }], labels, policy, { caps: [] });
}

export const workspaceMount = (jobId: string, deployment: string): Docker.MountSettings => ({
  Type: 'volume',
  Source: volumeName(jobId, deployment),
  Target: WORKSPACE_PATH,
  ReadOnly: true,
});
