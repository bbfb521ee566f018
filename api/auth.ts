import { createHash, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import type { NextFunction, Request, Response } from 'express';
import type { Session, SessionStore } from '../db/session-store';
import { HttpError } from './errors';

/** Constant-time equality of two strings (their digests, so lengths may differ). */
const sameText = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));

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

  private sessions: SessionStore | null = null;

  constructor(
    private readonly tokens: readonly ApiToken[],
    private readonly perMinute: number,
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

  /** The session a request's cookie names, with the token it answers for; null for none or an ended one. */
  async session(req: Request): Promise<(Session & { token: ApiToken }) | null> {
    const id = cookieValue(req.headers.cookie, SESSION_COOKIE);
    if (!id || !this.sessions) return null;
    const session = await this.sessions.find(id);
    const token = session && this.tokens.find((t) => t.name === session.principal);
    return session && token ? { ...session, token } : null;
  }

  /** Token bucket per token: `perMinute` requests a minute, in bursts of up to as many. */
  private admit(name: string): number {
    const now = Date.now();
    const b = this.buckets.get(name) ?? { tokens: this.perMinute, at: now };
    b.tokens = Math.min(this.perMinute, b.tokens + ((now - b.at) / 60_000) * this.perMinute);
    b.at = now;
    this.buckets.set(name, b);
    if (b.tokens < 1) return Math.ceil(((1 - b.tokens) * 60) / this.perMinute);
    b.tokens -= 1;
    return 0;
  }

  /**
   * Whether an Authorization header admits a request needing `scope`: the token's name,
   * or the problem to answer (with Retry-After seconds for a rate limit).
   */
  check(header: string | undefined, scope: Scope): { token: string } | { error: HttpError; retryAfter?: number } {
    const token = this.identify(header);
    if (!token) return { error: new HttpError('unauthorized', 'a valid bearer token is required') };
    if (!token.scopes.includes(scope)) return { error: new HttpError('forbidden', `the token ${token.name} lacks the ${scope} scope`) };
    const wait = this.admit(token.name);
    if (wait > 0) return { error: new HttpError('rate_limited', `too many requests for token ${token.name}; retry in ${wait} s`), retryAfter: wait };
    return { token: token.name };
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
        return next();
      }
      this.session(req).then((session) => {
        if (!session) return fail({ error: new HttpError('unauthorized', 'the session has ended: sign in again') });
        if (!session.token.scopes.includes(scope)) return fail({ error: new HttpError('forbidden', `the token ${session.principal} lacks the ${scope} scope`) });
        const csrf = req.headers['x-csrf-token'];
        if (opts.csrf !== false && !SAFE_METHODS.has(req.method) && (typeof csrf !== 'string' || !sameText(csrf, session.csrf))) {
          return fail({ error: new HttpError('forbidden', 'a request of a session that changes something needs its X-CSRF-Token') });
        }
        const wait = this.admit(session.principal);
        if (wait > 0) return fail({ error: new HttpError('rate_limited', `too many requests for token ${session.principal}; retry in ${wait} s`), retryAfter: wait });
        res.locals.token = session.principal;
        res.locals.session = true;
        next();
      }, next);
    };
  }
}
