import { firstUngranted, isGranted, parseGrants, specSecretRefs } from './grants';

describe('parseGrants', () => {
  it.each([
    [undefined, null],
    ['', null],
    ['  \n', null],
    ['ci=npm-token', [{ principal: 'ci', prefix: false, refs: ['npm-token'] }]],
    [
      'ci=a+b, bot=*',
      [
        { principal: 'ci', prefix: false, refs: ['a', 'b'] },
        { principal: 'bot', prefix: false, refs: ['*'] },
      ],
    ],
    ['# comment\nsdk:*=gh.token', [{ principal: 'sdk:', prefix: true, refs: ['gh.token'] }]],
    ['*=shared', [{ principal: '', prefix: true, refs: ['shared'] }]],
    ['sdk:worker@host=x', [{ principal: 'sdk:worker@host', prefix: false, refs: ['x'] }]],
  ])('%j -> %j', (text, grants) => {
    expect(parseGrants(text)).toEqual(grants);
  });

  it.each([
    ['ci', /entry 1 must be PRINCIPAL=REF/],
    ['=x', /entry 1 must be PRINCIPAL=REF/],
    ['c*i=x', /entry 1 must be PRINCIPAL=REF/],
    ['ci a=x', /entry 1 must be PRINCIPAL=REF/],
    ['ci=', /entry 1 \(ci\): "" is not a secret reference/],
    ['ci=a+', /entry 1 \(ci\): "" is not a secret reference/],
    ['ok=a, ci=Upper', /entry 2 \(ci\): "Upper" is not a secret reference/],
    ['ci=../etc', /"..\/etc" is not a secret reference/],
  ])('refuses %j', (text, message) => {
    expect(() => parseGrants(text)).toThrow(message);
  });
});

describe('isGranted', () => {
  const grants = parseGrants('ci=npm-token+gh-token, sdk:*=gh-token, admin=*, *=public-mirror');
  it.each([
    ['ci', 'npm-token', true],
    ['ci', 'gh-token', true],
    ['ci', 'prod-db', false],
    ['ci2', 'npm-token', false],
    ['c', 'npm-token', false],
    ['sdk:builder', 'gh-token', true],
    ['sdk:builder', 'npm-token', false],
    ['sdk:', 'gh-token', true],
    ['admin', 'prod-db', true],
    ['anyone', 'public-mirror', true],
    ['anyone', 'prod-db', false],
  ])('%s may name %s: %s', (principal, ref, granted) => {
    expect(isGranted(grants, principal, ref)).toBe(granted);
  });

  it('no grants configured: every principal may name every reference', () => {
    expect(isGranted(null, 'anyone', 'prod-db')).toBe(true);
  });
});

describe('firstUngranted over a spec', () => {
  const grants = parseGrants('ci=npm-token');
  it.each([
    [{ secrets: {}, gitTokenSecret: null }, null],
    [{ secrets: { NPM_TOKEN: 'npm-token' }, gitTokenSecret: null }, null],
    [
      { secrets: { NPM_TOKEN: 'npm-token', DB: 'prod-db' }, gitTokenSecret: null },
      { field: 'secrets.DB', ref: 'prod-db' },
    ],
    [
      { secrets: { NPM_TOKEN: 'npm-token' }, gitTokenSecret: 'gh-token' },
      { field: 'gitTokenSecret', ref: 'gh-token' },
    ],
    [{ secrets: {}, gitTokenSecret: null, credentials: [{ secret: 'npm-token' }] }, null],
    [
      { secrets: { NPM_TOKEN: 'npm-token' }, gitTokenSecret: null, credentials: [{ secret: 'npm-token' }, { secret: 'model-key' }] },
      { field: 'credentials.1.secret', ref: 'model-key' },
    ],
  ])('%j -> %j', (spec, ungranted) => {
    expect(firstUngranted(grants, 'ci', specSecretRefs(spec))).toEqual(ungranted);
  });
});
