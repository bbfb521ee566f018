/**
 * The sign-in page: static HTML with nothing of the request in it but the escaped `next`
 * path and a fixed message, no script, and a policy that allows none.
 */
/** Text for HTML, in element content or a quoted attribute. */
export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The Content-Security-Policy of the page: its own form posts, nothing else loads or runs. */
export const LOGIN_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export function loginPage({ next, error }: { next: string; error?: string }): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Draftsman</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; display: grid; place-items: center; min-height: 100vh; background: #f6f7f9; color: #1b1f24; }
main { background: #fff; padding: 2rem; border-radius: 8px; box-shadow: 0 1px 4px #0002; width: min(26rem, 90vw); }
label { display: block; font-weight: 600; margin-bottom: .25rem; }
input { width: 100%; box-sizing: border-box; padding: .5rem; font: inherit; border: 1px solid #8b949e; border-radius: 4px; }
button { margin-top: 1rem; padding: .5rem 1rem; font: inherit; border: 0; border-radius: 4px; background: #0b5cad; color: #fff; cursor: pointer; }
button:focus, input:focus { outline: 3px solid #f2b600; outline-offset: 1px; }
p[role=alert] { color: #b3261e; }
</style>
</head>
<body>
<main>
<h1>Sign in to Draftsman</h1>
${error ? `<p role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/login">
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="${escapeHtml(next)}">
<button type="submit">Sign in</button>
</form>
<p>With <code>npm start</code>, the token is in <code>data/api-token</code>.</p>
</main>
</body>
</html>
`;
}
