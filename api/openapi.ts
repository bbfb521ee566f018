import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { jobSpecSchema } from '../common/spec';
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
  LOG_EVENT_SCHEMAS,
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
  components,
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
import { OPERATIONS } from './operations';

export { allowedMethods } from './operations';

/** Adds to every operation its id, tag, security and the answers of the token check. */
function decorate(paths: Record<string, Record<string, Json>>): Record<string, Record<string, Json>> {
  for (const [p, methods] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const meta = OPERATIONS[`${method} ${p}`];
      if (!meta) throw new Error(`no operation id for ${method.toUpperCase()} ${p} (OPERATIONS in api/openapi.ts)`);
      op.operationId = meta.id;
      op.tags = [meta.tag];
      // Node's HTTP server refuses these itself, before any route (no body).
      op.responses = { ...(op.responses as Json), 431: { description: 'the request line or its headers are too large (answered without a body)' } };
      op.security = meta.scope ? [{ bearer: [] }, { session: [] }] : [];
      if (meta.scope) {
        op.responses = {
          ...(op.responses as Json),
          401: error('no valid bearer token'),
          403: (op.responses as Json)[403] ?? error(`the token lacks the ${meta.scope} scope`),
          429: error("past the token's request rate (Retry-After says when to retry)"),
        };
      }
    }
  }
  return paths;
}

/** The OpenAPI document of the API, built from the schemas the routes validate with. */
export function openApiDocument(version: string): Json {
  const jobSpec = jsonSchema(jobSpecSchema.meta({ id: 'JobSpec' }));
  // The log streams' events are components no body refers to (see LOG_EVENT_SCHEMAS).
  for (const schema of LOG_EVENT_SCHEMAS) jsonSchema(schema, 'output');
  return {
    openapi: '3.1.0',
    info: {
      title: 'Draftsman API',
      version,
      description: 'Jobs against git repositories, each step in an ephemeral container, the lifecycle held by Temporal.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    // Relative: the document is served by the API it describes.
    servers: [{ url: '/', description: 'the API that serves this document' }],
    tags: [
      { name: 'jobs', description: 'Start, watch and cancel jobs' },
      { name: 'service', description: 'Health, metrics, this document and the problem types' },
      { name: 'hosts', description: 'The hosts that run steps: their room, and their drain for an upgrade (admin scope to drain)' },
      { name: 'caches', description: 'Saved dependency caches and workspaces kept after setup, on every host (admin scope)' },
      { name: 'webhooks', description: 'Endpoints that hear of job events, signed as Standard Webhooks does (admin scope)' },
      { name: 'codec', description: "The Temporal Web UI's remote codec" },
    ],
    security: [{ bearer: [] }],
    paths: decorate({
      '/health': {
        get: {
          summary: 'Liveness, database reachability and the disk guard',
          responses: {
            200: answer('healthy (`status: ok`), or `degraded` while free disk is below the floor and new jobs wait queued', healthSchema),
            503: answer('unhealthy: the database does not answer', healthSchema),
          },
        },
      },
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { 200: { description: 'text exposition format' } } } },
      '/openapi.json': { get: { summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1', content: json({ type: 'object' }) } } } },
      '/problems': {
        get: { summary: 'Every problem type the API answers with (no token needed)', responses: { 200: answer('every problem type', problemTypesSchema) } },
      },
      '/problems/{code}': {
        get: {
          summary: 'One problem type: the `type` of an error answer (no token needed)',
          parameters: [{ name: 'code', in: 'path', required: true, schema: { enum: Object.keys(PROBLEMS) } }],
          responses: { 200: answer('the problem type', problemTypeSchema), 404: error('no such problem type') },
        },
      },
      '/v1/jobs': {
        post: {
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
        },
        get: {
          summary: 'List jobs, newest first',
          parameters: queryParameters(listJobsQuery),
          responses: {
            200: answer('a page of jobs, newest first; `nextCursor` (null on the last page) as `cursor` gives the next', jobPageSchema),
            400: error('invalid query'),
          },
        },
      },
      '/v1/jobs/{id}': {
        get: { summary: 'A job', parameters: [idParam], responses: { 200: answer('the job', jobViewSchema), 404: error('no such job') } },
      },
      '/v1/jobs/{id}/events': {
        get: {
          summary: 'The audit trail',
          parameters: [idParam],
          responses: { 200: answer('the audit trail, in order', eventsSchema), 404: error('no such job') },
        },
      },
      '/v1/jobs/{id}/logs': {
        get: {
          summary:
            'Step output: NDJSON, or Server-Sent Events with follow=true (events line with id <chunk>.<line>, step, status, end; a retry hint and heartbeats; resume with Last-Event-ID or lastEventId)',
          parameters: [idParam, ...queryParameters(logsQuery)],
          responses: {
            200: { description: 'lines', content: { 'application/x-ndjson': {}, 'text/event-stream': {} } },
            400: error('invalid query'),
            404: error('no such job'),
            429: error('too many requests, or too many log streams open (follow=true); see Retry-After'),
          },
        },
      },
      '/v1/jobs/{id}/patch': {
        get: {
          summary: 'git diff of the workspace after the loop',
          parameters: [idParam],
          responses: { 200: { description: 'the patch', content: { 'text/x-diff': {} } }, 404: error('no job or no patch') },
        },
      },
      '/v1/hosts': {
        get: { summary: 'The hosts, their room, and the jobs queued for one', responses: { 200: answer('every host heard from, by id', hostListSchema) } },
      },
      '/v1/hosts/{hostId}': {
        get: { summary: 'A host', parameters: [hostIdParam], responses: { 200: answer('the host', hostSchema), 404: error('no such host') } },
      },
      '/v1/hosts/{hostId}/drain': {
        post: {
          summary: 'The host takes no new job; its jobs finish there, then its workers stop (a worker started there ends the drain)',
          parameters: [hostIdParam],
          responses: { 200: answer('the host, draining (or drained)', hostSchema), 404: error('no such host') },
        },
      },
      '/v1/hosts/{hostId}/undrain': {
        post: {
          summary: 'The host takes jobs again',
          parameters: [hostIdParam],
          responses: { 200: answer('the host', hostSchema), 404: error('no such host') },
        },
      },
      '/v1/caches': {
        get: {
          summary: 'The saved caches and kept workspaces, most recently used first',
          parameters: [
            { name: 'kind', in: 'query', required: false, schema: { type: 'string', enum: ['cache', 'snapshot'] } },
            { name: 'scope', in: 'query', required: false, schema: { type: 'string' }, description: 'only those of this scope' },
          ],
          responses: { 200: answer('at most 1000 of them, and their bytes', keptListSchema), 400: error('an unknown kind') },
        },
      },
      '/v1/caches/{cacheId}': {
        delete: {
          summary: "Forget a saved cache or kept workspace: no job restores it from now on, and its host's janitor removes its volume",
          parameters: [{ name: 'cacheId', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { 200: answer('what was forgotten', keptSchema), 404: error('no such entry') },
        },
      },
      '/v1/webhooks': {
        post: {
          summary: 'Register an endpoint for job events; the answer holds its signing secret, shown only here',
          requestBody: { required: true, content: json(jsonSchema(webhookBody)) },
          responses: {
            201: answer('the endpoint and its secret', webhookCreatedSchema),
            400: error('invalid body, or a target that is not allowed'),
            413: error('body too large'),
            415: error('not application/json'),
          },
        },
        get: { summary: 'The endpoints', responses: { 200: answer('every endpoint, newest first (no secrets)', webhookListSchema) } },
      },
      '/v1/webhooks/{webhookId}': {
        get: {
          summary: 'An endpoint',
          parameters: [webhookIdParam],
          responses: { 200: answer('the endpoint (no secret)', webhookEndpointSchema), 404: error('no such endpoint') },
        },
        delete: {
          summary: 'Remove an endpoint and the deliveries it is still owed',
          parameters: [webhookIdParam],
          responses: { 204: { description: 'removed' }, 404: error('no such endpoint') },
        },
      },
      '/v1/webhooks/{webhookId}/rotate': {
        post: {
          summary: 'A new signing secret; deliveries carry signatures of both for 24 h',
          parameters: [webhookIdParam],
          responses: { 200: answer('the new secret', webhookSecretSchema), 404: error('no such endpoint') },
        },
      },
      '/v1/webhooks/{webhookId}/deliveries': {
        get: {
          summary: "The endpoint's latest deliveries: status, attempts, last answer, next attempt",
          parameters: [webhookIdParam, ...queryParameters(deliveriesQuery)],
          responses: { 200: answer('newest first', webhookDeliveriesSchema), 400: error('invalid query'), 404: error('no such endpoint') },
        },
      },
      '/v1/webhooks/{webhookId}/deliveries/{deliveryId}/redeliver': {
        post: {
          summary: 'Send a delivery again now, with its id (whatever became of it)',
          parameters: [webhookIdParam, { name: 'deliveryId', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            202: answer('pending again', z.object({ id: z.string(), status: z.literal('pending') })),
            404: error('no such endpoint or delivery'),
          },
        },
      },
      '/codec/encode': codecPath('Encrypt payloads (Temporal remote codec protocol)'),
      '/codec/decode': codecPath('Decrypt payloads for the Temporal Web UI (remote codec protocol)'),
      '/v1/jobs/{id}/cancel': {
        post: {
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
        },
      },
      '/login': {
        get: {
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
        },
        post: {
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
        },
      },
      '/v1/session': {
        post: {
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
        },
        get: {
          summary: "The cookie's session: who, with which scopes, and its CSRF token",
          responses: { 200: answer('the session', sessionSchema), 401: error('no session, or it has ended') },
        },
        delete: {
          summary: "Sign out (with the session's X-CSRF-Token)",
          responses: { 204: { description: 'signed out; the cookie is cleared' }, 403: error("no X-CSRF-Token, or not the session's") },
        },
      },
      '/v1/jobs/{id}/approval': {
        post: {
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
        },
      },
      '/v1/jobs/{id}/rerun': {
        post: {
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
        },
      },
      '/v1/jobs/{id}/wait': {
        get: {
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
        },
      },
      '/v1/jobs/{id}/logs/ws': {
        get: {
          summary: 'The log stream over a WebSocket: JSON frames { event, id?, data } with the events of the SSE stream; resume with lastEventId',
          parameters: [idParam, ...queryParameters(logsQuery.omit({ follow: true }))],
          responses: {
            101: { description: 'switching to the WebSocket protocol' },
            400: error('invalid query'),
            404: error('no such job'),
            426: error('not a WebSocket upgrade request'),
            429: error('too many requests, or too many log streams open; see Retry-After'),
          },
        },
      },
    }),
    components: {
      securitySchemes: {
        session: { type: 'apiKey', in: 'cookie', name: 'draftsman_session', description: 'A browser session opened with POST /v1/session or the /login form' },
        bearer: { type: 'http', scheme: 'bearer', description: 'An API token (DRAFTSMAN_API_TOKENS; `npm start` writes one to data/api-token)' },
      },
      schemas: Object.fromEntries(Object.entries(components).sort(([a], [b]) => a.localeCompare(b))),
    },
  };
}

/** Where the committed document lives. */
export const committedOpenApiPath = (root: string) => path.join(root, 'docs', 'openapi.json');

export const packageVersion = (root: string) => (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
