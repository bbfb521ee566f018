import type { Request } from 'express';
import type { Session, SessionStore } from '../db/session-store';
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

describe('browser sessions answer for the token they were opened with', () => {
  /** The session store in memory, as the API's database keeps it (shared by API processes and restarts). */
  function memorySessions() {
    const rows = new Map<string, Session>();
    let n = 0;
    const store = {
      open: async (t: { principal: string; binding: Buffer; scopes: readonly string[] }) => {
        const id = `s${n++}`;
        const s = { principal: t.principal, binding: t.binding, scopes: [...t.scopes], csrf: 'c', expiresAt: new Date(Date.now() + 3_600_000) };
        rows.set(id, s);
        return { ...s, id };
      },
      find: async (id: string) => rows.get(id) ?? null,
      close: async (id: string) => void rows.delete(id),
    };
    return store as unknown as SessionStore;
  }
  const request = (id: string) => ({ headers: { cookie: `draftsman_session=${id}` } }) as unknown as Request;
  const READER = 'alice:read:aaaaaaaaaaaaaaaa';
  const ADMIN = 'alice:read+write+approve+admin:bbbbbbbbbbbbbbbb';

  async function signIn(config: string, secret: string) {
    const sessions = memorySessions();
    const auth = new Authenticator(parseTokens(config, 't'), 60);
    auth.useSessions(sessions);
    const { id } = await auth.openSession(auth.verify(secret)!, 1);
    /** The same sessions seen by an API started with another configuration. */
    const after = (next: string) => {
      const other = new Authenticator(parseTokens(next, 't'), 60);
      other.useSessions(sessions);
      return other.session(request(id));
    };
    return { auth, id, after };
  }

  it.each([
    ['the configuration unchanged', READER, ['read']],
    ['another token of the same name added first, with more scopes', `${ADMIN},${READER}`, ['read']],
    ['its scopes grown', 'alice:read+write:aaaaaaaaaaaaaaaa', ['read']],
    ['its token taken out (only another of the name left)', ADMIN, null],
    ['its token replaced by a new one under the same name', 'alice:read:cccccccccccccccc', null],
    ['its scopes shrunk', 'alice:write:aaaaaaaaaaaaaaaa', null],
  ])('%s: %j', async (_what, next, scopes) => {
    const { auth, id, after } = await signIn(READER, 'aaaaaaaaaaaaaaaa');
    // Positive control: the session works where it was opened.
    expect((await auth.session(request(id)))?.token.scopes).toEqual(['read']);
    const seen = await after(next);
    expect(seen ? seen.token.scopes : null).toEqual(scopes);
  });

  it('sign-in attempts are limited per client address', () => {
    const auth = new Authenticator([], 60, 3);
    expect([1, 2, 3].map(() => auth.admitSignIn('10.0.0.1'))).toEqual([0, 0, 0]);
    expect(auth.admitSignIn('10.0.0.1')).toBeGreaterThan(0);
    expect(auth.admitSignIn('10.0.0.2')).toBe(0);
  });
});
