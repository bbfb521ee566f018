import { secretMasker, SecretStore, UnknownSecretError } from './secrets';

describe('secretMasker', () => {
  const mask = secretMasker(['S3cr3t/Value+xyz&', 'line-one-secret\nline-two-secret', 'abc']);
  it.each([
    ['the value', 'token=S3cr3t/Value+xyz& done', 'token=*** done'],
    ['its base64', `b64 ${Buffer.from('S3cr3t/Value+xyz&').toString('base64')}`, 'b64 ***'],
    ['its base64url', `u ${Buffer.from('S3cr3t/Value+xyz&').toString('base64url')}`, 'u ***'],
    ['its URL encoding', `q=${encodeURIComponent('S3cr3t/Value+xyz&')}`, 'q=***'],
    ['each line of a multi-line secret', 'line-two-secret is here', '*** is here'],
    ['nothing in ordinary text', 'build passed', 'build passed'],
    ['not a value shorter than 4 characters', 'abc', 'abc'],
  ])('masks %s', (_n, input, expected) => {
    expect(mask(input)).toBe(expected);
  });
});

describe('SecretStore', () => {
  it('reads the environment and names the missing reference', () => {
    const store = new SecretStore(undefined, { DRAFTSMAN_SECRET_NPM_TOKEN_V2: 'x' });
    expect(store.resolve('npm-token.v2')).toBe('x');
    expect(() => store.resolve('other')).toThrow(UnknownSecretError);
  });
});
