/**
 * The dashboard: a page shell and the bundle `npm run build` writes to dist/web (web/build.mjs),
 * served under /ui by the API itself. The shell needs a session (or a token) with the read
 * scope; without one the browser is sent to sign in. Its assets hold no data and are
 * public, named by their content's hash so that they can be cached for good.
 *
 * The page's policy allows scripts and styles of this origin only (no inline script, no
 * eval), requests to this origin only, and no framing: job data (logs, patches, file
 * names) written by untrusted steps is only ever set as text.
 */
import fs from 'node:fs';
import path from 'node:path';
import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { HttpError } from './errors';
import { escapeHtml } from './login-page';
import { signInFirst } from './session';

export const DASHBOARD_PATH = '/ui';
/** Every address under it is a page of the dashboard (its router reads the rest). */
export const DASHBOARD_PAGES = `${DASHBOARD_PATH}{/*rest}`;

export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** What web/build.mjs wrote: the hashed names of the entry's script and style sheet. */
interface Manifest {
  script: string;
  style: string;
}

export function readManifest(dir: string): Manifest | null {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Partial<Manifest>;
    return typeof m.script === 'string' && typeof m.style === 'string' ? { script: m.script, style: m.style } : null;
  } catch {
    return null;
  }
}

/** The page every dashboard route answers: the app reads the route from the address. */
export function dashboardShell(manifest: Manifest, opts: { temporalUi?: string }): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Draftsman</title>
<link rel="icon" href="data:,">
${opts.temporalUi ? `<meta name="draftsman-temporal-ui" content="${escapeHtml(opts.temporalUi)}">\n` : ''}<link rel="stylesheet" href="${DASHBOARD_PATH}/assets/${escapeHtml(manifest.style)}">
<script type="module" src="${DASHBOARD_PATH}/assets/${escapeHtml(manifest.script)}"></script>
</head>
<body>
<div id="app"><p class="loading">Loading…</p></div>
<noscript>The dashboard needs JavaScript. The API and the CLI work without it.</noscript>
</body>
</html>
`;
}

export function mountDashboard(app: Express, opts: { assets: string; read: RequestHandler; temporalUi?: string }): void {
  const headers = { 'content-security-policy': DASHBOARD_CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'same-origin' };
  app.use(
    `${DASHBOARD_PATH}/assets`,
    express.static(opts.assets, {
      index: false,
      immutable: true,
      maxAge: '365d',
      setHeaders: (res) => res.set(headers),
    }),
    (_req: Request, _res: Response, next: NextFunction) =>
      next(new HttpError('not_found', 'no such dashboard asset (the page may be older than the build: reload it)')),
  );
  // Read once: the build does not change under a running API.
  const manifest = readManifest(opts.assets);
  const page = signInFirst(opts.read);
  app.get('/', (_req, res) => res.redirect(302, `${DASHBOARD_PATH}/`));
  app.get(DASHBOARD_PAGES, page, (_req, res) => {
    if (!manifest) {
      res.status(503).type('text').send('the dashboard is not built: run `npm run build`');
      return;
    }
    res
      .type('html')
      .set({ ...headers, 'cache-control': 'no-store' })
      .send(dashboardShell(manifest, { temporalUi: opts.temporalUi }));
  });
}
