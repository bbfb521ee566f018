import { listJobsQuery, logsQuery, waitQuery } from './schemas';

const accepts = (schema: { safeParse(v: unknown): { success: boolean } }, value: unknown) => schema.safeParse(value).success;

it.each([
  ['2026-12-01T10:00:00Z', true],
  ['2026-12-01T10:00:00.123+02:00', true],
  ['2026-12-01T10:00:00-14:00', true],
  ['2026-12-01T10:00:00+14:01', false],
  ['6410-08-10T11:33:09.816-16:15', false],
  ['0000-01-01T00:00:00Z', false],
  ['0001-01-01T00:00:00Z', true],
  ['2026-02-30T10:00:00Z', false],
  ['2026-12-01', false],
  ['2026-12-01T10:00:00', false],
])('createdAfter %j accepted: %s', (value, ok) => {
  expect(accepts(listJobsQuery, { createdAfter: value })).toBe(ok);
});

it.each([
  ['12.0', true],
  ['123456789012345.999999', true],
  ['00000000000000000000000000000000', false],
  ['1.2.3', false],
  ['', false],
])('lastEventId %j accepted: %s', (value, ok) => {
  expect(accepts(logsQuery, { lastEventId: value })).toBe(ok);
});

it.each([
  ['0', true],
  ['120', true],
  ['121', false],
  ['-1', false],
  ['1.5', false],
  ['soon', false],
])('wait timeout %j accepted: %s', (value, ok) => {
  expect(accepts(waitQuery, { timeout: value })).toBe(ok);
});

it.each([
  [{ principal: 'ci' }, true],
  [{ principal: 'c\u0000i' }, false],
  [{ repo: 'https://example.com/r.git\u0000' }, false],
  [{ principal: '' }, false],
])('list filter %j accepted: %s (PostgreSQL text holds no NUL)', (query, ok) => {
  expect(accepts(listJobsQuery, query)).toBe(ok);
});
