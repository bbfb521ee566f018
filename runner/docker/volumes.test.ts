import { copyMounts, layerDriverOpts, layerVolumes, refVolume } from './volumes';

describe('layered volumes', () => {
  it('names the upper and work volumes after the layered one', () => {
    expect(layerVolumes('draftsman-d-j1')).toEqual({ upper: 'draftsman-d-j1-upper', work: 'draftsman-d-j1-work' });
  });

  it('gives the local driver an overlay over the three directories', () => {
    expect(layerDriverOpts({ lower: '/v/k/_data', upper: '/v/u/_data', work: '/v/w/_data' })).toEqual({
      type: 'overlay',
      device: 'overlay',
      o: 'lowerdir=/v/k/_data,upperdir=/v/u/_data,workdir=/v/w/_data',
    });
  });

  it.each([
    ['a relative path', 'v/k/_data'],
    ['a comma (another option)', '/v/k,upperdir=/etc'],
    ['a colon (another lower layer)', '/v/k:/etc'],
    ['an equals sign', '/v/k=1'],
    ['nothing', ''],
  ])('refuses a directory with %s', (_what, lower) => {
    expect(() => layerDriverOpts({ lower, upper: '/u', work: '/w' })).toThrow(/cannot layer/);
  });
});

describe('copy mounts', () => {
  it.each([
    ['a restore from a kept volume', { workspace: 'j' }, { kept: 'k' }, ['draftsman-d-kept-k:/from:ro', 'draftsman-d-j-workspace:/to:rw']],
    ['an empty cache', { cache: { jobId: 'j', name: 'npm' } }, null, [`${refVolume({ cache: { jobId: 'j', name: 'npm' } }, 'd')}:/to:rw`]],
  ] as const)('%s', (_what, to, from, expected) => {
    expect(copyMounts(to, from, 'd').map((m) => `${m.Source}:${m.Target}:${m.ReadOnly ? 'ro' : 'rw'}`)).toEqual(expected);
  });
});
