import { createHash, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import type { NextFunction, Request, Response } from 'express';
import type { Session, SessionStore } from '../db/session-store';
import { HttpError } from './errors';

/** Constant-time equality of two strings (their digests, so lengths may differ). */
const sameText = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));
const sameBytes = (a: Buffer, b: Buffer) => a.length === b.length && timingSafeEqual(a, b);

/**
 * `read`: every GET of jobs; `write`: submitting, cancelling and rerunning jobs;
 * `approve`: deciding approval gates; `admin`: webhooks.
 */
export const SCOPES = ['read', 'write', 'approve', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiToken {
  name: string;
  scopes: readonly Scope[];
  /** sha256 of the token: only digests are kept and compared. */
  digest: Buffer;
}

const digest = (token: string) => createHash('sha256').update(token).digest();

/** What a session keeps of the token it was opened with: enough to tell which token it is, nothing to sign in with. */
export const sessionBinding = (token: ApiToken) => createHash('sha256').update('draftsman session binding\0').update(token.digest).digest();

/**
 * Parses `name:scopes:token` entries, separated by commas or newlines, where
 * scopes is one or more of `read`, `write`, `approve` and `admin` joined by `+` (`read+write`). Lines
 * starting with # are comments.
 */
export function parseTokens(text: string, source: string): ApiToken[] {
  return text
    .split(/[\n,]/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((entry, i) => {
      const [name, scopes, ...rest] = entry.split(':');
      const token = rest.join(':');
      const list = (scopes ?? '').split('+');
      if (!name || !token || !list.every((s) => (SCOPES as readonly string[]).includes(s))) {
        throw new Error(`${source}: entry ${i + 1} must be name:scopes:token, scopes being read, write, approve and admin joined by + (read+write)`);
      }
      if (token.length < 16) throw new Error(`${source}: the token of ${name} must have at least 16 characters`);
      return { name, scopes: list as Scope[], digest: digest(token) };
    });
}

export function loadTokens(config: { DRAFTSMAN_API_TOKENS?: string; DRAFTSMAN_API_TOKENS_FILE?: string }): ApiToken[] {
  const tokens: ApiToken[] = [];
  if (config.DRAFTSMAN_API_TOKENS) tokens.push(...parseTokens(config.DRAFTSMAN_API_TOKENS, 'DRAFTSMAN_API_TOKENS'));
  if (config.DRAFTSMAN_API_TOKENS_FILE) {
    tokens.push(...parseTokens(fs.readFileSync(config.DRAFTSMAN_API_TOKENS_FILE, 'utf8'), 'DRAFTSMAN_API_TOKENS_FILE'));
  }
  return tokens;
}

/** The cookie that carries a browser's session id (api/session.ts). */
export const SESSION_COOKIE = 'draftsman_session';

/** A cookie's value from a Cookie header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Bearer-token authentication, browser sessions opened with a token, and per-principal
 * rate limiting. A presented token is compared in constant time against every configured
 * digest, and is never logged or kept. A session answers for the token it was opened
 * with, with that token's scopes as they are now (a token taken out of the configuration
 * ends its sessions); a state-changing request of a session must carry its CSRF token.
 */
export class Authenticator {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly signIns = new Map<string, { tokens: number; at: number }>();

  private sessions: SessionStore | null = null;

  constructor(
    private readonly tokens: readonly ApiToken[],
    private readonly perMinute: number,
    /** Sign-in attempts a minute per client address (a token guessed by trying is slowed to this). */
    private readonly signInsPerMinute = 10,
  ) {}

  /** Sessions are kept in the API's database: the app that has it hands the store over. */
  useSessions(sessions: SessionStore): void {
    this.sessions = sessions;
  }

  identify(header: string | undefined): ApiToken | null {
    const m = /^Bearer ([^\s]+)$/i.exec(header ?? '');
    return m ? this.verify(m[1]!) : null;
  }

  /** The configured token a presented secret is, or null. */
  verify(secret: string): ApiToken | null {
    const presented = digest(secret);
    let found: ApiToken | null = null;
    for (const t of this.tokens) if (timingSafeEqual(t.digest, presented)) found = t;
    return found;
  }

  /**
   * The session a request's cookie names, with the token it answers for; null for none or
   * an ended one. A session answers for the token it was opened with, not its name: it
   * ends when that token is taken out of the configuration, or when the token's scopes no
   * longer include every scope it had then; it never gets the scopes of another token of
   * the same name.
   */
  async session(req: Request): Promise<(Session & { token: ApiToken }) | null> {
    const id = cookieValue(req.headers.cookie, SESSION_COOKIE);
    if (!id || !this.sessions) return null;
    const session = await this.sessions.find(id);
    if (!session) return null;
    const token = this.tokens.find((t) => sameBytes(sessionBinding(t), session.binding));
    if (!token || !session.scopes.every((s) => (token.scopes as readonly string[]).includes(s))) return null;
    return { ...session, token: { ...token, scopes: session.scopes as Scope[] } };
  }

  /** Opens a session for a token (the sign-in routes). */
  openSession(token: ApiToken, hours: number) {
    if (!this.sessions) throw new Error("sessions need the API's database");
    return this.sessions.open({ principal: token.name, binding: sessionBinding(token), scopes: token.scopes }, hours);
  }

  /** Token bucket per key: `perMinute` a minute, in bursts of up to as many; the seconds to wait, or 0. */
  private take(buckets: Map<string, { tokens: number; at: number }>, key: string, perMinute: number): number {
    const now = Date.now();
    const b = buckets.get(key) ?? { tokens: perMinute, at: now };
    b.tokens = Math.min(perMinute, b.tokens + ((now - b.at) / 60_000) * perMinute);
    b.at = now;
    buckets.set(key, b);
    if (b.tokens < 1) return Math.ceil(((1 - b.tokens) * 60) / perMinute);
    b.tokens -= 1;
    return 0;
  }

  private admit(name: string): number {
    return this.take(this.buckets, name, this.perMinute);
  }

  /** A sign-in attempt from a client address: 0, or the seconds it must wait (a 429). */
  admitSignIn(address: string): number {
    if (this.signIns.size > 10_000) this.signIns.clear();
    return this.take(this.signIns, address, this.signInsPerMinute);
  }

  /**
   * Whether an Authorization header admits a request needing `scope`: the token's name,
   * or the problem to answer (with Retry-After seconds for a rate limit).
   */
  check(header: string | undefined, scope: Scope): { token: string; scopes: readonly Scope[] } | { error: HttpError; retryAfter?: number } {
    const token = this.identify(header);
    if (!token) return { error: new HttpError('unauthorized', 'a valid bearer token is required') };
    if (!token.scopes.includes(scope)) return { error: new HttpError('forbidden', `the token ${token.name} lacks the ${scope} scope`) };
    const wait = this.admit(token.name);
    if (wait > 0) return { error: new HttpError('rate_limited', `too many requests for token ${token.name}; retry in ${wait} s`), retryAfter: wait };
    return { token: token.name, scopes: token.scopes };
  }

  /**
   * Middleware: the request needs a valid token with `scope`, as a bearer token or through
   * a session. `csrf: false` for routes that change nothing whatever their method (the
   * codec's POSTs, which the Temporal Web UI sends without Draftsman's header).
   */
  require(scope: Scope, opts: { csrf?: boolean } = {}) {
    return (req: Request, res: Response, next: NextFunction) => {
      const fail = (result: { error: HttpError; retryAfter?: number }) => {
        if (result.error.code === 'unauthorized') res.set('www-authenticate', 'Bearer realm="draftsman"');
        if (result.retryAfter) res.set('retry-after', String(result.retryAfter));
        next(result.error);
      };
      if (req.headers.authorization || !cookieValue(req.headers.cookie, SESSION_COOKIE)) {
        const result = this.check(req.headers.authorization, scope);
        if ('error' in result) return fail(result);
        res.locals.token = result.token;
        res.locals.scopes = result.scopes;
        return next();
      }
      this.session(req).then((session) => {
        if (!session) return fail({ error: new HttpError('unauthorized', 'the session has ended: sign in again') });
        if (!session.token.scopes.includes(scope))
          return fail({ error: new HttpError('forbidden', `the token ${session.principal} lacks the ${scope} scope`) });
        const csrf = req.headers['x-csrf-token'];
        if (opts.csrf !== false && !SAFE_METHODS.has(req.method) && (typeof csrf !== 'string' || !sameText(csrf, session.csrf))) {
          return fail({ error: new HttpError('forbidden', 'a request of a session that changes something needs its X-CSRF-Token') });
        }
        const wait = this.admit(session.principal);
        if (wait > 0)
          return fail({ error: new HttpError('rate_limited', `too many requests for token ${session.principal}; retry in ${wait} s`), retryAfter: wait });
        res.locals.token = session.principal;
        res.locals.scopes = session.token.scopes;
        res.locals.session = true;
        next();
      }, next);
    };
  }
}
