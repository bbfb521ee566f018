/**
 * Pure translation from Draftsman's step model to Docker objects: names, labels
 * and container options. No I/O here, so every rule is unit-testable.
 */
import type Docker from 'dockerode';
import {
  LABEL_DEADLINE,
  LABEL_DEPLOYMENT,
  LABEL_JOB,
  LABEL_MANAGED,
  LABEL_STEP_INDEX,
  LABEL_STEP_KIND,
} from '../../common/names';
import type { StepRef, StepRequest } from '../runner';

export const WORKSPACE_PATH = '/workspace';

export interface ContainerPolicy {
  /** The deployment's id: in every name and label, so that deployments sharing an engine stay apart. */
  deployment: string;
  /** uid:gid, never root. */
  user: string;
  memoryMb: number;
  cpus: number;
  pidsLimit: number;
  /** Docker network mode; undefined leaves the engine's default. */
  network?: string;
  stopGraceSeconds: number;
  /** Draftsman stores at most this much of a step's output; the engine keeps a little more, so a re-attach can replay it. */
  logMaxBytes: number;
}

export function containerName(step: StepRef, deployment: string): string {
  return `draftsman-${deployment}-${step.jobId}-${step.kind}-${step.index}`;
}

export function volumeName(jobId: string, deployment: string): string {
  return `draftsman-${deployment}-${jobId}-workspace`;
}

export function jobLabels(jobId: string, deployment: string): Record<string, string> {
  return { [LABEL_MANAGED]: 'true', [LABEL_DEPLOYMENT]: deployment, [LABEL_JOB]: jobId };
}

export function stepEnv(step: StepRequest): string[] {
  const env: Record<string, string> = {
    ...step.env,
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

export function containerOptions(
  step: StepRequest,
  policy: ContainerPolicy,
  now: Date,
): Docker.ContainerCreateOptions {
  const memory = policy.memoryMb * 1024 * 1024;
  const deadline = Math.floor(now.getTime() / 1000) + step.timeoutSeconds;
  return {
    name: containerName(step, policy.deployment),
    Image: step.image,
    Cmd: ['sh', '-c', step.command],
    WorkingDir: WORKSPACE_PATH,
    User: policy.user,
    Env: stepEnv(step),
    Labels: {
      ...jobLabels(step.jobId, policy.deployment),
      [LABEL_STEP_KIND]: step.kind,
      [LABEL_STEP_INDEX]: String(step.index),
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
      Mounts: [{ Type: 'volume', Source: volumeName(step.jobId, policy.deployment), Target: WORKSPACE_PATH, ReadOnly: false }],
      NetworkMode: policy.network,
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
