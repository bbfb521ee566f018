import { exitForApiError, exitForJob } from './exit-codes';

it.each([
  ['succeeded', 0],
  ['failed', 1],
  ['cancelled', 3],
  ['timed_out', 4],
  ['rejected', 5],
] as const)('a job that ended %s exits %d', (status, code) => {
  expect(exitForJob(status)).toBe(code);
});

it.each([
  [0, 6],
  [401, 7],
  [403, 7],
  [400, 8],
  [404, 8],
  [409, 8],
  [422, 8],
  [429, 8],
  [500, 8],
])('an API answer %d exits %d', (status, code) => {
  expect(exitForApiError(status)).toBe(code);
});
