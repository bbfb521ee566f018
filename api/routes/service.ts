/** The route table's operations: Health, metrics, this document, the problem types, and signing in. (api/routes.ts puts the table together.) */

import { PROBLEMS } from '../errors';
import { sessionBody, sessionSchema, healthSchema, problemTypeSchema, problemTypesSchema } from '../schemas';

import { answer, error, json, jsonSchema } from '../openapi-parts';

import type { Route } from './route';

export const SERVICE_ROUTES: readonly Route[] = [
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
];
