/**
 * Schemas of the API's inputs besides the job spec (common/spec.ts). The routes
 * validate with them and /openapi.json is generated from them, so the two agree.
 */
import { z } from 'zod';
import { JOB_STATUSES, STEP_KINDS } from '../common/job';

export const MAX_LIST = 200;

/** A query parameter that is an integer in [min, max], with one message for every way it is not. */
function intBetween(min: number, max: number) {
  const message = `must be an integer between ${min} and ${max}`;
  return z.coerce.number().int(message).min(min, message).max(max, message);
}

const instant = z.iso.datetime({ offset: true, message: 'must be an ISO 8601 time with its offset, e.g. 2026-12-01T10:00:00Z' });

export const listJobsQuery = z.strictObject({
  status: z.enum(JOB_STATUSES).optional(),
  repo: z.string().min(1).max(2048).optional(),
  commit: z.string().regex(/^[0-9a-f]{40}$/, 'must be a full 40-character commit SHA').optional(),
  principal: z.string().min(1).max(200).optional(),
  /** One label, `key=value`. */
  label: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_.-]{0,62}=[\x21-\x7e]{0,128}$/, 'must be key=value, as a job\'s labels are')
    .transform((l) => ({ key: l.slice(0, l.indexOf('=')), value: l.slice(l.indexOf('=') + 1) }))
    .optional(),
  createdAfter: instant.optional(),
  createdBefore: instant.optional(),
  /** Where the previous page ended: its `nextCursor`. */
  cursor: z.string().min(1).max(400).optional(),
  limit: intBetween(1, MAX_LIST).optional(),
});

export const logsQuery = z.strictObject({
  step: z
    .string()
    .regex(new RegExp(`^(${STEP_KINDS.join('|')})-\\d{1,6}$`), `must be <kind>-<index> with kind one of ${STEP_KINDS.join(', ')}`)
    .optional(),
  follow: z.enum(['true', 'false', '1', '0']).optional(),
  /** For clients that cannot send the Last-Event-ID header: resume a stream after this line event. */
  lastEventId: z.string().max(32).optional(),
});

export const cancelBody = z.strictObject({
  reason: z.string().max(1000, 'must be at most 1000 characters').optional(),
});

/** A rerun takes nothing yet: the spec is the job's own. */
export const rerunBody = z.strictObject({});

export const MAX_WAIT_SECONDS = 120;

export const waitQuery = z.strictObject({
  /** Seconds to wait for the job's end before answering with it as it is (default 30). */
  timeout: intBetween(0, MAX_WAIT_SECONDS).optional(),
});
