import { chooseHost, concurrencyKey, currentWait, type HostRow, hostView, type InLine, lineOrder, SILENT_AFTER_SECONDS } from './hosts';

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
    [
      'every host below its disk floor: the closest named',
      [host('a', { freeDiskMb: 10 }), host('b', { freeDiskMb: 900 })],
      {},
      1,
      'waiting for disk space: 900 MiB free on host b, below the floor of 1000 MiB',
    ],
    ['no floor, or disk not measured', [host('a', { freeDiskMb: 10, minFreeDiskMb: 0 }), host('b', { freeDiskMb: null, capacity: 1 })], {}, 1, 'a'],
  ])('%s', (_name, hosts, running, position, expected) => {
    expect(picked(chooseHost(hosts, load(running), now, position))).toBe(expected);
  });

  const lostAt = ago(30).getTime();
  it.each([
    ['a host the job lost takes it no more', [host('a'), host('b', { capacity: 1 })], [{ taskQueue: 'q@a', at: lostAt }], 'b'],
    [
      'unless its worker started since (it came back)',
      [host('a', { startedAt: ago(10) }), host('b', { capacity: 1 })],
      [{ taskQueue: 'q@a', at: lostAt }],
      'a',
    ],
    ['a loss elsewhere changes nothing', [host('a'), host('b', { capacity: 1 })], [{ taskQueue: 'q@c', at: lostAt }], 'a'],
    [
      'only the lost host: the job waits, saying so',
      [host('a')],
      [{ taskQueue: 'q@a', at: lostAt }],
      'waiting for a host: its own was lost, and no other has been heard from lately',
    ],
    [
      'two hosts lost',
      [host('a'), host('b'), host('c', { capacity: 1 })],
      [
        { taskQueue: 'q@a', at: lostAt },
        { taskQueue: 'q@b', at: lostAt },
      ],
      'c',
    ],
  ])('%s', (_name, hosts, lost, expected) => {
    expect(picked(chooseHost(hosts, load({}), now, 1, lost))).toBe(expected);
  });

  it.each([
    ["a host holding the job's caches before one with more room", [host('a', { capacity: 4 }), host('b')], ['q@b'], 'b'],
    ['the first preferred that has room', [host('a'), host('b'), host('c')], ['q@c', 'q@b'], 'c'],
    ['a preferred host that is full is passed over', [host('a'), host('b', { capacity: 1 })], ['q@b'], 'a'],
    ['a preferred host that drains is passed over', [host('a'), host('b', { draining: true })], ['q@b'], 'a'],
    ['a preference for a host that is gone changes nothing', [host('a'), host('b', { capacity: 3 })], ['q@z'], 'b'],
  ])('%s', (_name, hosts, prefer, expected) => {
    expect(picked(chooseHost(hosts, load({ b: hosts.find((h) => h.id === 'b')?.capacity === 1 ? 1 : 0 }), now, 1, [], prefer))).toBe(expected);
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
    [
      'a room wait written at another place: today’s place',
      'waiting for a host with room (position 4 in the queue)',
      2,
      'waiting for a host with room (position 2 in the queue)',
    ],
    ['a room wait, no place known', 'waiting for a host with room (position 4 in the queue)', null, 'waiting for a host with room (position 4 in the queue)'],
    ['another reason stays', 'waiting for a host: every host drains', 1, 'waiting for a host: every host drains'],
    ['the disk guard stays', 'waiting for disk space: 10 MiB free', 3, 'waiting for disk space: 10 MiB free'],
  ])('%s', (_name, stored, position, expected) => {
    expect(currentWait(stored, position)).toBe(expected);
  });
});

describe('lineOrder', () => {
  const j = (id: string, key = '', limit: number | null = null): InLine => ({ id, key, limit });
  it.each([
    ['no keys: submission order', [j('1'), j('2'), j('3')], {}, {}, ['1', '2', '3'], []],
    ['a key at its limit holds its jobs back', [j('a2', 'A', 1), j('b1', 'B', 1)], { A: 1 }, {}, ['b1'], ['a2']],
    ['only the first jobs of a key fit its room', [j('a1', 'A', 2), j('a2', 'A', 2), j('a3', 'A', 2)], { A: 1 }, {}, ['a1'], ['a2', 'a3']],
    ['a key never placed goes before one placed', [j('a2', 'A', 1), j('b1', 'B', 1)], {}, { A: 100 }, ['b1', 'a2'], []],
    ['the key placed longest ago first', [j('a3', 'A', 1), j('b2', 'B', 1)], {}, { A: 300, B: 200 }, ['b2', 'a3'], []],
    ['jobs without a key take turns as one key', [j('x2'), j('a1', 'A', 5)], {}, { '': 100 }, ['a1', 'x2'], []],
  ])('%s', (_name, line, held, last, order, blocked) => {
    const got = lineOrder(line, new Map(Object.entries(held)), new Map(Object.entries(last)));
    expect(got.order).toEqual(order);
    expect([...got.blocked.keys()]).toEqual(blocked);
  });

  it('with room for one job at a time, three jobs of A then three of B (limit 1 each) alternate, B first after A1', () => {
    const line = ['a1', 'a2', 'a3', 'b1', 'b2', 'b3'].map((id) => j(id, id[0]!.toUpperCase(), 1));
    const started: string[] = [];
    const last = new Map<string, number>();
    for (let t = 0; line.length; t++) {
      const [next] = lineOrder(line, new Map(), last).order;
      started.push(next!);
      last.set(next![0]!.toUpperCase(), t);
      line.splice(
        line.findIndex((x) => x.id === next),
        1,
      );
    }
    expect(started).toEqual(['a1', 'b1', 'a2', 'b2', 'a3', 'b3']);
  });

  it('says why a held-back job waits', () => {
    expect(lineOrder([j('a2', 'repo:r', 1)], new Map([['repo:r', 1]]), new Map()).blocked.get('a2')).toBe(
      'waiting for its concurrency key repo:r: 1 of its jobs hold a host (limit 1)',
    );
  });
});

describe('concurrencyKey', () => {
  it.each([
    ['repo', 'repo:https://example.com/r.git'],
    ['principal', 'principal:ci'],
    ['nightly', 'key:nightly'],
  ])('%s', (key, expected) => {
    expect(concurrencyKey(key, { repo: 'https://example.com/r.git', principal: 'ci' })).toBe(expected);
  });
});
