import { usageUsec } from './cgroups';

describe('usageUsec (cgroup v2 cpu.stat)', () => {
  it.each([
    ['usage_usec 2048000\nuser_usec 2000000\nsystem_usec 48000\n', 2048000],
    ['nr_periods 0\nusage_usec 17\n', 17],
    ['user_usec 5\n', null],
    ['', null],
  ])('%j -> %s', (stat, expected) => {
    expect(usageUsec(stat)).toBe(expected);
  });
});
