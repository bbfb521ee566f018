import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { JOB_STATUSES, STEP_KINDS } from '../common/job';
import { jobSpecSchema } from '../common/spec';
import { PROBLEM_CONTENT_TYPE, PROBLEMS } from './errors';
import { cancelBody, listJobsQuery, logsQuery, rerunBody, waitQuery } from './schemas';

type Json = Record<string, unknown>;

const jsonSchema = (schema: z.ZodType): Json => {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Json;
  return rest;
};

function queryParameters(schema: z.ZodObject): Json[] {
  return Object.entries(schema.shape).map(([name, field]) => ({
    name,
    in: 'query',
    required: !(field as z.ZodType).safeParse(undefined).success,
    schema: jsonSchema(field as z.ZodType),
  }));
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json) => ({ 'application/json': { schema } });
const error = (description: string) => ({ description, content: { [PROBLEM_CONTENT_TYPE]: { schema: ref('Problem') } } });
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const idempotencyKeyParam = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description: 'Per principal, kept 24 h: the same key and body get the first answer again (with Idempotent-Replayed: true); another body is a 422',
  schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,255}$' },
};

// The job view is produced, not parsed, so it is described here rather than derived.
const stepView = {
  type: 'object',
  required: ['kind', 'index', 'status', 'exitCode', 'startedAt', 'finishedAt'],
  properties: {
    kind: { enum: [...STEP_KINDS] },
    index: { type: 'integer' },
    status: { enum: ['running', 'succeeded', 'failed', 'cancelled', 'timed_out'] },
    exitCode: { type: ['integer', 'null'] },
    startedAt: { type: ['string', 'null'], format: 'date-time' },
    finishedAt: { type: ['string', 'null'], format: 'date-time' },
    durationMs: { type: ['integer', 'null'] },
    oomKilled: { type: 'boolean' },
    logBytes: { type: 'integer' },
    logTruncated: { type: 'boolean' },
    reason: { enum: ['container_lost', 'workspace_full'], description: 'why a failed step failed other than by its own exit' },
  },
};
const jobView = {
  type: 'object',
  required: ['id', 'status', 'repo', 'commit', 'createdAt', 'startedAt', 'finishedAt', 'steps', 'loop'],
  properties: {
    id: { type: 'string' },
    status: { enum: [...JOB_STATUSES] },
    repo: { type: ['string', 'null'] },
    commit: { type: ['string', 'null'] },
    principal: { type: 'string', description: "who started the job: an API token's name, or sdk:IDENTITY" },
    labels: { type: 'object', additionalProperties: { type: 'string' }, description: "the spec's labels" },
    createdAt: { type: 'string', format: 'date-time' },
    startedAt: { type: ['string', 'null'], format: 'date-time' },
    finishedAt: { type: ['string', 'null'], format: 'date-time' },
    steps: { type: 'array', items: stepView },
    loop: {
      oneOf: [
        { type: 'null' },
        { type: 'object', properties: { iterations: { type: 'integer' }, converged: { type: 'boolean' } } },
      ],
    },
    error: { type: 'string' },
    waiting: { type: 'string' },
    patch: { type: 'object', properties: { bytes: { type: 'integer' }, truncated: { type: 'boolean' } } },
    egress: {
      type: 'object',
      description: 'What the steps did through the egress proxy (the single-job view only)',
      properties: { connections: { type: 'integer' }, denied: { type: 'integer' }, bytesIn: { type: 'integer' }, bytesOut: { type: 'integer' } },
    },
  },
};

const codecPath = (summary: string) => ({
  post: {
    summary,
    requestBody: { required: true, content: json({ type: 'object', properties: { payloads: { type: 'array' } } }) },
    responses: { 200: { description: 'payloads' }, 400: error('invalid payloads'), 404: error('encryption not configured') },
  },
  options: { summary: 'CORS preflight for the Web UI', responses: { 204: { description: 'allowed' } } },
});

/**
 * Each operation's id, tag and scope (`null`: served without a token). One table, so that
 * a route added without its line here fails the document's test.
 */
const OPERATIONS: Record<string, { id: string; tag: string; scope: 'read' | 'write' | null }> = {
  'get /health': { id: 'getHealth', tag: 'service', scope: null },
  'get /metrics': { id: 'getMetrics', tag: 'service', scope: 'read' },
  'get /openapi.json': { id: 'getOpenApi', tag: 'service', scope: null },
  'get /problems': { id: 'listProblemTypes', tag: 'service', scope: null },
  'get /problems/{code}': { id: 'getProblemType', tag: 'service', scope: null },
  'post /v1/jobs': { id: 'startJob', tag: 'jobs', scope: 'write' },
  'get /v1/jobs': { id: 'listJobs', tag: 'jobs', scope: 'read' },
  'get /v1/jobs/{id}': { id: 'getJob', tag: 'jobs', scope: 'read' },
  'get /v1/jobs/{id}/events': { id: 'listJobEvents', tag: 'jobs', scope: 'read' },
  'get /v1/jobs/{id}/logs': { id: 'getJobLogs', tag: 'jobs', scope: 'read' },
  'get /v1/jobs/{id}/patch': { id: 'getJobPatch', tag: 'jobs', scope: 'read' },
  'post /v1/jobs/{id}/cancel': { id: 'cancelJob', tag: 'jobs', scope: 'write' },
  'post /v1/jobs/{id}/rerun': { id: 'rerunJob', tag: 'jobs', scope: 'write' },
  'get /v1/jobs/{id}/wait': { id: 'waitForJob', tag: 'jobs', scope: 'read' },
  'get /v1/jobs/{id}/logs/ws': { id: 'followJobLogsWebSocket', tag: 'jobs', scope: 'read' },
  'post /codec/encode': { id: 'encodePayloads', tag: 'codec', scope: 'read' },
  'options /codec/encode': { id: 'encodePayloadsPreflight', tag: 'codec', scope: null },
  'post /codec/decode': { id: 'decodePayloads', tag: 'codec', scope: 'read' },
  'options /codec/decode': { id: 'decodePayloadsPreflight', tag: 'codec', scope: null },
};

/** Adds to every operation its id, tag, security and the answers of the token check. */
function decorate(paths: Record<string, Record<string, Json>>): Record<string, Record<string, Json>> {
  for (const [p, methods] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const meta = OPERATIONS[`${method} ${p}`];
      if (!meta) throw new Error(`no operation id for ${method.toUpperCase()} ${p} (OPERATIONS in api/openapi.ts)`);
      op.operationId = meta.id;
      op.tags = [meta.tag];
      op.security = meta.scope ? [{ bearer: [] }] : [];
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
  return {
    openapi: '3.1.0',
    info: { title: 'Draftsman API', version, description: 'Jobs against git repositories, each step in an ephemeral container, the lifecycle held by Temporal.' },
    tags: [
      { name: 'jobs', description: 'Start, watch and cancel jobs' },
      { name: 'service', description: 'Health, metrics, this document and the problem types' },
      { name: 'codec', description: "The Temporal Web UI's remote codec" },
    ],
    security: [{ bearer: [] }],
    paths: decorate({
      '/health': {
        get: {
          summary: 'Liveness, database reachability and the disk guard',
          responses: {
            200: { description: 'healthy (`status: ok`), or `degraded` while free disk is below the floor and new jobs wait queued' },
            503: { description: 'unhealthy: the database does not answer' },
          },
        },
      },
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { 200: { description: 'text exposition format' } } } },
      '/openapi.json': { get: { summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1' } } } },
      '/problems': { get: { summary: 'Every problem type the API answers with (no token needed)', responses: { 200: { description: '{ problems: [{ type, code, status, title }] }' } } } },
      '/problems/{code}': {
        get: {
          summary: 'One problem type: the `type` of an error answer (no token needed)',
          parameters: [{ name: 'code', in: 'path', required: true, schema: { enum: Object.keys(PROBLEMS) } }],
          responses: { 200: { description: '{ type, code, status, title }' }, 404: error('no such problem type') },
        },
      },
      '/v1/jobs': {
        post: {
          summary: 'Start a job',
          parameters: [idempotencyKeyParam],
          requestBody: { required: true, content: json(ref('JobSpec')) },
          responses: {
            202: { description: 'accepted', content: json({ type: 'object', properties: { id: { type: 'string' } } }) },
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
            200: {
              description: 'a page of jobs, newest first; `nextCursor` (null on the last page) as `cursor` gives the next',
              content: json({
                type: 'object',
                required: ['jobs', 'nextCursor'],
                properties: { jobs: { type: 'array', items: ref('JobView') }, nextCursor: { type: ['string', 'null'] } },
              }),
            },
            400: error('invalid query'),
          },
        },
      },
      '/v1/jobs/{id}': {
        get: { summary: 'A job', parameters: [idParam], responses: { 200: { description: 'the job', content: json(ref('JobView')) }, 404: error('no such job') } },
      },
      '/v1/jobs/{id}/events': {
        get: { summary: 'The audit trail', parameters: [idParam], responses: { 200: { description: 'events in order' }, 404: error('no such job') } },
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
      '/codec/encode': codecPath('Encrypt payloads (Temporal remote codec protocol)'),
      '/codec/decode': codecPath('Decrypt payloads for the Temporal Web UI (remote codec protocol)'),
      '/v1/jobs/{id}/cancel': {
        post: {
          summary: 'Cancel a job',
          parameters: [idParam, idempotencyKeyParam],
          requestBody: { required: false, content: json(jsonSchema(cancelBody)) },
          responses: {
            202: {
              description: 'cancelling',
              content: json({ type: 'object', required: ['id', 'status'], properties: { id: { type: 'string' }, status: { const: 'cancelling' } } }),
            },
            400: error('invalid body or Idempotency-Key'),
            404: error('no such job'),
            409: error('the job has ended'),
            415: error('a body that is not application/json'),
            422: error('the Idempotency-Key was used with another body'),
          },
        },
      },
      '/v1/jobs/{id}/rerun': {
        post: {
          summary: "Start the job's spec again as a new job of the caller (whose secret grants it needs)",
          parameters: [idParam, idempotencyKeyParam],
          requestBody: { required: false, content: json(jsonSchema(rerunBody)) },
          responses: {
            202: {
              description: 'the new job; its `created` event and the first job\'s `rerun` event link the two',
              content: json({ type: 'object', required: ['id', 'rerunOf'], properties: { id: { type: 'string' }, rerunOf: { type: 'string' } } }),
            },
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
              content: json(ref('JobView')),
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
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API token (DRAFTSMAN_API_TOKENS; `npm start` writes one to data/api-token)' } },
      schemas: {
        JobSpec: jsonSchema(jobSpecSchema),
        JobView: jobView,
        Problem: {
          type: 'object',
          description: 'RFC 9457 problem details; `instance` is the request id (X-Request-Id)',
          required: ['type', 'title', 'status', 'detail', 'instance', 'code'],
          properties: {
            type: { type: 'string', format: 'uri-reference', description: '/problems/<code>, served by the API' },
            title: { type: 'string' },
            status: { type: 'integer' },
            detail: { type: 'string' },
            instance: { type: 'string' },
            code: { enum: Object.keys(PROBLEMS) },
            field: { type: 'string', description: 'JSON path of the bad input' },
          },
        },
      },
    },
  };
}

/** Where the committed document lives. */
export const committedOpenApiPath = (root: string) => path.join(root, 'docs', 'openapi.json');

export const packageVersion = (root: string) => (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
