/**
 * Signing in from a browser: a token is exchanged once for a session whose id lives in an
 * HttpOnly, SameSite=Strict cookie (never in storage a script can read). JSON routes for
 * pages (/v1/session) and a plain form (/login) that works without any script.
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { SessionStore } from '../db/session-store';
import { type Authenticator, cookieValue, SESSION_COOKIE } from './auth';
import { HttpError, parseInput } from './errors';
import { LOGIN_CSP, loginPage } from './login-page';
import { sessionBody } from './schemas';
import type { Mount } from './route';

export interface SessionDeps {
  auth: Authenticator;
  sessions: SessionStore;
  hours: number;
  json: express.RequestHandler[];
}

/** Where a sign-in may send the browser back to: a path of this server, never another origin. */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])[\x21-\x7e]*$/.test(next) ? next : '/';
}

/**
 * Middleware for pages: `requireScope` (an Authenticator.require middleware), except that a
 * browser asking for a page without a session is sent to the sign-in form and back, never
 * shown a bare 401.
 */
export function signInFirst(requireScope: RequestHandler): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    requireScope(req, res, (err?: unknown) => {
      if (err && req.method === 'GET' && req.accepts(['html', 'json']) === 'html' && (err as { status?: number }).status === 401) {
        return res.redirect(303, `/login?next=${encodeURIComponent(req.originalUrl)}`);
      }
      next(err);
    });
  };
}

export function mountSessions(mount: Mount, { auth, sessions, hours, json }: SessionDeps): void {
  /** Each client address may try a few tokens a minute: guessing one by trying is slowed to that. */
  const limited = (req: Request, res: Response): boolean => {
    const wait = auth.admitSignIn(req.ip ?? req.socket.remoteAddress ?? '-');
    if (wait > 0) res.set('retry-after', String(wait));
    return wait > 0;
  };
  const open = async (req: Request, res: Response, secret: string) => {
    const token = auth.verify(secret);
    if (!token) return null;
    const session = await auth.openSession(token, hours);
    res.cookie(SESSION_COOKIE, session.id, { httpOnly: true, sameSite: 'strict', secure: req.secure, path: '/', maxAge: hours * 3_600_000 });
    return { principal: token.name, scopes: token.scopes, csrfToken: session.csrf, expiresAt: session.expiresAt.toISOString() };
  };

  mount('openSession', ...json, async (req, res) => {
    if (limited(req, res)) throw new HttpError('rate_limited', `too many sign-in attempts from this address; retry in ${res.get('retry-after')} s`);
    const { token } = parseInput(sessionBody, req.body, 'invalid_body');
    const opened = await open(req, res, token);
    if (!opened) throw new HttpError('unauthorized', 'not a valid API token');
    res.status(201).json(opened);
  });

  mount('getSession', async (req, res) => {
    const session = await auth.session(req);
    if (!session) throw new HttpError('unauthorized', 'no session: sign in with POST /v1/session or /login');
    res.json({ principal: session.principal, scopes: session.token.scopes, csrfToken: session.csrf, expiresAt: session.expiresAt.toISOString() });
  });

  mount('closeSession', async (req, res) => {
    const session = await auth.session(req);
    const id = cookieValue(req.headers.cookie, SESSION_COOKIE);
    if (session && id) {
      const csrf = req.headers['x-csrf-token'];
      if (csrf !== session.csrf) throw new HttpError('forbidden', "signing out needs the session's X-CSRF-Token");
      await sessions.close(id);
    }
    res.clearCookie(SESSION_COOKIE, { path: '/' }).status(204).end();
  });

  // The form: no script, so it is also how a browser without the dashboard signs in.
  const form = express.urlencoded({ extended: false, limit: '4kb' });
  mount('getLoginPage', (req, res) => {
    res
      .type('html')
      .set({ 'cache-control': 'no-store', 'content-security-policy': LOGIN_CSP })
      .send(loginPage({ next: safeNext(req.query.next) }));
  });
  mount('submitLoginForm', form, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const next = safeNext(body.next);
    if (limited(req, res)) {
      return void res
        .status(429)
        .type('html')
        .set('content-security-policy', LOGIN_CSP)
        .send(loginPage({ next, error: `Too many sign-in attempts; try again in ${res.get('retry-after')} s.` }));
    }
    const opened = typeof body.token === 'string' && body.token ? await open(req, res, body.token) : null;
    if (!opened)
      return void res
        .status(401)
        .type('html')
        .set('content-security-policy', LOGIN_CSP)
        .send(loginPage({ next, error: 'That is not a valid API token.' }));
    res.redirect(303, next);
  });
}
