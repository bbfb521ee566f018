/**
 * Pure translation from Draftsman's step model to Docker objects: names, labels
 * and container options. No I/O here, so every rule is unit-testable.
 */
import path from 'node:path';
import type Docker from 'dockerode';
import { type CgroupLayout, stepCgroup } from './cgroups';
import {
  LABEL_DEADLINE,
  LABEL_DEPLOYMENT,
  LABEL_JOB,
  LABEL_HOST,
  LABEL_MANAGED,
  LABEL_PLACEMENT,
  LABEL_READY,
  LABEL_ROLE,
  LABEL_STEP_INDEX,
  LABEL_STEP_KIND,
} from '../../common/names';
import { HOLDER_MOUNT, jobDir, jobKey, jobTrustEnv, jobTrustScript, PROXY_PORT, PROXY_URL, proxyEnv, SOCKET_NAME } from '../../common/egress-layout';
import { cacheDir, cacheEnv } from '../../common/warm';
import type { StepRef, StepRequest } from '../runner';

export const WORKSPACE_PATH = '/workspace';

export interface ContainerPolicy {
  /** The deployment's id: in every name and label, so that deployments sharing an engine stay apart. */
  deployment: string;
  /** The host id, once the worker knows it: a label on what it creates. */
  host?: string;
  /** uid:gid, never root. */
  user: string;
  memoryMb: number;
  cpus: number;
  pidsLimit: number;
  /** The engine's OCI runtime for steps (e.g. `runsc`); unset: the engine's default. */
  runtime?: string;
  network: StepNetwork;
  stopGraceSeconds: number;
  /** Bound on an engine request that should answer at once; past it the engine is unreachable. */
  engineRequestSeconds: number;
  /** Draftsman's own image, for its helpers (the workspace's measurement). */
  toolImage: string;
  /** Draftsman stores at most this much of a step's output; the engine keeps a little more, so a re-attach can replay it. */
  logMaxBytes: number;
  /** Where the kernel's cgroups are (/sys/fs/cgroup), for steps' usage; unset: none is measured. */
  cgroupRoot?: string;
  /** Settled by ready(): the hierarchy there and the deployment's parent cgroup, when the engine can put steps under it. */
  cgroup?: { layout: CgroupLayout; parent: string };
}

/**
 * How steps reach the outside.
 * - `proxy`: no interface but loopback, shared with the job's holder container, whose
 *   forwarder on 127.0.0.1:3128 leads to the egress service's socket for the job.
 * - `none`: loopback only, no way out at all.
 * - `insecure`: a Docker network mode the operator forced (DRAFTSMAN_INSECURE_STEP_NETWORK);
 *   steps can reach whatever that network reaches.
 */
export type StepNetwork =
  | {
      mode: 'proxy';
      /** Where the worker and the egress service see the job folders. */
      socketDir: string;
      holderImage: string;
      /**
       * The named volume that holds socketDir, when the worker runs in a container (compose):
       * the holder mounts it and connects to its job's socket in it. Unset: socketDir is a
       * path on the engine's host, and the holder mounts its job's folder alone.
       */
      socketVolume?: string;
      /**
       * Where the forwarder to the socket runs: in the job's holder, whose network
       * namespace the steps join (runc), or in each step itself, under a runtime with a
       * network stack of its own (gVisor's runsc, where a joined namespace gives no
       * route to the holder): the step then mounts its job's folder and connects to
       * the socket through the runtime's host-socket access.
       */
      forwarder?: 'holder' | 'in-step';
    }
  | { mode: 'none' }
  | { mode: 'insecure'; network: string };

export function containerName(step: StepRef, deployment: string): string {
  // The first placement's names are those of versions before placements, whose containers a new worker re-attaches.
  const placement = step.placement && step.placement > 1 ? `-p${step.placement}` : '';
  return `draftsman-${deployment}-${step.jobId}${placement}-${step.kind}-${step.index}`;
}

export function volumeName(jobId: string, deployment: string): string {
  return `draftsman-${deployment}-${jobId}-workspace`;
}

/** A job's private copy of one of its caches, which its setup steps mount. */
export function cacheVolumeName(jobId: string, name: string, deployment: string): string {
  return `draftsman-${deployment}-${jobId}-cache-${name}`;
}

/** The helper that measures the job's workspace (a short-lived container, one at a time per job). */
export function measureName(jobId: string, deployment: string): string {
  return `draftsman-${deployment}-${jobId}-measure`;
}

/** The job's network holder: one per job, whose network namespace every step of the job joins. */
export function holderName(jobId: string, deployment: string): string {
  return `draftsman-${deployment}-${jobId}-holder`;
}

export function jobLabels(jobId: string, deployment: string, host?: string): Record<string, string> {
  return { [LABEL_MANAGED]: 'true', [LABEL_DEPLOYMENT]: deployment, [LABEL_JOB]: jobId, ...(host ? { [LABEL_HOST]: host } : {}) };
}

export function stepEnv(step: StepRequest, network: StepNetwork = { mode: 'none' }): string[] {
  const env: Record<string, string> = {
    ...step.env,
    ...(network.mode === 'proxy' ? proxyEnv() : {}),
    ...cacheEnv(step.caches ?? [], step.workspaceCaches ?? []),
    // Root filesystem is read-only; tools that write to $HOME get the tmpfs.
    HOME: '/tmp',
    DRAFTSMAN_JOB_ID: step.jobId,
    DRAFTSMAN_STEP_KIND: step.kind,
    DRAFTSMAN_STEP_INDEX: String(step.index),
    // The engine's init (tini) puts the step's shell in a process group of its own;
    // with this it signals that whole group, so SIGTERM reaches the user's processes
    // and not only the `sh -c` wrapper (which would die and lose the grace period).
    TINI_KILL_PROCESS_GROUP: '1',
  };
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

/**
 * The step's command as its shell runs it. A stop sends SIGTERM to the step's whole
 * process group, the shell included. A shell that died of it at once would end the
 * container (its init exits with it) and kill the user's processes before their own
 * TERM handlers ran: with this trap the shell waits for the command in the foreground
 * to finish (a handled signal is run after it), then exits 143 instead of going on to
 * the next command. Its children get TERM's default action, as a trap is not inherited.
 * A trap of the user's own replaces it.
 */
export function stepScript(command: string): string {
  return `trap 'exit 143' TERM\n${command}`;
}

/** A step that holds a credential, given its job's CA: the trust variables, and the bundle written before its command. */
export function withJobTrust(step: StepRequest, caPem: string): StepRequest {
  return { ...step, env: { ...step.env, ...jobTrustEnv(caPem) }, command: `${jobTrustScript()}\n${step.command}` };
}

export function containerOptions(step: StepRequest, policy: ContainerPolicy, now: Date): Docker.ContainerCreateOptions {
  const memory = policy.memoryMb * 1024 * 1024;
  const deadline = Math.floor(now.getTime() / 1000) + step.timeoutSeconds;
  return {
    name: containerName(step, policy.deployment),
    Image: step.image,
    Cmd: inStepForwarder(policy.network)
      ? ['sh', '-c', forwarderThen(socketInContainer(step.jobId, policy.network, policy.deployment)), stepScript(step.command)]
      : ['sh', '-c', stepScript(step.command)],
    WorkingDir: WORKSPACE_PATH,
    User: policy.user,
    Env: stepEnv(step, policy.network),
    Labels: {
      ...jobLabels(step.jobId, policy.deployment, policy.host),
      [LABEL_STEP_KIND]: step.kind,
      [LABEL_STEP_INDEX]: String(step.index),
      [LABEL_PLACEMENT]: String(step.placement ?? 1),
      [LABEL_DEADLINE]: String(deadline),
    },
    StopSignal: 'SIGTERM',
    StopTimeout: policy.stopGraceSeconds,
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    Tty: false,
    OpenStdin: false,
    HostConfig: {
      Mounts: [
        { Type: 'volume', Source: volumeName(step.jobId, policy.deployment), Target: WORKSPACE_PATH, ReadOnly: false },
        // The job's private copies of its caches (setup steps only): they see nothing of the saved ones.
        ...(step.caches ?? []).map((name): Docker.MountSettings => ({
          Type: 'volume',
          Source: cacheVolumeName(step.jobId, name, policy.deployment),
          Target: cacheDir(name),
          ReadOnly: false,
        })),
        // Those with a path, inside the workspace (the engine mounts a deeper path after the workspace).
        ...(step.workspaceCaches ?? []).map((c): Docker.MountSettings => ({
          Type: 'volume',
          Source: cacheVolumeName(step.jobId, c.name, policy.deployment),
          Target: `${WORKSPACE_PATH}/${c.path}`,
          ReadOnly: false,
        })),
      ],
      ...(inStepForwarder(policy.network) ? { Binds: [socketBind(step.jobId, policy.network, policy.deployment)] } : {}),
      NetworkMode: networkMode(step.jobId, policy),
      ...(policy.runtime ? { Runtime: policy.runtime } : {}),
      // An init as PID 1 forwards SIGTERM to the step's shell, which as PID 1 would ignore it.
      Init: true,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Privileged: false,
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': 'rw,nosuid,nodev,size=512m' },
      Memory: memory,
      MemorySwap: memory,
      NanoCpus: Math.round(policy.cpus * 1e9),
      // A cgroup of the step's own: it keeps what the step used once the container is gone (cgroups.ts).
      ...(policy.cgroup ? { CgroupParent: stepCgroup(policy.cgroup.parent, containerName(step, policy.deployment)) } : {}),
      PidsLimit: policy.pidsLimit,
      AutoRemove: false,
      RestartPolicy: { Name: 'no' },
      LogConfig: {
        Type: 'json-file',
        // The engine stores each line as JSON with a timestamp (short lines take about
        // three times their size), and a follower that lags behind a rotation loses
        // lines: one file holds at least what Draftsman stores, with a second to spare.
        Config: { 'max-size': `${Math.ceil((3 * policy.logMaxBytes) / 2 ** 20) + 1}m`, 'max-file': '2' },
      },
    },
  };
}

function networkMode(jobId: string, policy: ContainerPolicy): string {
  const n = policy.network;
  if (n.mode === 'proxy') return n.forwarder === 'in-step' ? 'none' : `container:${holderName(jobId, policy.deployment)}`;
  return n.mode === 'none' ? 'none' : n.network;
}

type ProxyNetwork = Extract<StepNetwork, { mode: 'proxy' }>;

const inStepForwarder = (n: StepNetwork): n is ProxyNetwork => n.mode === 'proxy' && n.forwarder === 'in-step';

/** The job's socket as the container that mounts it sees it: its own folder, or its folder in the sockets volume. */
function socketInContainer(jobId: string, network: ProxyNetwork, deployment: string): string {
  return network.socketVolume ? `${HOLDER_MOUNT}/${jobKey(jobId, deployment)}/${SOCKET_NAME}` : `${HOLDER_MOUNT}/${SOCKET_NAME}`;
}

/** The job's own socket folder, read-only (connecting to a socket needs no write). */
function socketBind(jobId: string, network: ProxyNetwork, deployment: string): string {
  return `${jobDir(network.socketDir, jobId, deployment)}:${HOLDER_MOUNT}:ro`;
}

/**
 * The in-step forwarder: socat on the step's loopback, to the job's socket, in the
 * background; the step's command runs once it listens (read from /proc/net/tcp: a
 * probe connection would reach the proxy), at most 2 s later. It is in the step's
 * process group, so a stop reaches it too. An image without socat runs its step with
 * no way out, and its log says why.
 */
export function forwarderThen(socket: string): string {
  const port = PROXY_PORT.toString(16).toUpperCase().padStart(4, '0');
  return (
    'if command -v socat >/dev/null 2>&1; then ' +
    `socat TCP-LISTEN:${PROXY_PORT},bind=127.0.0.1,fork,reuseaddr,backlog=128,nodelay UNIX-CONNECT:${socket} & ` +
    `i=0; until grep -q ':${port} 00000000:0000 0A' /proc/net/tcp 2>/dev/null || [ $i -ge 200 ]; do i=$((i+1)); sleep 0.01; done; ` +
    `else echo '[draftsman] this image has no socat: under gVisor the step has no way out (the egress proxy on ${PROXY_URL} is not there)' >&2; fi; ` +
    'exec sh -c "$0"'
  );
}

/**
 * The job's holder: network `none`, the job's socket directory mounted, and a forwarder
 * from 127.0.0.1:3128 to the socket (a connection at a time per forked child). As small
 * and closed as a step; the engine restarts it if it dies or the engine restarts,
 * because the job's next step joins its network namespace.
 */
export function holderOptions(jobId: string, policy: ContainerPolicy & { network: { mode: 'proxy' } }): Docker.ContainerCreateOptions {
  const { socketVolume } = policy.network;
  return holderBase(
    holderName(jobId, policy.deployment),
    socketInContainer(jobId, policy.network, policy.deployment),
    { ...jobLabels(jobId, policy.deployment, policy.host), [LABEL_ROLE]: 'holder' },
    // A mount of the folder, not of the socket: a socket the service makes anew after
    // a restart is seen through it. Read-only: connecting to a socket needs no write.
    // (With a volume the holder sees every job's folder; only its own socket is in its
    // command, and steps share its network, not its files.)
    socketVolume
      ? { Mounts: [{ Type: 'volume' as const, Source: socketVolume, Target: HOLDER_MOUNT, ReadOnly: true }] }
      : { Binds: [socketBind(jobId, policy.network, policy.deployment)] },
    policy,
  );
}

/** A ready holder's name and folder: made before any job asks, named for its slot until one takes it. */
export function readyHolderName(slot: string, deployment: string): string {
  return `draftsman-${deployment}-ready-${slot}`;
}
export function readyHolderDir(socketDir: string, slot: string): string {
  // A dot-name: the egress service leaves it alone until it is renamed to a job's folder.
  return path.join(socketDir, `.ready-${slot}`);
}

/**
 * A ready holder: a job's holder made before its job (common/egress-layout.ts), its folder
 * a dot-named one of its own. Taking it renames the folder to the job's (the mount
 * follows the folder, not its name) and the container to the job's holder name, so that
 * from then on it is that job's holder in all but its labels: it has no job label, and
 * the `ready` label says so (see DockerSweeper).
 */
export function readyHolderOptions(slot: string, policy: ContainerPolicy & { network: { mode: 'proxy' } }): Docker.ContainerCreateOptions {
  return holderBase(
    readyHolderName(slot, policy.deployment),
    `${HOLDER_MOUNT}/${SOCKET_NAME}`,
    {
      [LABEL_MANAGED]: 'true',
      [LABEL_DEPLOYMENT]: policy.deployment,
      ...(policy.host ? { [LABEL_HOST]: policy.host } : {}),
      [LABEL_ROLE]: 'holder',
      [LABEL_READY]: slot,
    },
    { Binds: [`${readyHolderDir(policy.network.socketDir, slot)}:${HOLDER_MOUNT}:ro`] },
    policy,
  );
}

function holderBase(
  name: string,
  socket: string,
  labels: Record<string, string>,
  mounts: Pick<Docker.HostConfig, 'Mounts' | 'Binds'>,
  policy: ContainerPolicy & { network: { mode: 'proxy' } },
): Docker.ContainerCreateOptions {
  const memory = 64 * 1024 * 1024;
  return {
    name,
    Image: policy.network.holderImage,
    Cmd: ['socat', `TCP-LISTEN:${PROXY_PORT},bind=127.0.0.1,fork,reuseaddr,backlog=128,nodelay`, `UNIX-CONNECT:${socket}`],
    User: policy.user,
    Labels: labels,
    HostConfig: {
      NetworkMode: 'none',
      ...mounts,
      Init: true,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Privileged: false,
      ReadonlyRootfs: true,
      Memory: memory,
      MemorySwap: memory,
      NanoCpus: 500_000_000,
      PidsLimit: 256,
      RestartPolicy: { Name: 'unless-stopped' },
      LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '1' } },
    },
  };
}

/**
 * The workspace's measurement: `du` over the volume, mounted read-only, with no
 * network. It runs as root with only the capability to read and list anything, as a
 * step may make files and folders it cannot read itself to hide their size.
 */
export function measureOptions(jobId: string, policy: ContainerPolicy): Docker.ContainerCreateOptions {
  const memory = 64 * 1024 * 1024;
  return {
    name: measureName(jobId, policy.deployment),
    Image: policy.toolImage,
    Cmd: ['du', '-skx', WORKSPACE_PATH],
    User: '0:0',
    Labels: { ...jobLabels(jobId, policy.deployment, policy.host), [LABEL_ROLE]: 'measure' },
    HostConfig: {
      Mounts: [{ Type: 'volume', Source: volumeName(jobId, policy.deployment), Target: WORKSPACE_PATH, ReadOnly: true }],
      NetworkMode: 'none',
      CapDrop: ['ALL'],
      CapAdd: ['DAC_READ_SEARCH'],
      SecurityOpt: ['no-new-privileges'],
      Privileged: false,
      ReadonlyRootfs: true,
      Memory: memory,
      MemorySwap: memory,
      PidsLimit: 16,
      RestartPolicy: { Name: 'no' },
      LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '1' } },
    },
  };
}

/** The bytes in `du -sk`'s answer ("<KiB>\t<path>"), or null if it is not one. */
export function parseDu(output: string): number | null {
  const m = /^(\d+)\s+\S/m.exec(output);
  return m ? Number(m[1]) * 1024 : null;
}

/**
 * The engine's start and exit times of an exited container. Docker stamps StartedAt
 * after its start call returns but FinishedAt with the exit itself, so a command that
 * exits within a millisecond can appear to finish before it started; it started no
 * later than it exited.
 */
export function exitTimes(startedAt: Date | null, finishedAt: Date | null): { startedAt: Date | null; finishedAt: Date | null } {
  if (startedAt && finishedAt && finishedAt.getTime() < startedAt.getTime()) return { startedAt: finishedAt, finishedAt };
  return { startedAt, finishedAt };
}

/**
 * Why gVisor, registered with these arguments, cannot give steps their way out, or
 * null. The step's forwarder connects to a host socket, which gVisor allows only with
 * its host-socket option; and a step may mount its own job's folder only (a sockets
 * volume would show it every job's socket, and this engine mounts no volume subpath).
 */
export function gvisorEgressProblem(runtimeArgs: string[], socketVolume: string | undefined): string | null {
  if (!runtimeArgs.some((a) => /^--?(host-uds=(open|all)|fsgofer-host-uds(=true)?)$/.test(a))) {
    return 'gVisor must be registered with "--host-uds=open" in its runtimeArgs, for steps to reach the egress proxy\'s socket (docs/deployment.md, "gVisor")';
  }
  if (socketVolume) {
    return "under gVisor each step mounts its job's socket folder, which DRAFTSMAN_EGRESS_SOCKET_VOLUME cannot give alone; set DRAFTSMAN_EGRESS_SOCKET_DIR to a path on the engine's host instead";
  }
  return null;
}
