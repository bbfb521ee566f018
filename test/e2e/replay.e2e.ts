/**
 * Histories of representative jobs, captured from released versions (payloads
 * encrypted with the tests' key; `npm run replay:capture`), replayed against today's
 * workflow code: a change that would break a job in flight across an upgrade fails here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { dataConverterFor } from '../../common/codec';
import { loadConfig } from '../../common/config';
import { firstTaskSplit } from '../replay/windows';
import { TEST_DATA_DIR, TEST_PAYLOAD_KEYS } from '../../testing/env';

const DIR = path.join(__dirname, '..', 'replay', 'histories');
const files = fs
  .readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();

test('there are histories of every shape to replay', () => {
  const shapes = new Set(files.map((f) => f.replace(/^[^-]+-/, '').replace(/-run\d+\.json$|\.json$/, '')));
  expect([...shapes].sort()).toEqual([
    'approval-approved',
    'approval-timeout',
    'cancelled',
    'failed',
    'group',
    'job-timeout',
    'kept-after-loop',
    'loop-cancelled',
    'loop-continue-as-new',
    'publish-on-approved',
    'query-split',
    'resumed-after-loop',
    'step-timeout',
    'succeeded',
    'warm-cache',
    'warm-snapshot-restored',
    'warm-snapshot-saved',
  ]);
});

test('the publish-on-approved history holds the publish checkout between the patch and the publish step', () => {
  const stored = files.filter((f) => f.endsWith('-publish-on-approved.json'));
  expect(stored.length).toBeGreaterThan(0);
  for (const file of stored) {
    const { events } = JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8')) as {
      events: { activityTaskScheduledEventAttributes?: { activityType: { name: string } } }[];
    };
    const scheduled = events.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType.name] : []));
    expect(scheduled.slice(scheduled.indexOf('capturePatch'))).toEqual(['capturePatch', 'runSteps', 'preparePublish', 'runStep', 'endJob']);
  }
});

test('the query-split history has its window: its first workflow task ended before the workflow waited on anything', () => {
  const split = files.filter((f) => f.endsWith('-query-split.json'));
  expect(split.length).toBeGreaterThan(0);
  for (const file of split) expect(firstTaskSplit(JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8')) as { events: [] })).toBe(true);
});

test.each(files)('%s replays without a nondeterminism error', async (file) => {
  const history: unknown = JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8'));
  await Worker.runReplayHistory(
    {
      workflowBundle: { codePath: path.join(TEST_DATA_DIR, 'workflow-bundle.js') },
      dataConverter: dataConverterFor(loadConfig({ DRAFTSMAN_PAYLOAD_KEYS: TEST_PAYLOAD_KEYS })),
    },
    history,
    file,
  );
});
