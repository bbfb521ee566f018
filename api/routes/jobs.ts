/** The route table's operations: Start, watch, cancel, rerun and approve jobs. (api/routes.ts puts the table together.) */

import {
  approvalBody,
  approvalSchema,
  cancelBody,
  cancellingSchema,
  eventsSchema,
  forkBody,
  groupStartedSchema,
  groupViewSchema,
  jobPageSchema,
  jobViewSchema,
  listJobsQuery,
  logsQuery,
  rerunBody,
  rerunStartedSchema,
  resumeBody,
  resumeStartedSchema,
  startedSchema,
  usageQuery,
  usageSchema,
  waitQuery,
} from '../schemas';

import { answer, error, idempotencyKeyParam, idParam, jobLinks, json, jsonSchema, queryParameters } from '../openapi-parts';

import type { Route } from './route';

export const JOBS_ROUTES: readonly Route[] = [
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
    id: 'forkJob',
    method: 'post',
    path: '/v1/jobs/{id}/forks',
    tag: 'groups',
    scope: 'write',
    doc: () => ({
      summary:
        "Start a group of attempts (best-of-N) from the workspace the job kept: each a job of the caller's, from the parent's spec with its variant's changes, all accepted or none",
      parameters: [idParam, idempotencyKeyParam],
      requestBody: { required: true, content: json(jsonSchema(forkBody)) },
      responses: {
        202: answer("the group (Location names it) and its attempts' ids; the parent's `forked` event names them", groupStartedSchema),
        400: error('invalid body, variant or Idempotency-Key'),
        403: error('a secret the caller is not granted, or no write scope'),
        404: error('no such job'),
        409: error("the job kept no workspace at `after` that the caller's jobs may use, or its spec is no longer accepted"),
        413: error('body too large'),
        415: error('a body that is not application/json'),
        422: error('the Idempotency-Key was used with another body'),
      },
    }),
  },
  {
    id: 'getGroup',
    method: 'get',
    path: '/v1/groups/{id}',
    tag: 'groups',
    scope: 'read',
    doc: () => ({
      summary: 'A group of attempts: each with its status, validation outcome, patch size and duration, and the winner its rule picked',
      parameters: [{ ...idParam, description: "the group's id" }],
      responses: { 200: answer('the group', groupViewSchema), 404: error('no such group') },
    }),
  },
  {
    id: 'resumeJob',
    method: 'post',
    path: '/v1/jobs/{id}/resume',
    tag: 'jobs',
    scope: 'write',
    doc: () => ({
      summary:
        'Start a failed or timed-out job again from the last workspace it kept, running only what follows that point (loop, validate and publish may be changed)',
      parameters: [idParam, idempotencyKeyParam],
      requestBody: { required: false, content: json(jsonSchema(resumeBody)) },
      responses: {
        202: {
          ...answer("the new job and the point it starts from; its `created` event and the failed job's `resumed` event link the two", resumeStartedSchema),
          links: jobLinks,
        },
        400: error('invalid body or Idempotency-Key'),
        403: error('a secret the caller is not granted, or no write scope'),
        404: error('no such job'),
        409: error('the job has not failed or timed out, or kept no workspace the caller may start from'),
        413: error('body too large'),
        415: error('a body that is not application/json'),
        422: error('the Idempotency-Key was used with another body'),
      },
    }),
  },
  {
    id: 'getUsage',
    method: 'get',
    path: '/v1/usage',
    tag: 'jobs',
    scope: 'read',
    doc: () => ({
      summary: "The jobs' ledgers summed (wall and CPU time, memory peak, steps, egress), in all and per principal, for jobs created in a time range",
      parameters: queryParameters(usageQuery),
      responses: {
        200: answer('the sums', usageSchema),
        400: error('invalid query'),
        403: error("another principal's usage without the admin scope"),
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
