import type { StepKind } from '../common/job';

/**
 * The user's step kinds, and Draftsman's own steps: `patch` reads the workspace's diff,
 * `checkout` makes the workspace the commit with the stored patch for publish.
 */
export type ContainerKind = StepKind | 'patch' | 'checkout';

/** What a backend needs to run one step of a job. */
export interface StepRequest {
  jobId: string;
  kind: ContainerKind;
  index: number;
  /** The job's placement (1 when absent), as in StepRef. */
  placement?: number;
  image: string;
  /** Run by `sh -c` in /workspace. */
  command: string;
  env: Record<string, string>;
  /** The step's time budget; backends record it so that a sweeper can stop a step nobody watches. */
  timeoutSeconds: number;
  /** The job's dependency caches this step mounts writable at /cache/<name> (setup steps only). */
  caches?: string[];
  /** The job's caches with a path, mounted writable at /workspace/<path> (every step after the clone). */
  workspaceCaches?: WorkspaceCache[];
  /**
   * Files put into /workspace before the command starts (Draftsman's own steps: the
   * stored patch for the publish checkout). Names are plain file names; put again when
   * a retry re-attaches to a step that was only created.
   */
  files?: { name: string; data: Buffer }[];
  /**
   * The step trusts its job's own CA (the egress proxy terminates TLS with it for hosts
   * bound to a credential): set for steps that hold a credential's placeholder.
   */
  trustJobCa?: boolean;
}

/** A cache that lives in the workspace (node_modules): the job's private copy is mounted at its path. */
export interface WorkspaceCache {
  name: string;
  path: string;
}

/**
 * A volume a warm start copies: a job's workspace, one of its dependency caches (the
 * private copy its setup mounts), or a kept volume of the host (a saved cache, a
 * workspace kept after setup), by its id.
 */
export type VolumeRef = JobVolumeRef | { kept: string };

/** A volume of one job: its workspace, or the private copy of one of its caches. */
export type JobVolumeRef = { workspace: string } | { cache: { jobId: string; name: string } };

/** Identifies a step's execution unit (a container for DockerRunner); deterministic from job, placement, kind and index. */
export interface StepRef {
  jobId: string;
  kind: ContainerKind;
  index: number;
  /** The job's placement (1 when absent): a job moved to another host runs its steps again as new units. */
  placement?: number;
}

export type StepState = { state: 'missing' } | { state: 'created' } | { state: 'running'; startedAt: Date } | { state: 'exited'; exit: StepExit };

/** One line a step printed. */
export interface LogLine {
  stream: 'stdout' | 'stderr';
  /** ISO time the engine stamped the line with. */
  time: string;
  text: string;
}

/**
 * What a step's processes used, from the kernel's accounting of its container (the
 * cgroup it ran in), never from what the step says: CPU time, user and system, of all
 * its processes, and the most memory they held at once.
 */
export interface StepUsage {
  cpuSeconds: number;
  peakMemoryBytes: number;
}

export interface StepExit {
  exitCode: number;
  oomKilled: boolean;
  startedAt: Date | null;
  finishedAt: Date | null;
}

/*
 * The seam between Draftsman and what executes steps, split by role: StepRunner,
 * VolumeStore, Sweeper and HostFacts. Docker is the first backend; another engine host
 * or Kubernetes would be another, and may start with StepRunner alone.
 *
 * Every method is idempotent and may be called again after a worker crash, with
 * no memory of earlier calls: state lives in the backend, found by the
 * deterministic identity of the step (StepRef) or job.
 */

/**
 * A step's life, and its job's workspace from the first step to the job's end: the calls
 * a backend needs to run jobs at all (a new backend starts here).
 */
export interface StepRunner {
  /**
   * Called for each step. Creates and starts the step's execution unit. If one
   * already exists for this step (a retry after a lost worker) it is re-attached:
   * started if it was only created, left alone if it runs or has exited, so the
   * step's command runs at most once.
   */
  start(step: StepRequest): Promise<void>;

  /**
   * Current state of a step; `missing` if it never started or was removed. Rejects
   * with an EngineUnreachableError while the engine is down.
   */
  status(step: StepRef): Promise<StepState>;

  /**
   * Resolves once the step has exited, with its exit code. Rejects with an
   * AbortError when `signal` aborts (the step keeps running), with a RunnerError if
   * the step is missing, and with an EngineUnreachableError if the engine goes away
   * meanwhile (its containers may have been stopped with it).
   */
  wait(step: StepRef, signal?: AbortSignal): Promise<StepExit>;

  /**
   * Streams the step's output, stdout and stderr in order, from its first line:
   * the first `skipLines` lines (stored by an earlier attempt) are passed over.
   * Resolves when the step has exited and its output is drained, or when `signal`
   * aborts; rejects with an EngineUnreachableError if the stream breaks before its end
   * (the rest is read by a re-attach). Safe to call again for the same step. When `onLines` returns
   * a promise, no more output is read until it settles (backpressure: a step that
   * prints faster than it is stored does not fill the worker's memory).
   */
  followLogs(step: StepRef, onLines: (lines: LogLine[]) => void | Promise<void>, opts: { skipLines: number; signal?: AbortSignal }): Promise<void>;

  /** The stdout of an exited step as bytes (binary-safe), cut at `maxBytes`. Empty if the step is missing. */
  stdout(step: StepRef, maxBytes: number): Promise<{ data: Buffer; truncated: boolean }>;

  /**
   * Stops a step: SIGTERM to its whole process group, then SIGKILL after
   * `graceSeconds`. Succeeds if the step already exited, never started, or is gone,
   * and says which: `stopped` if it was running, else `not-running` (it ended by itself).
   * Rejects with an EngineUnreachableError if the engine is stopping (it stopped it).
   */
  cancel(step: StepRef, graceSeconds: number): Promise<'stopped' | 'not-running'>;

  /**
   * Freezes a running step's processes where they are (nothing of theirs runs, no CPU is
   * used) until unpause; a stop or a removal still ends it. Succeeds if it is frozen
   * already, or not running.
   */
  pause(step: StepRef): Promise<void>;

  /** Lets a frozen step run on. Succeeds if it is not frozen. */
  unpause(step: StepRef): Promise<void>;

  /**
   * What the step used so far, while it runs and after it has exited (until it is
   * removed); null when the backend cannot measure it (accounting off, or the step is gone).
   */
  usage(step: StepRef): Promise<StepUsage | null>;

  /** Removes a step's execution unit, killing it if it still runs, and its accounting. Succeeds if it is gone. */
  remove(step: StepRef): Promise<void>;

  /** Called once per job before its first step. Creates the job's workspace; succeeds if it exists. */
  prepareWorkspace(jobId: string): Promise<void>;

  /**
   * Called when a job ends, whatever the outcome: removes every execution unit
   * left of the job and then its workspace. Succeeds if nothing is left.
   */
  removeJob(jobId: string): Promise<void>;
}

/** A workspace's contents and size, caches and kept volumes: what warm starts and the workspace cap need. */
export interface VolumeStore {
  /**
   * Bytes the job's workspace takes on disk (what du counts), for the workspace cap.
   * Rejects if the workspace cannot be measured (the engine is restarting).
   */
  workspaceBytes(jobId: string): Promise<number>;

  /**
   * The hash of the files of `commit` that the pathspecs match (paths, modes and
   * contents), hex; empty when none does. The commit is read from the workspace's object
   * store as data and verified against its id: nothing in the workspace's `.git` (its
   * config, index, refs) is used or run, and the helper has no more privilege than a step.
   */
  hashFiles(jobId: string, commit: string, pathspecs: string[]): Promise<string>;

  /**
   * Makes `to` a copy of `from` (empty when null), replacing what it held, its files
   * owned by the step user when it is a job's workspace or cache; returns the bytes it
   * copied. A kept volume is written only as a new id, so a copy cut short leaves a
   * volume nobody refers to, never a half-written one in use. A job's volume restored
   * from a kept one may instead be layered on it (copy on write: 0 bytes copied); what
   * the job writes never reaches the kept volume either way.
   */
  copyVolume(to: VolumeRef, from: VolumeRef | null): Promise<number>;

  /**
   * Removes a kept volume: true once it is gone, false when it is in use (a job's volume
   * is layered on it, or a copy reads it) and was left for a later sweep.
   */
  removeKept(id: string): Promise<boolean>;

  /** The kept volumes on this host, with when each was made, for the janitor (ids no record names are removed). */
  listKept(): Promise<{ id: string; createdAt: Date }[]>;

  /**
   * Every file of a job's workspace or cache copy (path, contents), one at a time, for a
   * scan before it is kept; and, to `onName`, every other entry (folders, symlinks with
   * their targets, which are never followed): a name can carry a secret as well as a file.
   */
  readVolume(ref: JobVolumeRef, onFile: (path: string, data: Buffer) => void, onName?: (path: string, link?: string) => void): Promise<void>;
}

/** Listing and removing what a deployment owns, whoever made it: the janitor, and tests. */
export interface Sweeper {
  /** Everything of the job that still exists (names), for tests and sweepers. */
  listJobResources(jobId: string): Promise<JobResources>;

  /** Every step and workspace Draftsman created on this backend, for the janitor. */
  listManaged(): Promise<ManagedResource[]>;

  /** Stops a listed step as `cancel` does, leaving it for its worker to record. Succeeds if it is gone. */
  stopManaged(resource: ManagedResource, graceSeconds: number): Promise<void>;

  /** Removes a listed step (killing it), holder or workspace. Succeeds if it is gone. */
  removeManaged(resource: ManagedResource): Promise<void>;
}

/** What the worker learns of its host before it takes work. */
export interface HostFacts {
  /**
   * Called once when a worker starts: rejects, naming what is missing, if the backend
   * cannot run steps as configured (a runtime it does not have), so that a worker
   * never takes work it would run weaker than asked.
   */
  ready(): Promise<void>;

  /**
   * What identifies the backend's host (for Docker: the engine's id and the address it
   * was reached at, since two engines on one machine can share an id): the default host
   * id derives from it, so that every worker of one engine serves one host queue.
   */
  hostKey(): Promise<string>;

  /** Why steps have no usage figures on this host (set by ready()), or null when they have. */
  accountingProblem?(): string | null;

  /** The host id the worker serves, once known: what the backend creates carries it (for operators). */
  identifyHost?(id: string): void;

  /** The id of an image present on the host (what a kept workspace is keyed by: a tag can move). */
  imageId(image: string): Promise<string>;

  /**
   * Keeps up to `size` of what a new job needs made ahead of it (Docker: network
   * holders), each given to one job only, until the returned stop, which removes what no
   * job took. Optional: a backend without it makes everything per job.
   */
  keepReady?(size: number, onError?: (err: unknown) => void): Promise<() => Promise<void>>;
}

/** A whole backend: the four roles over one engine (Docker, and the fake of the tests). */
export type Runner = StepRunner & VolumeStore & Sweeper & HostFacts;

/** What a job has on the backend: step units, the network holder (if steps reach out through one), the workspace. */
export interface JobResources {
  steps: string[];
  holders: string[];
  workspaces: string[];
}

export interface ManagedResource {
  /** `holder`: the job's network holder, removed after its steps and before its workspace. */
  type: 'step' | 'holder' | 'workspace';
  name: string;
  jobId: string;
  /** Steps only: the job's placement the step ran in (1 for units without the label). */
  placement?: number;
  /** Steps only: whether the step still runs, and the Unix time (s) its budget ends. */
  running?: boolean;
  deadline?: number;
}
