import { nextAttemptAt } from './dispatcher';

const schedule = [5, 60, 300];
const now = Date.parse('2026-12-03T10:00:00Z');

it.each([
  [1, '2026-12-03T10:00:05.000Z'],
  [2, '2026-12-03T10:01:00.000Z'],
  [3, '2026-12-03T10:05:00.000Z'],
  [4, null],
  [10, null],
])('after failed attempt %d the next is at %s', (attempts, at) => {
  expect(nextAttemptAt(attempts, schedule, now)?.toISOString() ?? null).toBe(at);
});
