import { decodeCursor, encodeCursor } from './list-cursor';

describe('list cursors', () => {
  it.each([[{ createdUs: '1764633600123456', id: 'job-1' }], [{ createdUs: '0', id: 'job-00000000000000000000000000000000' }], [{ createdUs: '-1', id: 'a' }]])(
    '%j survives the round trip',
    (p) => {
      const text = encodeCursor(p);
      expect(text).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(decodeCursor(text)).toEqual(p);
    },
  );

  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  it.each([
    ['empty', ''],
    ['not base64url', 'abc$'],
    ['not JSON', Buffer.from('nope').toString('base64url')],
    ['an object', b64({ createdUs: '1', id: 'job-1' })],
    ['three items', b64(['1', 'job-1', 'x'])],
    ['a number time', b64([1, 'job-1'])],
    ['a time with a fraction', b64(['1.5', 'job-1'])],
    ['an id with a slash', b64(['1', '../etc'])],
    ['too long', 'a'.repeat(401)],
  ])('%s is refused', (_title, text) => {
    expect(decodeCursor(text)).toBeNull();
  });
});
