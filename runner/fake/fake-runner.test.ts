import { runnerContract } from '../runner.contract';
import { FakeRunner } from './fake-runner';

const runner = new FakeRunner({ images: ['fake:1'], secondMs: 20 });

runnerContract('FakeRunner', () => ({
  runner,
  image: 'fake:1',
  missingImage: 'fake:missing',
  graceSeconds: 1,
  cleanup: async (jobIds) => {
    for (const id of jobIds) await runner.removeJob(id);
  },
  burn: (seconds) => `fake-burn ${seconds}`,
}));

describe('FakeRunner', () => {
  it('counts starts per step, and a lost container is missing', async () => {
    const r = new FakeRunner({ secondMs: 5 });
    const step = { jobId: 'j', kind: 'setup' as const, index: 0, image: 'x', command: 'sleep 100', env: {}, timeoutSeconds: 5 };
    await r.start(step);
    await r.start(step);
    expect(r.starts.get('fake-j-setup-0')).toBe(1);
    r.lose(step);
    expect(await r.status(step)).toEqual({ state: 'missing' });
  });

  it('an unknown command fails with 127 and says so on stderr', async () => {
    const r = new FakeRunner();
    const step = { jobId: 'j', kind: 'setup' as const, index: 0, image: 'x', command: 'frobnicate', env: {}, timeoutSeconds: 5 };
    await r.start(step);
    expect((await r.wait(step)).exitCode).toBe(127);
  });
});
