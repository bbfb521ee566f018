/**
 * The dashboard's calls to the API: same origin, the session's cookie, and for every call
 * that changes something the session's CSRF token and a fresh Idempotency-Key.
 */
import type { components } from '../client/api-types';

export type Session = components['schemas']['Session'];

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let csrfToken = '';

/** Sends the browser to the sign-in form, and back here after it. */
export function signIn(): never {
  location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
  throw new ApiError(401, 'unauthorized', 'signing in');
}

/** A random key (crypto.randomUUID needs a secure context; an operator may serve plain HTTP on a LAN). */
function idempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export async function call<T>(path: string, opts: { method?: string; body?: unknown; text?: boolean } = {}): Promise<T> {
  const method = opts.method ?? 'GET';
  const headers: Record<string, string> = { accept: opts.text ? 'text/plain, */*' : 'application/json' };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') Object.assign(headers, { 'x-csrf-token': csrfToken, 'idempotency-key': idempotencyKey() });
  const res = await fetch(path, { method, headers, credentials: 'same-origin', body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  if (res.status === 401) signIn();
  if (!res.ok) {
    const problem = (await res.json().catch(() => null)) as { code?: string; detail?: string } | null;
    const wait = res.headers.get('retry-after');
    throw new ApiError(res.status, problem?.code ?? 'error', `${problem?.detail ?? res.statusText}${wait ? ` (retry in ${wait} s)` : ''}`);
  }
  if (res.status === 204) return undefined as T;
  return (opts.text ? await res.text() : await res.json()) as T;
}

export async function loadSession(): Promise<Session> {
  const session = await call<Session>('/v1/session');
  csrfToken = session.csrfToken;
  return session;
}

export async function signOut(): Promise<void> {
  await call('/v1/session', { method: 'DELETE' });
  location.assign('/login');
}
