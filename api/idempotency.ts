/**
 * Idempotency-Key (POST /v1/jobs and cancel): pure parts. A key is scoped to its
 * principal and route and remembered for 24 h with a hash of the request body: the same
 * key and body get the first answer again, another body is a 422. A job's id is derived
 * from the principal, the key and when the key was first seen, so that two requests in
 * flight at once start one workflow (Temporal refuses a second start of an id), and a
 * key used again after it was forgotten starts a new job.
 */
import { createHash } from 'node:crypto';

/** How long a key is remembered. */
export const IDEMPOTENCY_TTL_HOURS = 24;

/** Printable ASCII without spaces, 1 to 255 characters (a UUID fits, as do most clients' keys). */
const KEY = /^[\x21-\x7e]{1,255}$/;

/** The header's value as a key, `undefined` without one, or a message saying what is wrong with it. */
export function idempotencyKey(header: string | string[] | undefined): { key?: string; problem?: string } {
  if (header === undefined) return {};
  if (Array.isArray(header)) return { problem: 'send Idempotency-Key once' };
  if (!KEY.test(header)) return { problem: 'Idempotency-Key must be 1 to 255 printable ASCII characters without spaces' };
  return { key: header };
}

/** JSON with object keys sorted at every depth: equal values give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export const bodyHash = (body: unknown) =>
  createHash('sha256')
    .update(canonicalJson(body ?? null))
    .digest('hex');

/** The job id of a key's first use: `job-` and 32 hex digits (matches JOB_ID_PATTERN). */
export function derivedJobId(principal: string, key: string, firstSeen: Date): string {
  const h = createHash('sha256')
    .update(JSON.stringify([principal, key, firstSeen.toISOString()]))
    .digest('hex');
  return `job-${h.slice(0, 32)}`;
}
