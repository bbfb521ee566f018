/**
 * The route table: every operation of the API once, with its method, path, scope, tag and
 * OpenAPI description (summary, parameters, body, answers), in the document's order. The
 * OpenAPI document (openapi.ts) and the Express routes (mountRoute) are both made from it.
 */
import { z } from 'zod';
import type { Scope } from './auth';

import { PROBLEMS } from './errors';
import {
  approvalBody,
  approvalSchema,
  sessionBody,
  sessionSchema,
  cancelBody,
  cancellingSchema,
  eventsSchema,
  healthSchema,
  jobPageSchema,
  jobViewSchema,
  listJobsQuery,
  logsQuery,
  problemTypeSchema,
  problemTypesSchema,
  rerunBody,
  rerunStartedSchema,
  startedSchema,
  waitQuery,
  deliveriesQuery,
  hostListSchema,
  keptListSchema,
  keptSchema,
  hostSchema,
  webhookBody,
  webhookCreatedSchema,
  webhookDeliveriesSchema,
  webhookEndpointSchema,
  webhookListSchema,
  webhookSecretSchema,
} from './schemas';

import {
  answer,
  codecPath,
  error,
  hostIdParam,
  idempotencyKeyParam,
  idParam,
  jobLinks,
  json,
  jsonSchema,
  queryParameters,
  webhookIdParam,
  type Json,
} from './openapi-parts';

export type Method = 'get' | 'post' | 'delete' | 'options';

export interface Route {
  /** The OpenAPI operationId. */
  id: string;
  method: Method;
  /** The path as OpenAPI writes it (`{id}`); Express's `:id` is made from it. */
  path: string;
  tag: string;
  /** The scope a token needs; null: served without one. */
  scope: Scope | null;
  /** false: no CSRF token asked of a browser session (the Temporal Web UI's codec calls). */
  csrf?: false;
  /** The operation's OpenAPI object (built when the document is). */
  doc: (ctx: { jobSpec: Json }) => Json;
}

export const ROUTES: readonly Route[] = [
  {
    id: 'getHealth',
    method: 'get',
    path: '/health',
    tag: 'service',
    scope: null,
    doc: () => ({
      summary: 'Liveness, database reachability and the disk guard',
      responses: {
        200: answer('healthy (`status: ok`), or `degraded` while free disk is below the floor and new jobs wait queued', healthSchema),
        503: answer('unhealthy: the database does not answer', healthSchema),
      },
    }),
  },
  {
    id: 'getMetrics',
    method: 'get',
    path: '/metrics',
    tag: 'service',
    scope: 'read',
    doc: () => ({ summary: 'Prometheus metrics', responses: { 200: { description: 'text exposition format' } } }),
  },
  {
    id: 'getOpenApi',
    method: 'get',
    path: '/openapi.json',
    tag: 'service',
    scope: null,
    doc: () => ({ summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1', content: json({ type: 'object' }) } } }),
  },
  {
    id: 'listProblemTypes',
    method: 'get',
    path: '/problems',
    tag: 'service',
    scope: null,
    doc: () => ({
      summary: 'Every problem type the API answers with (no token needed)',
      responses: { 200: answer('every problem type', problemTypesSchema) },
    }),
  },
  {
    id: 'getProblemType',
    method: 'get',
    path: '/problems/{code}',
    tag: 'service',
    scope: null,
    doc: () => ({
      summary: 'One problem type: the `type` of an error answer (no token needed)',
      parameters: [{ name: 'code', in: 'path', required: true, schema: { enum: Object.keys(PROBLEMS) } }],
      responses: { 200: answer('the problem type', problemTypeSchema), 404: error('no such problem type') },
    }),
  },
  {
    id: 'startJob',
    method: 'post',
    path: '/v1/jobs',
    tag: 'jobs',
    scope: 'write',
    doc: ({ jobSpec }) => ({
      summary: 'Start a job',
      parameters: [idempotencyKeyParam],
      requestBody: {
        required: true,
        content: {
          'application/json': {
            schema: jobSpec,
            example: {
              repo: 'https://example.com/org/repo.git',
              commit: '0123456789abcdef0123456789abcdef01234567',
              setup: ['npm ci'],
              validate: ['npm test'],
              labels: { pr: '123' },
            },
          },
        },
      },
      responses: {
        202: { ...answer('accepted: the job is queued (Location names it)', startedSchema), links: jobLinks },
        400: error('invalid spec, JSON or Idempotency-Key'),
        403: error('a secret the principal is not granted, or no write scope'),
        413: error('body too large'),
        415: error('not application/json'),
        422: error('the Idempotency-Key was used with another body'),
      },
    }),
  },
  {
    id: 'listJobs',
    method: 'get',
    path: '/v1/jobs',
    tag: 'jobs',
    scope: 'read',
    doc: () => ({
      summary: 'List jobs, newest first',
      parameters: queryParameters(listJobsQuery),
      responses: {
        200: answer('a page of jobs, newest first; `nextCursor` (null on the last page) as `cursor` gives the next', jobPageSchema),
        400: error('invalid query'),
      },
    }),
  },
  {
    id: 'getJob',
    method: 'get',
    path: '/v1/jobs/{id}',
    tag: 'jobs',
    scope: 'read',
    doc: () => ({ summary: 'A job', parameters: [idParam], responses: { 200: answer('the job', jobViewSchema), 404: error('no such job') } }),
  },
  {
    id: 'listJobEvents',
    method: 'get',
    path: '/v1/jobs/{id}/events',
    tag: 'jobs',
    scope: 'read',
    doc: () => ({
      summary: 'The audit trail',
      parameters: [idParam],
      responses: { 200: answer('the audit trail, in order', eventsSchema), 404: error('no such job') },
    }),
  },
  {
    id: 'getJobLogs',
    method: 'get',
    path: '/v1/jobs/{id}/logs',
    tag: 'jobs',
    scope: 'read',
    doc: () => ({
      summary:
        'Step output: NDJSON, or Server-Sent Events with follow=true (events line with id <chunk>.<line>, step, status, end; a retry hint and heartbeats; resume with Last-Event-ID or lastEventId)',
      parameters: [idParam, ...queryParameters(logsQuery)],
      responses: {
        200: { description: 'lines', content: { 'application/x-ndjson': {}, 'text/event-stream': {} } },
        400: error('invalid query'),
        404: error('no such job'),
        429: error('too many requests, or too many log streams open (follow=true); see Retry-After'),
      },
    }),
  },
  {
    id: 'getJobPatch',
    method: 'get',
    path: '/v1/jobs/{id}/patch',
    tag: 'jobs',
    scope: 'read',
    doc: () => ({
      summary: 'git diff of the workspace after the loop',
      parameters: [idParam],
      responses: { 200: { description: 'the patch', content: { 'text/x-diff': {} } }, 404: error('no job or no patch') },
    }),
  },
  {
    id: 'listHosts',
    method: 'get',
    path: '/v1/hosts',
    tag: 'hosts',
    scope: 'read',
    doc: () => ({
      summary: 'The hosts, their room, and the jobs queued for one',
      responses: { 200: answer('every host heard from, by id', hostListSchema) },
    }),
  },
  {
    id: 'getHost',
    method: 'get',
    path: '/v1/hosts/{hostId}',
    tag: 'hosts',
    scope: 'read',
    doc: () => ({ summary: 'A host', parameters: [hostIdParam], responses: { 200: answer('the host', hostSchema), 404: error('no such host') } }),
  },
  {
    id: 'drainHost',
    method: 'post',
    path: '/v1/hosts/{hostId}/drain',
    tag: 'hosts',
    scope: 'admin',
    doc: () => ({
      summary: 'The host takes no new job; its jobs finish there, then its workers stop (a worker started there ends the drain)',
      parameters: [hostIdParam],
      responses: { 200: answer('the host, draining (or drained)', hostSchema), 404: error('no such host') },
    }),
  },
  {
    id: 'undrainHost',
    method: 'post',
    path: '/v1/hosts/{hostId}/undrain',
    tag: 'hosts',
    scope: 'admin',
    doc: () => ({
      summary: 'The host takes jobs again',
      parameters: [hostIdParam],
      responses: { 200: answer('the host', hostSchema), 404: error('no such host') },
    }),
  },
  {
    id: 'listCaches',
    method: 'get',
    path: '/v1/caches',
    tag: 'caches',
    scope: 'admin',
    doc: () => ({
      summary: 'The saved caches and kept workspaces, most recently used first',
      parameters: [
        { name: 'kind', in: 'query', required: false, schema: { type: 'string', enum: ['cache', 'snapshot'] } },
        { name: 'scope', in: 'query', required: false, schema: { type: 'string' }, description: 'only those of this scope' },
      ],
      responses: { 200: answer('at most 1000 of them, and their bytes', keptListSchema), 400: error('an unknown kind') },
    }),
  },
  {
    id: 'deleteCache',
    method: 'delete',
    path: '/v1/caches/{cacheId}',
    tag: 'caches',
    scope: 'admin',
    doc: () => ({
      summary: "Forget a saved cache or kept workspace: no job restores it from now on, and its host's janitor removes its volume",
      parameters: [{ name: 'cacheId', in: 'path', required: true, schema: { type: 'string' } }],
      responses: { 200: answer('what was forgotten', keptSchema), 404: error('no such entry') },
    }),
  },
  {
    id: 'createWebhook',
    method: 'post',
    path: '/v1/webhooks',
    tag: 'webhooks',
    scope: 'admin',
    doc: () => ({
      summary: 'Register an endpoint for job events; the answer holds its signing secret, shown only here',
      requestBody: { required: true, content: json(jsonSchema(webhookBody)) },
      responses: {
        201: answer('the endpoint and its secret', webhookCreatedSchema),
        400: error('invalid body, or a target that is not allowed'),
        413: error('body too large'),
        415: error('not application/json'),
      },
    }),
  },
  {
    id: 'listWebhooks',
    method: 'get',
    path: '/v1/webhooks',
    tag: 'webhooks',
    scope: 'admin',
    doc: () => ({ summary: 'The endpoints', responses: { 200: answer('every endpoint, newest first (no secrets)', webhookListSchema) } }),
  },
  {
    id: 'getWebhook',
    method: 'get',
    path: '/v1/webhooks/{webhookId}',
    tag: 'webhooks',
    scope: 'admin',
    doc: () => ({
      summary: 'An endpoint',
      parameters: [webhookIdParam],
      responses: { 200: answer('the endpoint (no secret)', webhookEndpointSchema), 404: error('no such endpoint') },
    }),
  },
  {
    id: 'deleteWebhook',
    method: 'delete',
    path: '/v1/webhooks/{webhookId}',
    tag: 'webhooks',
    scope: 'admin',
    doc: () => ({
      summary: 'Remove an endpoint and the deliveries it is still owed',
      parameters: [webhookIdParam],
      responses: { 204: { description: 'removed' }, 404: error('no such endpoint') },
    }),
  },
  {
    id: 'rotateWebhookSecret',
    method: 'post',
    path: '/v1/webhooks/{webhookId}/rotate',
    tag: 'webhooks',
    scope: 'admin',
    doc: () => ({
      summary: 'A new signing secret; deliveries carry signatures of both for 24 h',
      parameters: [webhookIdParam],
      responses: { 200: answer('the new secret', webhookSecretSchema), 404: error('no such endpoint') },
    }),
  },
  {
    id: 'listWebhookDeliveries',
    method: 'get',
    path: '/v1/webhooks/{webhookId}/deliveries',
    tag: 'webhooks',
    scope: 'admin',
    doc: () => ({
      summary: "The endpoint's latest deliveries: status, attempts, last answer, next attempt",
      parameters: [webhookIdParam, ...queryParameters(deliveriesQuery)],
      responses: { 200: answer('newest first', webhookDeliveriesSchema), 400: error('invalid query'), 404: error('no such endpoint') },
    }),
  },
  {
    id: 'redeliverWebhook',
    method: 'post',
    path: '/v1/webhooks/{webhookId}/deliveries/{deliveryId}/redeliver',
    tag: 'webhooks',
    scope: 'admin',
    doc: () => ({
      summary: 'Send a delivery again now, with its id (whatever became of it)',
      parameters: [webhookIdParam, { name: 'deliveryId', in: 'path', required: true, schema: { type: 'string' } }],
      responses: {
        202: answer('pending again', z.object({ id: z.string(), status: z.literal('pending') })),
        404: error('no such endpoint or delivery'),
      },
    }),
  },
  {
    id: 'encodePayloads',
    csrf: false,
    method: 'post',
    path: '/codec/encode',
    tag: 'codec',
    scope: 'read',
    doc: () => codecPath('Encrypt payloads (Temporal remote codec protocol)').post,
  },
  {
    id: 'encodePayloadsPreflight',
    method: 'options',
    path: '/codec/encode',
    tag: 'codec',
    scope: null,
    doc: () => codecPath('Encrypt payloads (Temporal remote codec protocol)').options,
  },
  {
    id: 'decodePayloads',
    csrf: false,
    method: 'post',
    path: '/codec/decode',
    tag: 'codec',
    scope: 'read',
    doc: () => codecPath('Decrypt payloads for the Temporal Web UI (remote codec protocol)').post,
  },
  {
    id: 'decodePayloadsPreflight',
    method: 'options',
    path: '/codec/decode',
    tag: 'codec',
    scope: null,
    doc: () => codecPath('Decrypt payloads for the Temporal Web UI (remote codec protocol)').options,
  },
  {
    id: 'cancelJob',
    method: 'post',
    path: '/v1/jobs/{id}/cancel',
    tag: 'jobs',
    scope: 'write',
    doc: () => ({
      summary: 'Cancel a job',
      parameters: [idParam, idempotencyKeyParam],
      requestBody: { required: false, content: json(jsonSchema(cancelBody)) },
      responses: {
        202: answer('cancelling: the job stops, and its `cancelled` event follows', cancellingSchema),
        400: error('invalid body or Idempotency-Key'),
        404: error('no such job'),
        409: error('the job has ended'),
        415: error('a body that is not application/json'),
        422: error('the Idempotency-Key was used with another body'),
      },
    }),
  },
  {
    id: 'getLoginPage',
    method: 'get',
    path: '/login',
    tag: 'service',
    scope: null,
    doc: () => ({
      summary: 'The sign-in page for browsers (a form, no script)',
      parameters: [
        {
          name: 'next',
          in: 'query',
          required: false,
          schema: { type: 'string' },
          description: 'a path of this server to go to after signing in (anything else goes to /)',
        },
      ],
      responses: { 200: { description: 'the page', content: { 'text/html': { schema: { type: 'string' } } } } },
    }),
  },
  {
    id: 'submitLoginForm',
    method: 'post',
    path: '/login',
    tag: 'service',
    scope: null,
    doc: () => ({
      summary: 'Sign in with the form: a session cookie, then 303 to `next`',
      requestBody: {
        required: true,
        content: {
          'application/x-www-form-urlencoded': {
            schema: { type: 'object', properties: { token: { type: 'string' }, next: { type: 'string' } }, required: ['token'] },
          },
        },
      },
      responses: {
        303: { description: 'signed in (Set-Cookie draftsman_session); Location is `next`, a path of this server' },
        401: { description: 'not a valid API token: the page again, with the error', content: { 'text/html': { schema: { type: 'string' } } } },
        413: error('a form larger than 4 KiB'),
        429: {
          description: 'too many sign-in attempts from this address (DRAFTSMAN_SIGNIN_PER_MINUTE): the page again, with the error; Retry-After says when',
          content: { 'text/html': { schema: { type: 'string' } } },
        },
      },
    }),
  },
  {
    id: 'openSession',
    method: 'post',
    path: '/v1/session',
    tag: 'service',
    scope: null,
    doc: () => ({
      summary:
        "Sign a browser in with an API token: the session id goes to an HttpOnly, SameSite=Strict cookie; its requests that change something send the answer's csrfToken as X-CSRF-Token",
      requestBody: { required: true, content: json(jsonSchema(sessionBody)) },
      responses: {
        201: answer('signed in (Set-Cookie draftsman_session)', sessionSchema),
        400: error('invalid body'),
        401: error('not a valid API token'),
        415: error('a body that is not application/json'),
        429: error('too many sign-in attempts from this address (DRAFTSMAN_SIGNIN_PER_MINUTE): Retry-After says when to try again'),
      },
    }),
  },
  {
    id: 'getSession',
    method: 'get',
    path: '/v1/session',
    tag: 'service',
    scope: null,
    doc: () => ({
      summary: "The cookie's session: who, with which scopes, and its CSRF token",
      responses: { 200: answer('the session', sessionSchema), 401: error('no session, or it has ended') },
    }),
  },
  {
    id: 'closeSession',
    method: 'delete',
    path: '/v1/session',
    tag: 'service',
    scope: null,
    doc: () => ({
      summary: "Sign out (with the session's X-CSRF-Token)",
      responses: { 204: { description: 'signed out; the cookie is cleared' }, 403: error("no X-CSRF-Token, or not the session's") },
    }),
  },
  {
    id: 'decideApproval',
    method: 'post',
    path: '/v1/jobs/{id}/approval',
    tag: 'jobs',
    scope: 'approve',
    doc: () => ({
      summary: 'Approve or reject a job waiting at its approval gate (status awaiting_approval); the caller is recorded as who decided',
      parameters: [idParam, idempotencyKeyParam],
      requestBody: { required: true, content: json(jsonSchema(approvalBody)) },
      responses: {
        200: answer('the decision the job took (the same again for a repeat of it)', approvalSchema),
        400: error('invalid body or Idempotency-Key'),
        404: error('no such job'),
        409: error('the job is not awaiting approval, another decision was made, or it has ended'),
        415: error('a body that is not application/json'),
        422: error('the Idempotency-Key was used with another body'),
        503: error(
          'the job has not taken the decision within 20 s (no worker serves it now); send it again with the same Idempotency-Key, and it is taken once',
        ),
      },
    }),
  },
  {
    id: 'rerunJob',
    method: 'post',
    path: '/v1/jobs/{id}/rerun',
    tag: 'jobs',
    scope: 'write',
    doc: () => ({
      summary: "Start the job's spec again as a new job of the caller (whose secret grants it needs)",
      parameters: [idParam, idempotencyKeyParam],
      requestBody: { required: false, content: json(jsonSchema(rerunBody)) },
      responses: {
        202: { ...answer("the new job; its `created` event and the first job's `rerun` event link the two", rerunStartedSchema), links: jobLinks },
        400: error('invalid body or Idempotency-Key'),
        403: error('a secret the caller is not granted, or no write scope'),
        404: error('no such job'),
        409: error("the job's spec is no longer accepted by this server (an image or a ceiling changed)"),
        415: error('a body that is not application/json'),
        422: error('the Idempotency-Key was used with another body'),
      },
    }),
  },
  {
    id: 'waitForJob',
    method: 'get',
    path: '/v1/jobs/{id}/wait',
    tag: 'jobs',
    scope: 'read',
    doc: () => ({
      summary: 'Long poll: the job once it has ended, or as it is after `timeout` seconds',
      parameters: [idParam, ...queryParameters(waitQuery)],
      responses: {
        200: {
          description: 'the job; the header X-Draftsman-Job-Ended says whether it has ended (its status is final)',
          headers: { 'X-Draftsman-Job-Ended': { schema: { enum: ['true', 'false'] } } },
          content: json(jsonSchema(jobViewSchema, 'output')),
        },
        400: error('invalid query'),
        404: error('no such job'),
      },
    }),
  },
  {
    id: 'followJobLogsWebSocket',
    method: 'get',
    path: '/v1/jobs/{id}/logs/ws',
    tag: 'jobs',
    scope: 'read',
    doc: () => ({
      summary: 'The log stream over a WebSocket: JSON frames { event, id?, data } with the events of the SSE stream; resume with lastEventId',
      parameters: [idParam, ...queryParameters(logsQuery.omit({ follow: true }))],
      responses: {
        101: { description: 'switching to the WebSocket protocol' },
        400: error('invalid query'),
        404: error('no such job'),
        426: error('not a WebSocket upgrade request'),
        429: error('too many requests, or too many log streams open; see Retry-After'),
      },
    }),
  },
];
