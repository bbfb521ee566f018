/**
 * Webhook signatures as Standard Webhooks defines them: HMAC-SHA256 over
 * `<id>.<timestamp>.<body>` with the endpoint's secret (`whsec_` and base64), sent as
 * `webhook-signature: v1,<base64>`, one entry per valid secret while a rotation lets the
 * previous one live. Receivers check the timestamp against a tolerance. Pure.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const PREFIX = 'whsec_';

export function newSecret(): string {
  return `${PREFIX}${randomBytes(24).toString('base64')}`;
}

const keyOf = (secret: string) => Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, 'base64');

export function sign(secret: string, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac('sha256', keyOf(secret)).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/** The headers of one delivery, signed with every secret given (the newest first). */
export function signedHeaders(secrets: readonly string[], id: string, timestamp: number, body: string): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': secrets.map((s) => sign(s, id, timestamp, body)).join(' '),
  };
}

/**
 * Whether a delivery's headers carry a signature of `body` made with `secret`, at a
 * timestamp within `toleranceSeconds` of `now` (seconds since the epoch): what a receiver does.
 */
export function verify(secret: string, headers: Record<string, string | undefined>, body: string, now: number, toleranceSeconds = 300): boolean {
  const id = headers['webhook-id'];
  const ts = Number(headers['webhook-timestamp']);
  const signatures = headers['webhook-signature'];
  if (!id || !Number.isInteger(ts) || !signatures || Math.abs(now - ts) > toleranceSeconds) return false;
  const expected = Buffer.from(sign(secret, id, ts, body));
  return signatures.split(' ').some((s) => {
    const given = Buffer.from(s);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
