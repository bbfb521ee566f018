/**
 * The Temporal Web UI behind the API, under /temporal: the UI and this API's codec
 * endpoint then share an origin, so the session cookie a person signed in with reaches
 * /codec/decode on every call the UI makes (fetch sends same-origin cookies), and nobody
 * without a session sees the UI or a decrypted payload. The UI can terminate, reset and
 * signal workflows, so it needs the admin scope. The UI server is started with the same
 * public path (`--ui-public-path /temporal`).
 *
 * The UI cannot send Draftsman's CSRF header, so its state-changing requests are checked
 * by their Origin instead (a browser sends it with every such request): only pages of
 * this origin may make them.
 */
import http from 'node:http';
import type { Express, NextFunction, Request, Response } from 'express';
import { SESSION_COOKIE } from './auth';
import { HttpError } from './errors';
import { signInFirst } from './session';

export const TEMPORAL_UI_PATH = '/temporal';

// Hop-by-hop headers, and the caller's token, which is Draftsman's, not the UI's.
const DROPPED = new Set(['connection', 'keep-alive', 'proxy-authorization', 'te', 'trailer', 'upgrade', 'authorization', 'cookie', 'host']);

/** The request's cookies but Draftsman's session: the UI server's own (its CSRF cookie) pass. */
function uiCookies(header: string | undefined): string | undefined {
  const kept = (header ?? '')
    .split(';')
    .map((c) => c.trim())
    .filter((c) => c && !c.startsWith(`${SESSION_COOKIE}=`));
  return kept.length ? kept.join('; ') : undefined;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function mountTemporalUi(app: Express, target: URL, admin: (req: Request, res: Response, next: NextFunction) => void): void {
  const signIn = signInFirst(admin);
  const sameOrigin = (req: Request, res: Response, next: NextFunction) => {
    if (!SAFE_METHODS.has(req.method) && req.headers.origin !== `${req.protocol}://${req.headers.host}`) {
      return next(new HttpError('forbidden', 'the Temporal Web UI takes changes only from its own pages (Origin)'));
    }
    next();
  };
  // The UI renders markdown (summaries, details) in frames of /render, a path it asks for
  // without its public path, where its router finds nothing: the frame is sent under it.
  app.get('/render', (req, res) => res.redirect(307, `${TEMPORAL_UI_PATH}${req.originalUrl}`));
  app.use(TEMPORAL_UI_PATH, sameOrigin, signIn, (req, res) => {
    const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !DROPPED.has(k)));
    const cookie = uiCookies(req.headers.cookie);
    if (cookie) headers.cookie = cookie;
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.originalUrl, headers: { ...headers, host: target.host } },
      (answer) => {
        res.status(answer.statusCode ?? 502);
        for (const [k, v] of Object.entries(answer.headers)) if (v !== undefined && !DROPPED.has(k)) res.setHeader(k, v);
        answer.pipe(res);
      },
    );
    upstream.on('error', (err) => {
      if (!res.headersSent) res.status(502).type('text').send(`the Temporal Web UI does not answer: ${err.message}`);
      else res.destroy();
    });
    req.pipe(upstream);
  });
}
