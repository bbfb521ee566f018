import { DefaultLogger, type LogLevel, NativeConnection, Runtime, Worker, type WorkflowBundleOption } from '@temporalio/worker';
import Docker from 'dockerode';
import { createActivities } from '../activities';
import type { Config } from '../common/config';
import type { JobStore } from '../db/store';
import { DockerRunner } from '../runner/docker/docker-runner';
import type { Runner } from '../runner/runner';

export function dockerRunnerFromConfig(config: Config, docker = new Docker()): DockerRunner {
  const [uid, gid] = config.DRAFTSMAN_STEP_USER.split(':');
  return new DockerRunner(docker, {
    user: `${uid}:${gid}`,
    memoryMb: config.DRAFTSMAN_STEP_MEMORY_MB,
    cpus: config.DRAFTSMAN_STEP_CPUS,
    pidsLimit: config.DRAFTSMAN_STEP_PIDS_LIMIT,
    network: config.DRAFTSMAN_STEP_NETWORK,
    stopGraceSeconds: config.DRAFTSMAN_STOP_GRACE_SECONDS,
  });
}

/** Sets the SDK's log level; the runtime is process-wide and can be installed once only. */
export function installRuntime(level: LogLevel): void {
  try {
    Runtime.install({ logger: new DefaultLogger(level) });
  } catch {
    // Already installed in this process (several workers, or tests): keep the first.
  }
}

export interface WorkerDeps {
  config: Config;
  store: JobStore;
  runner: Runner;
  connection: NativeConnection;
  /** A prebuilt bundle (tests build it once); otherwise the workflows are bundled at start-up. */
  workflowBundle?: WorkflowBundleOption;
}

export async function createWorker({ config, store, runner, connection, workflowBundle }: WorkerDeps): Promise<Worker> {
  return Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.DRAFTSMAN_TASK_QUEUE,
    ...(workflowBundle ? { workflowBundle } : { workflowsPath: require.resolve('../workflows') }),
    activities: createActivities({ runner, store, config }),
    maxConcurrentActivityTaskExecutions: config.DRAFTSMAN_MAX_CONCURRENT_STEPS,
    // Steps in flight are left to be re-attached by the next worker instead of being killed.
    shutdownGraceTime: '5s',
  });
}
