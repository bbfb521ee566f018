import type { ManagedResource } from '../runner/runner';
import { type JobLiveness, planSweep } from './janitor-plan';

const step = (jobId: string, extra: Partial<ManagedResource> = {}): ManagedResource => ({
  type: 'step',
  name: `draftsman-${jobId}-setup-0`,
  jobId,
  running: true,
  deadline: 1000,
  ...extra,
});
const volume = (jobId: string): ManagedResource => ({ type: 'workspace', name: `draftsman-${jobId}-workspace`, jobId });
const holder = (jobId: string): ManagedResource => ({ type: 'holder', name: `draftsman-${jobId}-holder`, jobId, running: true });

describe('planSweep', () => {
  it.each<[string, ManagedResource, JobLiveness | undefined, number, string | null]>([
    ['removes a step of an ended job', step('a'), 'ended', 0, 'remove'],
    ['removes a workspace of an ended job', volume('a'), 'ended', 0, 'remove'],
    ['removes a step of a job Temporal does not know', step('a'), 'unknown', 0, 'remove'],
    ['treats a job missing from the lookup as unknown', step('a'), undefined, 0, 'remove'],
    ['keeps a step of a running job within its deadline', step('a'), 'running', 1000, null],
    ['keeps a step of a running job within the slack', step('a'), 'running', 1010, null],
    ['stops a running step past deadline and slack', step('a'), 'running', 1011, 'stop'],
    ['leaves an exited step past its deadline to its worker', step('a', { running: false }), 'running', 5000, null],
    ['keeps the workspace of a running job', volume('a'), 'running', 5000, null],
    ['removes the holder of an ended job', holder('a'), 'ended', 0, 'remove'],
    ['keeps the holder of a running job, however long it runs', holder('a'), 'running', 1e9, null],
    ['keeps a step without a deadline label', step('a', { deadline: undefined }), 'running', 5000, null],
    ['removes a step of a job moved to another host, though it runs', step('a'), 'moved', 0, 'remove'],
    ['removes the workspace of a job moved to another host', volume('a'), 'moved', 0, 'remove'],
  ])('%s', (_name, resource, state, now, expected) => {
    const liveness = new Map<string, JobLiveness>(state ? [[resource.jobId, state]] : []);
    const actions = planSweep([resource], liveness, now, 10);
    expect(actions.map((a) => a.action)[0] ?? null).toBe(expected);
  });

  it('removes steps, then holders, then workspaces, and stops before removing', () => {
    const liveness = new Map<string, JobLiveness>([
      ['a', 'ended'],
      ['b', 'running'],
    ]);
    const actions = planSweep([volume('a'), holder('a'), step('a'), step('b')], liveness, 5000, 10);
    expect(actions.map((a) => `${a.action}:${a.resource.name}`)).toEqual([
      'stop:draftsman-b-setup-0',
      'remove:draftsman-a-setup-0',
      'remove:draftsman-a-holder',
      'remove:draftsman-a-workspace',
    ]);
  });
});
