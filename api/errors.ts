/**
 * The API's errors as RFC 9457 problem details (`application/problem+json`): `type`
 * (`/problems/<code>`, served by the API), `title` (one per code), `status`, `detail`
 * (this occurrence), `instance` (the request id, as in X-Request-Id), and the extension
 * members `code` (the stable code) and `field` (the JSON path of the bad input, if any).
 */
import type { z } from 'zod';

/** Every code the API answers with: its status and title. */
export const PROBLEMS = {
  bad_request: { status: 400, title: 'The request cannot be read' },
  invalid_json: { status: 400, title: 'The body is not valid JSON' },
  invalid_spec: { status: 400, title: 'The job spec is invalid' },
  invalid_body: { status: 400, title: 'The body is invalid' },
  invalid_query: { status: 400, title: 'The query parameters are invalid' },
  invalid_idempotency_key: { status: 400, title: 'The Idempotency-Key header is invalid' },
  codec_failed: { status: 400, title: 'The payloads cannot be encoded or decoded' },
  unauthorized: { status: 401, title: 'A valid bearer token is required' },
  forbidden: { status: 403, title: 'The token lacks the scope' },
  secret_not_granted: { status: 403, title: 'A secret is not granted to the principal' },
  not_found: { status: 404, title: 'Not found' },
  codec_disabled: { status: 404, title: 'Payload encryption is not configured' },
  method_not_allowed: { status: 405, title: 'The path does not have this method' },
  job_ended: { status: 409, title: 'The job has ended' },
  job_not_rerunnable: { status: 409, title: "The job's spec is no longer accepted by this server" },
  not_kept: { status: 409, title: 'The job kept no workspace to start from there' },
  job_not_resumable: { status: 409, title: 'Only a job that failed or timed out is resumed' },
  not_awaiting_approval: { status: 409, title: 'The job is not awaiting approval' },
  approval_conflict: { status: 409, title: 'Another decision was made on the job' },
  too_large: { status: 413, title: 'The body is too large' },
  idempotency_key_reused: { status: 422, title: 'The Idempotency-Key was used with another body' },
  unsupported_media_type: { status: 415, title: 'The body must be application/json' },
  upgrade_required: { status: 426, title: 'This endpoint speaks WebSocket' },
  rate_limited: { status: 429, title: 'Too many requests' },
  too_many_streams: { status: 429, title: 'Too many log streams' },
  decision_pending: { status: 503, title: 'The job has not taken the decision yet' },
  internal: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemCode = keyof typeof PROBLEMS;

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  code: ProblemCode;
  field?: string;
}

export const PROBLEM_TYPE_PREFIX = '/problems/';
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** An error the API answers with a stable code (its status comes from PROBLEMS). */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  readonly status: number;
  constructor(
    readonly code: ProblemCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.status = PROBLEMS[code].status;
  }
}

/** The problem document of one occurrence. */
export function problem(code: ProblemCode, detail: string, requestId: string, field?: string): Problem {
  const { status, title } = PROBLEMS[code];
  return { type: `${PROBLEM_TYPE_PREFIX}${code}`, title, status, detail, instance: requestId, code, ...(field ? { field } : {}) };
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A caller's request id is kept when it is short and plain; otherwise (or without one) a new one is made. */
export function requestIdFrom(header: string | string[] | undefined, make: () => string): string {
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : make();
}

/** Parses untrusted input with a schema; the first problem becomes a 400 naming the field. */
export function parseInput<T extends z.ZodType>(schema: T, value: unknown, code: ProblemCode): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : issue.path.map(String).join('.');
  const message = issue.code === 'unrecognized_keys' ? `unknown parameter ${field}` : `${field}: ${issue.message}`;
  throw new HttpError(code, message, field || undefined);
}
