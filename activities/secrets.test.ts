import { secretFinder, secretMasker, SecretStore, UnknownSecretError } from './secrets';

/** The base64 of a secret inside a longer text. */
const b64In = (before: string, secret: string, after: string) => Buffer.from(before + secret + after).toString('base64');

describe('secretMasker', () => {
  const mask = secretMasker(['S3cr3t/Value+xyz&', 'line-one-secret\nline-two-secret', 'abc']);
  it.each([
    ['the value', 'token=S3cr3t/Value+xyz& done', 'token=*** done'],
    ['its base64', `b64 ${Buffer.from('S3cr3t/Value+xyz&').toString('base64')}`, 'b64 ***'],
    ['its base64url', `u ${Buffer.from('S3cr3t/Value+xyz&').toString('base64url')}`, 'u ***'],
    ['its URL encoding', `q=${encodeURIComponent('S3cr3t/Value+xyz&')}`, 'q=***'],
    ['each line of a multi-line secret', 'line-two-secret is here', '*** is here'],
    ['its base64 inside a longer string, at offset 0', `x ${b64In('', 'S3cr3t/Value+xyz&', ' and more')} y`, /^x \S*\*\*\*\S* y$/],
    ['its base64 inside a longer string, at offset 1', `x ${b64In('a', 'S3cr3t/Value+xyz&', ' and more')} y`, /^x \S*\*\*\*\S* y$/],
    ['its base64 inside a longer string, at offset 2', `x ${b64In('ab', 'S3cr3t/Value+xyz&', '')} y`, /^x \S*\*\*\*\S* y$/],
    ['its base64url inside a longer string', `x ${Buffer.from('{"t":"S3cr3t/Value+xyz&"}').toString('base64url')} y`, /^x \S*\*\*\*\S* y$/],
    [
      'its hex, either case',
      `h ${Buffer.from('S3cr3t/Value+xyz&').toString('hex')} ${Buffer.from('S3cr3t/Value+xyz&').toString('hex').toUpperCase()}`,
      'h *** ***',
    ],
    ['its URL encoding with lower-case escapes', `q=${encodeURIComponent('S3cr3t/Value+xyz&').replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())}`, 'q=***'],
    ['nothing in ordinary text', 'build passed', 'build passed'],
    ['not a value shorter than 4 characters', 'abc', 'abc'],
  ])('masks %s', (_n, input, expected) => {
    if (expected instanceof RegExp) {
      expect(mask(input)).toMatch(expected);
      // No trace of the secret's own base64 core is left.
      expect(mask(input)).not.toContain(Buffer.from('S3cr3t/Value+xyz&').toString('base64').slice(4, 16));
    } else expect(mask(input)).toBe(expected);
  });

  it('does not mask the encoded forms of short secrets (they would turn up by chance)', () => {
    const short = secretMasker(['abcdefg']);
    expect(short(Buffer.from('xxabcdefgxx').toString('base64'))).toBe(Buffer.from('xxabcdefgxx').toString('base64'));
    expect(short('abcdefg')).toBe('***');
  });
});

describe('secretFinder', () => {
  it('finds a secret in any masked form', () => {
    const has = secretFinder(['S3cr3t/Value+xyz&']);
    expect(has('export TOKEN=S3cr3t/Value+xyz&')).toBe(true);
    expect(has(Buffer.from('prefix S3cr3t/Value+xyz& suffix').toString('base64'))).toBe(true);
    expect(has('nothing here')).toBe(false);
  });
});

describe('SecretStore', () => {
  it('reads the environment and names the missing reference', () => {
    const store = new SecretStore(undefined, { DRAFTSMAN_SECRET_NPM_TOKEN_V2: 'x' });
    expect(store.resolve('npm-token.v2')).toBe('x');
    expect(() => store.resolve('other')).toThrow(UnknownSecretError);
  });
});
