import { Client } from '@temporalio/client';
import { DefaultLogger, type LogLevel, NativeConnection, Runtime, Worker, type WorkflowBundleOption } from '@temporalio/worker';
import Docker from 'dockerode';
import { type ActivityDeps, createActivities } from '../activities';
import { JobsClient } from '../client/jobs';
import { dataConverterFor } from '../common/codec';
import type { Config } from '../common/config';
import { deploymentId, hostId, hostTaskQueue } from '../common/deployment';
import { diskRoom } from '../common/disk';
import { HOST_HEARTBEAT_SECONDS } from '../common/hosts';
import { type Logger, temporalLogger } from '../common/logger';
import type { Metrics } from '../common/metrics';
import { SEARCH_ATTRIBUTES } from '../common/names';
import { HostStore } from '../db/host-store';
import type { JobStore } from '../db/store';
import type { ContainerPolicy } from '../runner/docker/convert';
import { DockerRunner } from '../runner/docker/docker-runner';

export { deploymentId };
import type { Runner } from '../runner/runner';
import { temporal } from '@temporalio/proto';

/** The container policy of every step, from the configuration (the runner's and the benchmarks' one mapping). */
export function stepPolicy(config: Config): ContainerPolicy {
  return {
    deployment: deploymentId(config),
    user: config.DRAFTSMAN_STEP_USER,
    memoryMb: config.DRAFTSMAN_STEP_MEMORY_MB,
    cpus: config.DRAFTSMAN_STEP_CPUS,
    pidsLimit: config.DRAFTSMAN_STEP_PIDS_LIMIT,
    runtime: config.DRAFTSMAN_STEP_RUNTIME,
    network: config.DRAFTSMAN_INSECURE_STEP_NETWORK
      ? { mode: 'insecure', network: config.DRAFTSMAN_INSECURE_STEP_NETWORK }
      : config.DRAFTSMAN_STEP_EGRESS === 'proxy'
        ? {
            mode: 'proxy',
            socketDir: config.DRAFTSMAN_EGRESS_SOCKET_DIR!,
            holderImage: config.DRAFTSMAN_HOLDER_IMAGE,
            socketVolume: config.DRAFTSMAN_EGRESS_SOCKET_VOLUME,
          }
        : { mode: 'none' },
    stopGraceSeconds: config.DRAFTSMAN_STOP_GRACE_SECONDS,
    engineRequestSeconds: config.DRAFTSMAN_ENGINE_REQUEST_SECONDS,
    toolImage: config.DRAFTSMAN_HOLDER_IMAGE,
    logMaxBytes: config.DRAFTSMAN_STEP_LOG_MAX_BYTES,
    ...(config.DRAFTSMAN_CGROUP_ROOT !== 'off' ? { cgroupRoot: config.DRAFTSMAN_CGROUP_ROOT } : {}),
  };
}

export function dockerRunnerFromConfig(config: Config, docker = new Docker()): DockerRunner {
  return new DockerRunner(docker, stepPolicy(config));
}

/**
 * Sets the SDK's logging (JSON through `logger` when given); the runtime is
 * process-wide and can be installed once only.
 */
export function installRuntime(level: LogLevel, logger?: Logger): void {
  try {
    Runtime.install({ logger: logger ? temporalLogger(logger, level) : new DefaultLogger(level) });
  } catch {
    // Already installed in this process (several workers, or tests): keep the first.
  }
}

/** Jobs waiting for a host that a starting host wakes (the first in line). */
const WAKE_ON_START = 8;

export interface WorkerDeps {
  config: Config;
  store: JobStore;
  runner: Runner;
  connection: NativeConnection;
  /** A prebuilt bundle (tests build it once); otherwise the workflows are bundled at start-up. */
  workflowBundle?: WorkflowBundleOption;
  metrics?: Metrics;
  logger?: Logger;
  /** Test-only: the janitor's orphan age. (Faults come from wrapping the runner and the store given here: testing/faults.ts.) */
  test?: Pick<ActivityDeps, 'keptOrphanSeconds' | 'stepContext'>;
}

/**
 * A worker of one host: on the shared queue, the workflows and the activities any worker
 * may run (placing a job, and every activity of jobs placed before placement existed);
 * on the host's own queue (common/deployment.ts hostTaskQueue), the activities that
 * touch this host's engine for the jobs placed here. They run and stop together.
 */
export class HostWorker {
  private beating: NodeJS.Timeout | null = null;
  /** Set by shutdown(): one asked for before the workers run (while holders are made ready) is not lost. */
  private stopping = false;
  /** When this worker first heard its host drains (epoch ms), for the drain timeout. */
  private drainSeenAt: number | null = null;

  constructor(
    readonly shared: Worker,
    readonly host: Worker,
    readonly hostId: string,
    /** Says the host is alive and what it offers; answers whether it drains and what it still holds. */
    private readonly beat: () => Promise<{ draining: boolean; holding: number }> = async () => ({ draining: false, holding: 0 }),
    private readonly logger?: Logger,
    /** After this long draining with jobs left, the worker stops anyway and they move (0: never). */
    private readonly drainTimeoutSeconds = 0,
    /** Starts keeping resources ready ahead of jobs (runner.keepReady) while it runs; answers their stop. */
    private readonly keepReady: () => Promise<(() => Promise<void>) | undefined> = async () => undefined,
  ) {}

  /**
   * The host's heartbeat while it runs, every HOST_HEARTBEAT_SECONDS. A drained host
   * (draining, and none of its jobs left) stops: its worker exits, for the upgrade or
   * the removal the drain was for. A drain that outlasts its timeout stops it too: the
   * jobs left there are lost with the host, and move to others (unless a worker of the
   * host is back before they count it lost).
   */
  private startBeating(): void {
    if (this.beating) return;
    this.beating = setInterval(() => {
      this.beat().then(
        ({ draining, holding }) => {
          if (!draining) this.drainSeenAt = null;
          if (!draining || this.getState() !== 'RUNNING') return;
          this.drainSeenAt ??= Date.now();
          const timedOut = this.drainTimeoutSeconds > 0 && Date.now() - this.drainSeenAt >= this.drainTimeoutSeconds * 1000;
          if (holding > 0 && !timedOut) return;
          if (holding > 0) this.logger?.warn({ host: this.hostId, jobs: holding }, 'drain timed out: the worker stops, and the jobs left move to other hosts');
          else this.logger?.info({ host: this.hostId }, 'host drained: the worker stops');
          this.shutdown();
        },
        (err: unknown) => this.logger?.warn({ err, host: this.hostId }, 'host heartbeat failed'),
      );
    }, HOST_HEARTBEAT_SECONDS * 1000);
  }

  private stopBeating(): void {
    if (this.beating) clearInterval(this.beating);
    this.beating = null;
  }

  getState(): ReturnType<Worker['getState']> {
    const states = [this.shared.getState(), this.host.getState()];
    return states.find((s) => s === 'FAILED') ?? states.find((s) => s !== 'RUNNING') ?? 'RUNNING';
  }

  /** Runs both until either stops; a failure of one stops the other, and is thrown. */
  async run(): Promise<void> {
    const stopOther = (other: Worker) => (err: unknown) => {
      if (other.getState() === 'RUNNING') other.shutdown();
      throw err;
    };
    this.startBeating();
    const stopReady = await this.keepReady();
    try {
      const both = Promise.all([this.shared.run().catch(stopOther(this.host)), this.host.run().catch(stopOther(this.shared))]);
      // Asked to stop while its holders were made ready: the workers (running from their run() call on) stop as they start.
      if (this.stopping) this.shutdown();
      await both;
    } finally {
      this.stopBeating();
      await stopReady?.();
    }
  }

  /** Runs both until `until` (or what it starts) settles, then stops them; answers what it answered. */
  async runUntil<T>(until: Promise<T> | (() => Promise<T>)): Promise<T> {
    const settles = typeof until === 'function' ? until() : until;
    this.startBeating();
    const stopReady = await this.keepReady();
    try {
      const [result] = await Promise.all([this.shared.runUntil(settles), this.host.runUntil(settles)]);
      return result;
    } finally {
      this.stopBeating();
      await stopReady?.();
    }
  }

  shutdown(): void {
    this.stopping = true;
    for (const w of [this.shared, this.host]) if (w.getState() === 'RUNNING') w.shutdown();
  }
}

export async function createWorker({ config, store, runner, connection, workflowBundle, metrics, logger, test }: WorkerDeps): Promise<HostWorker> {
  const bundle = workflowBundle ?? (config.DRAFTSMAN_WORKFLOW_BUNDLE ? { codePath: config.DRAFTSMAN_WORKFLOW_BUNDLE } : undefined);
  // A backend that cannot run steps as configured (a runtime the engine lacks) stops the worker here.
  await runner.ready();
  const noAccounting = runner.accountingProblem?.();
  if (noAccounting)
    logger?.warn(
      { reason: noAccounting },
      'steps run without CPU and memory accounting: their ledger has no such figures, and cpuSeconds budgets cannot be kept',
    );
  const dataConverter = dataConverterFor(config);
  const jobs = new JobsClient(new Client({ connection, namespace: config.TEMPORAL_NAMESPACE, dataConverter }), {
    taskQueue: config.DRAFTSMAN_TASK_QUEUE,
  });
  const id = hostId(config.DRAFTSMAN_HOST_ID, await runner.hostKey());
  runner.identifyHost?.(id);
  const host = {
    id,
    taskQueue: hostTaskQueue(config.DRAFTSMAN_TASK_QUEUE, id),
    lostAfterSeconds: config.DRAFTSMAN_HOST_LOST_SECONDS,
    moves: config.DRAFTSMAN_HOST_LOST_MOVES,
  };
  const activities = createActivities({
    runner,
    store,
    config,
    metrics,
    log: logger,
    host,
    describeJob: (id) => jobs.describe(id),
    describeActivity: (id, activityId) => jobs.pendingActivity(id, activityId),
    starterIdentity: (id, runId) => jobs.starterIdentity(id, runId),
    wakeJob: (id) => jobs.wake(id),
    ...test,
  });
  const common = {
    connection,
    dataConverter,
    namespace: config.TEMPORAL_NAMESPACE,
    activities,
    maxConcurrentActivityTaskExecutions: config.DRAFTSMAN_MAX_CONCURRENT_STEPS,
    // A cancel reaches a running step with the answer to its next heartbeat, so
    // heartbeats are sent often rather than throttled to most of the timeout.
    maxHeartbeatThrottleInterval: '500ms',
    // Steps in flight are left running, to be re-attached by the next worker, not killed.
    shutdownGraceTime: '5s',
  } as const;
  const shared = await Worker.create({
    ...common,
    taskQueue: config.DRAFTSMAN_TASK_QUEUE,
    ...(bundle ? { workflowBundle: bundle } : { workflowsPath: require.resolve('../workflows') }),
    // A workflow's tasks go to the worker that ran it last; when that worker died, they
    // wait this long before any worker may take them (a cancel sent then waits too).
    // Replaying a job's history elsewhere is cheap, a lost 10 s (the default) is not.
    stickyQueueScheduleToStartTimeout: '3s',
  });
  const own = await Worker.create({ ...common, taskQueue: host.taskQueue });
  const hosts = new HostStore(store.pool, config.DRAFTSMAN_TASK_QUEUE);
  const beat = async (starting = false) =>
    hosts.heartbeat(
      {
        id: host.id,
        taskQueue: host.taskQueue,
        capacity: config.DRAFTSMAN_HOST_CAPACITY ?? config.DRAFTSMAN_MAX_CONCURRENT_STEPS,
        freeDiskMb: (await diskRoom(config))?.freeMb ?? null,
        minFreeDiskMb: config.DRAFTSMAN_MIN_FREE_DISK_MB,
      },
      starting,
    );
  // Heard from before it takes work: placement only sends jobs to hosts it has heard from.
  // A host that starts brings room: the first jobs waiting for one look again now.
  await beat(true);
  await Promise.all((await hosts.firstWaiting(WAKE_ON_START)).map((jobId) => jobs.wake(jobId).catch(() => undefined)));
  const keepReady = async () =>
    runner.keepReady?.(config.DRAFTSMAN_READY_HOLDERS, (err) =>
      logger?.warn({ err, host: host.id }, 'making a ready network holder failed; jobs make their own'),
    );
  return new HostWorker(shared, own, host.id, () => beat(), logger, config.DRAFTSMAN_DRAIN_TIMEOUT_SECONDS, keepReady);
}

/**
 * Registers Draftsman's search attributes in the namespace if they are missing;
 * the job workflow sets them and would fail its tasks without them.
 */
export async function ensureSearchAttributes(connection: NativeConnection, namespace: string): Promise<void> {
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  const { IndexedValueType } = temporal.api.enums.v1;
  const wanted = (k: (typeof SEARCH_ATTRIBUTES)[keyof typeof SEARCH_ATTRIBUTES]) =>
    k.type === 'KEYWORD_LIST' ? IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST : IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
  // A type cannot be changed in place: a namespace that has one under another type needs the operator.
  const clash = Object.values(SEARCH_ATTRIBUTES).find((k) => k.name in (customAttributes ?? {}) && customAttributes![k.name] !== wanted(k));
  if (clash) {
    throw new Error(
      `the search attribute ${clash.name} exists in namespace ${namespace} with another type; remove it (temporal operator search-attribute remove) and start the worker again`,
    );
  }
  const missing = Object.values(SEARCH_ATTRIBUTES).filter((k) => !(k.name in (customAttributes ?? {})));
  if (missing.length === 0) return;
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map((k) => [k.name, wanted(k)])),
  });
}
