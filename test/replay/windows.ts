/**
 * The timing windows a stored history is kept for, read from its events. A live run hits a
 * window only at some timings; the replay test checks that the history it relies on has it.
 */

/** The events a workflow task's own commands record: nothing that happened outside the workflow. */
const COMMAND_EVENTS = [
  'markerRecordedEventAttributes',
  'upsertWorkflowSearchAttributesEventAttributes',
  'workflowPropertiesModifiedEventAttributes',
  'activityTaskScheduledEventAttributes',
  'timerStartedEventAttributes',
] as const;

type HistoryEvent = Partial<Record<(typeof COMMAND_EVENTS)[number] | 'workflowTaskCompletedEventAttributes' | 'workflowTaskScheduledEventAttributes', unknown>>;

/**
 * Whether the run's first workflow task ended before the workflow waited on anything: its
 * commands are followed by a new task with nothing in between. A query that comes with the
 * first task makes Core complete it early (after the first activation, or right after a
 * local activity's marker, before the workflow saw its result); the rest of that
 * activation is decided in the next task, and replay must decide it there too.
 */
export function firstTaskSplit(history: { events?: readonly object[] | null }): boolean {
  // The SDK's events and the CLI's JSON form name these fields alike.
  const events = (history.events ?? []) as HistoryEvent[];
  const completed = events.findIndex((e) => e.workflowTaskCompletedEventAttributes);
  if (completed < 0) return false;
  for (const e of events.slice(completed + 1)) {
    if (e.workflowTaskScheduledEventAttributes) return true;
    if (!COMMAND_EVENTS.some((k) => e[k])) return false;
  }
  return false;
}
