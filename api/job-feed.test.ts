import { resumePoint } from './job-feed';

it.each([
  ['12.0', { chunk: 12, line: 0 }],
  ['1.999999', { chunk: 1, line: 999999 }],
  ['123456789012345.3', { chunk: 123456789012345, line: 3 }],
  ['12', null],
  ['12.', null],
  ['.3', null],
  ['-1.0', null],
  ['1.2.3', null],
  ['1234567890123456.0', null],
  ['a.b', null],
  ['', null],
])('Last-Event-ID %j -> %j', (text, point) => {
  expect(resumePoint(text)).toEqual(point);
});
