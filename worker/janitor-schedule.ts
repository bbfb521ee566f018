/**
 * The janitor's Temporal side, set up by each worker at start: the schedule of its passes,
 * and a pass over the worker's own host when it starts.
 */
import { Client, ScheduleAlreadyRunning, ScheduleOverlapPolicy } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import type { Config } from '../common/config';
import type { Logger } from '../common/logger';
import { DEFAULT_TASK_QUEUE, JANITOR_SCHEDULE_ID, JANITOR_WORKFLOW_TYPE } from '../common/names';
import type { HostWorker } from './worker';

/**
 * Creates the janitor's schedule, or updates its interval if it exists. Every
 * worker calls this at start-up; the schedule id makes it one schedule per
 * namespace and task queue.
 */
export async function ensureJanitorSchedule(connection: NativeConnection, config: Config): Promise<void> {
  const every = config.DRAFTSMAN_JANITOR_INTERVAL_SECONDS;
  if (every === 0) return;
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  const scheduleId = janitorScheduleId(config);
  const action = {
    type: 'startWorkflow' as const,
    workflowType: JANITOR_WORKFLOW_TYPE,
    workflowId: scheduleId,
    taskQueue: config.DRAFTSMAN_TASK_QUEUE,
  };
  try {
    await client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: `${every}s` }] },
      action,
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(scheduleId).update((s) => ({
      ...s,
      spec: { intervals: [{ every: `${every}s` }] },
      action,
    }));
  }
}

/**
 * A host whose worker starts (a restart, or a host that was lost and came back) has its
 * engine swept at once rather than at the schedule's next pass: what jobs moved away from
 * it, or ended while it was gone, left there. Best effort: the schedule sweeps it anyway.
 */
export async function sweepHostOnStart(connection: NativeConnection, config: Config, worker: HostWorker, logger?: Logger): Promise<void> {
  if (config.DRAFTSMAN_JANITOR_INTERVAL_SECONDS === 0) return;
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  const hostQueue = worker.host.options.taskQueue;
  await client.workflow
    .start(JANITOR_WORKFLOW_TYPE, {
      taskQueue: config.DRAFTSMAN_TASK_QUEUE,
      workflowId: `${janitorScheduleId(config)}-start-${worker.hostId}`,
      args: [{ hosts: [hostQueue] }],
      workflowIdConflictPolicy: 'USE_EXISTING',
    })
    .catch((err: unknown) => logger?.warn({ err, host: worker.hostId }, 'the sweep of the starting host could not be started; the schedule sweeps it'));
}

export function janitorScheduleId(config: Pick<Config, 'DRAFTSMAN_TASK_QUEUE'>): string {
  return config.DRAFTSMAN_TASK_QUEUE === DEFAULT_TASK_QUEUE ? JANITOR_SCHEDULE_ID : `${JANITOR_SCHEDULE_ID}-${config.DRAFTSMAN_TASK_QUEUE}`;
}
