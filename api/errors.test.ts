import { HttpError, PROBLEMS, problem, requestIdFrom } from './errors';

describe('requestIdFrom', () => {
  const make = () => 'made';
  it.each([
    ['abc', 'abc'],
    ['ci-run.42:attempt_1', 'ci-run.42:attempt_1'],
    ['x'.repeat(128), 'x'.repeat(128)],
    ['x'.repeat(129), 'made'],
    ['', 'made'],
    ['a b', 'made'],
    ['id/1', 'made'],
    ['é', 'made'],
    [undefined, 'made'],
    [['a', 'b'], 'made'],
  ])('%j -> %j', (header, id) => {
    expect(requestIdFrom(header, make)).toBe(id);
  });
});

describe('problem documents', () => {
  it.each(Object.entries(PROBLEMS))('%s: type, title and status from the one table', (code, { status, title }) => {
    const p = problem(code as keyof typeof PROBLEMS, 'what happened', 'req-1');
    expect(p).toEqual({ type: `/problems/${code}`, title, status, detail: 'what happened', instance: 'req-1', code });
    expect(new HttpError(code as keyof typeof PROBLEMS, 'x').status).toBe(status);
  });

  it('names the field when there is one', () => {
    expect(problem('invalid_spec', 'commit: bad', 'r', 'commit')).toMatchObject({ field: 'commit', status: 400 });
  });
});
