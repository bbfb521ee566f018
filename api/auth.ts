import { createHash, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import type { NextFunction, Request, Response } from 'express';
import { HttpError } from './errors';

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

/**
 * Bearer-token authentication and per-token rate limiting. The presented token
 * is compared in constant time against every configured digest, and is never
 * logged or kept.
 */
export class Authenticator {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly tokens: readonly ApiToken[],
    private readonly perMinute: number,
  ) {}

  identify(header: string | undefined): ApiToken | null {
    const m = /^Bearer ([^\s]+)$/i.exec(header ?? '');
    if (!m) return null;
    const presented = digest(m[1]!);
    let found: ApiToken | null = null;
    for (const t of this.tokens) if (timingSafeEqual(t.digest, presented)) found = t;
    return found;
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

  /** Middleware: the request needs a valid token with `scope`. */
  require(scope: Scope) {
    return (req: Request, res: Response, next: NextFunction) => {
      const result = this.check(req.headers.authorization, scope);
      if ('error' in result) {
        if (result.error.code === 'unauthorized') res.set('www-authenticate', 'Bearer realm="draftsman"');
        if (result.retryAfter) res.set('retry-after', String(result.retryAfter));
        return next(result.error);
      }
      res.locals.token = result.token;
      next();
    };
  }
}
