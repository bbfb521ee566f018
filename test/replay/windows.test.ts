import { firstTaskSplit } from './windows';

const scheduled = { workflowTaskScheduledEventAttributes: {} };
const started = { workflowTaskStartedEventAttributes: {} };
const completed = { workflowTaskCompletedEventAttributes: {} };
const patch = { markerRecordedEventAttributes: { markerName: 'core_patch' } };
const local = { markerRecordedEventAttributes: { markerName: 'core_local_activity' } };
const upsert = { upsertWorkflowSearchAttributesEventAttributes: {} };
const activity = { activityTaskScheduledEventAttributes: {} };
const activityDone = { activityTaskCompletedEventAttributes: {} };
const signal = { workflowExecutionSignaledEventAttributes: {} };
const first = [{ workflowExecutionStartedEventAttributes: {} }, scheduled, started, completed];

it.each([
  ['split after the first activation (patches only)', [...first, patch, upsert, patch, upsert, scheduled], true],
  ["split right after a local activity's marker", [...first, patch, upsert, local, scheduled], true],
  ['one task up to the first activity, which then completes', [...first, patch, upsert, local, activity, activityDone, scheduled], false],
  ['a signal started the next task', [...first, patch, signal, scheduled], false],
  ['the first task not completed yet', [{ workflowExecutionStartedEventAttributes: {} }, scheduled, started], false],
  ['nothing after the first task', [...first, patch], false],
])('%s: %s', (_name, events, split) => {
  expect(firstTaskSplit({ events })).toBe(split);
});
