import { MockActivityEnvironment } from '@temporalio/testing';
import { chaosProbe } from './chaos-probe';

describe('chaosProbe', () => {
  it.each([
    ['job-1-at-before-create', 'before-create', 'setup-0', true],
    ['job-1-at-before-create', 'after-create', 'setup-0', false],
    ['job-1-at-at-step-end-until-2', 'at-step-end', 'until-2', true],
    ['job-1-at-at-step-end-until-2', 'at-step-end', 'loop-2', false],
    ['job-1-batch', 'at-step-end', 'setup-0', false],
  ] as const)('%s at %s of %s announces: %s', async (jobId, boundary, step, announced) => {
    const lines: string[] = [];
    const probe = chaosProbe((l) => lines.push(l), 0);
    await new MockActivityEnvironment().run(() => probe(boundary, { jobId, step }));
    expect(lines).toEqual(announced ? [`[chaos-probe] ${boundary} ${jobId} ${step}`] : []);
  });

  it('announces a job once', async () => {
    const lines: string[] = [];
    const probe = chaosProbe((l) => lines.push(l), 0);
    const env = new MockActivityEnvironment();
    await env.run(() => probe('before-create', { jobId: 'j-at-before-create', step: 'setup-0' }));
    await env.run(() => probe('before-create', { jobId: 'j-at-before-create', step: 'setup-1' }));
    expect(lines).toHaveLength(1);
  });
});
