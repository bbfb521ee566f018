/** An operation of the route table (api/routes.ts). */
import type { Scope } from '../auth';
import type { Json } from '../openapi-parts';

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
