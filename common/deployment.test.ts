import { hostId, hostTaskQueue } from './deployment';

describe('host ids', () => {
  it.each([
    ['the configured one wins', 'host-a', 'engine-1@/var/run/docker.sock', 'host-a'],
    ['derived from the engine key', undefined, 'engine-1@/var/run/docker.sock', expect.stringMatching(/^h[0-9a-f]{12}$/)],
  ])('%s', (_name, configured, key, expected) => {
    expect(hostId(configured, key)).toEqual(expected);
  });

  it('is the same for one engine, and differs for two engines sharing an id at two addresses', () => {
    expect(hostId(undefined, 'E@/run/a.sock')).toBe(hostId(undefined, 'E@/run/a.sock'));
    expect(hostId(undefined, 'E@/run/a.sock')).not.toBe(hostId(undefined, 'E@/run/b.sock'));
  });

  it('names the host queue beside the shared one', () => {
    expect(hostTaskQueue('draftsman', 'h0123456789ab')).toBe('draftsman@h0123456789ab');
  });
});
