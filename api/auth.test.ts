import { Authenticator, parseTokens } from './auth';

describe('parseTokens', () => {
  it('reads name:scopes:token entries, separated by commas or lines, skipping comments', () => {
    const tokens = parseTokens('# ops\nci:read+write:aaaaaaaaaaaaaaaa, dash:read:bbbbbbbbbbbbbbbb:with:colons', 'test');
    expect(tokens.map((t) => [t.name, t.scopes])).toEqual([
      ['ci', ['read', 'write']],
      ['dash', ['read']],
    ]);
    expect(parseTokens('ops:read+write+admin:aaaaaaaaaaaaaaaa', 't')[0]!.scopes).toEqual(['read', 'write', 'admin']);
  });

  it.each([
    ['no token', 'ci:read'],
    ['unknown scope', 'ci:root:aaaaaaaaaaaaaaaa'],
    ['an empty scope', 'ci:read+:aaaaaaaaaaaaaaaa'],
    ['short token', 'ci:read:short'],
    ['no name', ':read:aaaaaaaaaaaaaaaa'],
  ])('refuses %s', (_name, text) => {
    expect(() => parseTokens(text, 'DRAFTSMAN_API_TOKENS')).toThrow(/DRAFTSMAN_API_TOKENS/);
  });
});

describe('Authenticator', () => {
  const auth = new Authenticator(parseTokens('ci:read+write:aaaaaaaaaaaaaaaa,dash:read:bbbbbbbbbbbbbbbb', 't'), 60);

  it.each([
    ['Bearer aaaaaaaaaaaaaaaa', 'ci'],
    ['bearer bbbbbbbbbbbbbbbb', 'dash'],
    ['Bearer cccccccccccccccc', null],
    ['Basic aaaaaaaaaaaaaaaa', null],
    ['Bearer', null],
    [undefined, null],
  ])('identifies %s as %s', (header, name) => {
    expect(auth.identify(header)?.name ?? null).toBe(name);
  });
});
