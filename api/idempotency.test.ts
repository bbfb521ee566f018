import { JOB_ID_PATTERN } from '../common/job';
import { bodyHash, canonicalJson, derivedJobId, idempotencyKey } from './idempotency';

describe('idempotencyKey', () => {
  it.each([
    [undefined, {}],
    ['a', { key: 'a' }],
    ['2b8c5d1e-7f3a-4c9b-9e1d-0a6f4b3c2d1e', { key: '2b8c5d1e-7f3a-4c9b-9e1d-0a6f4b3c2d1e' }],
    ['k'.repeat(255), { key: 'k'.repeat(255) }],
    ['k'.repeat(256), { problem: expect.stringMatching(/1 to 255 printable/) }],
    ['', { problem: expect.stringMatching(/1 to 255 printable/) }],
    ['has space', { problem: expect.stringMatching(/without spaces/) }],
    ['é', { problem: expect.stringMatching(/printable ASCII/) }],
    [['a', 'b'], { problem: 'send Idempotency-Key once' }],
  ])('%j -> %j', (header, result) => {
    expect(idempotencyKey(header)).toEqual(result);
  });
});

describe('canonicalJson and bodyHash', () => {
  it.each([
    [{ b: 1, a: 2 }, { a: 2, b: 1 }, true],
    [{ a: { y: [1, { d: 1, c: 2 }], x: null } }, { a: { x: null, y: [1, { c: 2, d: 1 }] } }, true],
    [{ a: 1, skipped: undefined }, { a: 1 }, true],
    [{ a: [1, 2] }, { a: [2, 1] }, false],
    [{ a: 1 }, { a: '1' }, false],
    [{ a: 1 }, { a: 1, b: null }, false],
    [null, undefined, true],
  ])('%j and %j hash equal: %s', (a, b, equal) => {
    expect(bodyHash(a) === bodyHash(b)).toBe(equal);
  });

  it('sorts keys at every depth', () => {
    expect(canonicalJson({ z: { b: 1, a: [{ d: 1, c: 2 }] }, y: 'x' })).toBe('{"y":"x","z":{"a":[{"c":2,"d":1}],"b":1}}');
  });
});

describe('derivedJobId', () => {
  const t = new Date('2026-12-01T10:00:00.000Z');
  it.each([
    ['same principal, key and first use', ['ci', 'k1', t], ['ci', 'k1', t], true],
    ['another principal', ['ci', 'k1', t], ['bot', 'k1', t], false],
    ['another key', ['ci', 'k1', t], ['ci', 'k2', t], false],
    ['the key seen anew after it was forgotten', ['ci', 'k1', t], ['ci', 'k1', new Date(t.getTime() + 1)], false],
    ['no confusion across the separator', ['ci\0k', '1', t], ['ci', 'k\x001', t], false],
  ] as [string, [string, string, Date], [string, string, Date], boolean][])('%s', (_title, a, b, same) => {
    const [ida, idb] = [derivedJobId(...a), derivedJobId(...b)];
    expect(ida).toMatch(JOB_ID_PATTERN);
    expect(ida).toMatch(/^job-[0-9a-f]{32}$/);
    expect(ida === idb).toBe(same);
  });
});
