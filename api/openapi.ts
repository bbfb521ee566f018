import fs from 'node:fs';
import path from 'node:path';

import { jobSpecSchema } from '../common/spec';

import { LOG_EVENT_SCHEMAS } from './schemas';

import { components, error, jsonSchema, type Json } from './openapi-parts';
import { ROUTES } from './routes';

export { allowedMethods } from './operations';

/** Every route's operation, with its id, tag, security and the answers of the token check. */
function paths(jobSpec: Json): Record<string, Record<string, Json>> {
  const out: Record<string, Record<string, Json>> = {};
  for (const route of ROUTES) {
    const op = route.doc({ jobSpec });
    op.operationId = route.id;
    op.tags = [route.tag];
    // Node's HTTP server refuses these itself, before any route (no body).
    op.responses = { ...(op.responses as Json), 431: { description: 'the request line or its headers are too large (answered without a body)' } };
    op.security = route.scope ? [{ bearer: [] }, { session: [] }] : [];
    if (route.scope) {
      op.responses = {
        ...(op.responses as Json),
        401: error('no valid bearer token'),
        403: (op.responses as Json)[403] ?? error(`the token lacks the ${route.scope} scope`),
        429: error("past the token's request rate (Retry-After says when to retry)"),
      };
    }
    (out[route.path] ??= {})[route.method] = op;
  }
  return out;
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
      { name: 'groups', description: 'Groups of attempts forked from one kept workspace (best-of-N)' },
      { name: 'service', description: 'Health, metrics, this document and the problem types' },
      { name: 'hosts', description: 'The hosts that run steps: their room, and their drain for an upgrade (admin scope to drain)' },
      { name: 'caches', description: 'Saved dependency caches and workspaces kept after setup, on every host (admin scope)' },
      { name: 'webhooks', description: 'Endpoints that hear of job events, signed as Standard Webhooks does (admin scope)' },
      { name: 'codec', description: "The Temporal Web UI's remote codec" },
    ],
    security: [{ bearer: [] }],
    paths: paths(jobSpec),
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
