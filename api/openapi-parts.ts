/** The pieces an OpenAPI document is built of: JSON Schemas from zod (components), parameters and answers. */
import { z } from 'zod';
import { PROBLEM_CONTENT_TYPE } from './errors';
import { payloadsBody, problemSchema } from './schemas';

export type Json = Record<string, unknown>;

/**
 * The JSON Schema of a zod schema, as a request (`input`) or an answer (`output`) has it.
 * Schemas with a meta id become components: zod puts them in `$defs`, which an OpenAPI
 * document cannot point into, so they move to `components.schemas` and the refs follow.
 */
// Filled as the document is built (the same schemas each time, so the same components).
export const components: Record<string, Json> = {};
export function jsonSchema(schema: z.ZodType, io: 'input' | 'output' = 'input'): Json {
  const { $schema: _drop, $defs, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Json & { $defs?: Record<string, Json> };
  const id = z.globalRegistry.get(schema)?.id;
  const relink = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(relink)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v).map(([k, x]) => [k, k === '$ref' && typeof x === 'string' ? x.replace('#/$defs/', '#/components/schemas/') : relink(x)]),
          )
        : v;
  for (const [name, def] of Object.entries($defs ?? {})) components[name] = relink(def) as Json;
  if (!id) return relink(rest) as Json;
  // zod gives a schema with an id as a ref to its own entry in $defs, moved above.
  if (!('$ref' in rest)) components[id] = relink(rest) as Json;
  return ref(id);
}

export function queryParameters(schema: z.ZodObject): Json[] {
  return Object.entries(schema.shape).map(([name, field]) => ({
    name,
    in: 'query',
    required: !(field as z.ZodType).safeParse(undefined).success,
    schema: jsonSchema(field as z.ZodType),
  }));
}

/**
 * What a started job's id leads to (OpenAPI links: clients and testers follow them). The
 * log stream and the long poll are left out (on a job that never ends they stay open), and
 * the patch, which exists only once the job's loop has ended.
 */
export const jobLinks = Object.fromEntries(
  ['getJob', 'listJobEvents', 'cancelJob', 'rerunJob'].map((operationId) => [operationId, { operationId, parameters: { id: '$response.body#/id' } }]),
);

export function ref(name: string): Json {
  return { $ref: `#/components/schemas/${name}` };
}
export const json = (schema: Json) => ({ 'application/json': { schema } });
/** An answer with a JSON body of `schema`. */
export const answer = (description: string, schema: z.ZodType) => ({ description, content: json(jsonSchema(schema, 'output')) });
export const error = (description: string) => ({ description, content: { [PROBLEM_CONTENT_TYPE]: { schema: jsonSchema(problemSchema, 'output') } } });
export const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
export const hostIdParam = { name: 'hostId', in: 'path', required: true, schema: { type: 'string' } };
export const webhookIdParam = { name: 'webhookId', in: 'path', required: true, schema: { type: 'string' } };
export const idempotencyKeyParam = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description: 'Per principal, kept 24 h: the same key and body get the first answer again (with Idempotent-Replayed: true); another body is a 422',
  schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,255}$' },
};

export const codecPath = (summary: string) => ({
  post: {
    summary,
    requestBody: { required: true, content: json(jsonSchema(payloadsBody)) },
    responses: { 200: answer('payloads', payloadsBody), 400: error('invalid payloads'), 404: error('encryption not configured') },
  },
  options: { summary: 'CORS preflight for the Web UI', responses: { 204: { description: 'allowed' } } },
});
