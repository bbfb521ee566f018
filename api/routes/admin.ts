/** The route table's operations: Hosts (drain), caches and webhooks: the operator's operations. (api/routes.ts puts the table together.) */
import { z } from 'zod';

import {
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
} from '../schemas';

import { answer, error, hostIdParam, json, jsonSchema, queryParameters, webhookIdParam } from '../openapi-parts';

import type { Route } from './route';

export const ADMIN_ROUTES: readonly Route[] = [
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
];
