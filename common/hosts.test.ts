import { chooseHost, currentWait, type HostRow, hostView, SILENT_AFTER_SECONDS } from './hosts';

const now = new Date('2026-12-01T12:00:00Z');
const ago = (s: number) => new Date(now.getTime() - s * 1000);
const host = (id: string, extra: Partial<HostRow> = {}): HostRow => ({
  id,
  taskQueue: `q@${id}`,
  capacity: 2,
  freeDiskMb: 10_000,
  minFreeDiskMb: 1_000,
  seenAt: ago(1),
  startedAt: ago(600),
  draining: false,
  ...extra,
});
const load = (o: Record<string, number>) => new Map(Object.entries(o));
const picked = (c: ReturnType<typeof chooseHost>) => ('host' in c ? c.host.id : c.wait);

describe('chooseHost', () => {
  it.each([
    ['the host with the most room', [host('a'), host('b')], { a: 1 }, 1, 'b'],
    ['a tie: the less busy, then by id', [host('b', { capacity: 3 }), host('a', { capacity: 2 })], { b: 1 }, 1, 'a'],
    ['a tie in room and load: by id', [host('b'), host('a')], {}, 1, 'a'],
    ['a full host is passed over', [host('a', { capacity: 1 }), host('b', { capacity: 1 })], { a: 1 }, 1, 'b'],
    ['every host full: the job waits with its position', [host('a', { capacity: 1 })], { a: 1 }, 3, 'waiting for a host with room (position 3 in the queue)'],
    ['room for the first in line but not for the third', [host('a', { capacity: 4 })], { a: 2 }, 3, 'waiting for a host with room (position 3 in the queue)'],
    ['room for the second in line', [host('a', { capacity: 4 })], { a: 2 }, 2, 'a'],
    ['a draining host takes nothing', [host('a', { draining: true }), host('b')], { b: 1 }, 1, 'b'],
    ['every host draining', [host('a', { draining: true })], {}, 1, 'waiting for a host: every host drains'],
    ['a silent host takes nothing', [host('a', { seenAt: ago(SILENT_AFTER_SECONDS + 1) }), host('b')], {}, 1, 'b'],
    ['only silent hosts', [host('a', { seenAt: ago(SILENT_AFTER_SECONDS + 1) })], {}, 1, 'waiting for a host: none has been heard from lately'],
    ['no host at all', [], {}, 1, 'waiting for a host: none has started'],
    ['below its disk floor', [host('a', { freeDiskMb: 10 }), host('b', { capacity: 1 })], {}, 1, 'b'],
    ['every host below its disk floor', [host('a', { freeDiskMb: 10 })], {}, 1, 'waiting for a host with disk space: every host is below its disk floor'],
    ['no floor, or disk not measured', [host('a', { freeDiskMb: 10, minFreeDiskMb: 0 }), host('b', { freeDiskMb: null, capacity: 1 })], {}, 1, 'a'],
  ])('%s', (_name, hosts, running, position, expected) => {
    expect(picked(chooseHost(hosts, load(running), now, position))).toBe(expected);
  });
});

describe('hostView', () => {
  it.each([
    ['taking jobs', host('a'), 1, 1, 'up'],
    ['draining with jobs still there', host('a', { draining: true }), 0, 1, 'draining'],
    ['drained', host('a', { draining: true }), 0, 0, 'drained'],
    ['not heard from lately', host('a', { seenAt: ago(SILENT_AFTER_SECONDS + 1) }), 0, 0, 'silent'],
  ])('%s', (_name, row, running, holding, state) => {
    expect(hostView(row, running, holding, now)).toEqual({
      id: 'a',
      state,
      capacity: 2,
      running,
      holding,
      freeDiskMb: row.freeDiskMb,
      seenAt: row.seenAt.toISOString(),
      startedAt: row.startedAt.toISOString(),
    });
  });
});

describe('currentWait', () => {
  it.each([
    ['a room wait written at another place: today’s place', 'waiting for a host with room (position 4 in the queue)', 2, 'waiting for a host with room (position 2 in the queue)'],
    ['a room wait, no place known', 'waiting for a host with room (position 4 in the queue)', null, 'waiting for a host with room (position 4 in the queue)'],
    ['another reason stays', 'waiting for a host: every host drains', 1, 'waiting for a host: every host drains'],
    ['the disk guard stays', 'waiting for disk space: 10 MiB free', 3, 'waiting for disk space: 10 MiB free'],
  ])('%s', (_name, stored, position, expected) => {
    expect(currentWait(stored, position)).toBe(expected);
  });
});
