/**
 * The Express side of the route table (routes.ts): an operation is mounted by its id, at
 * the table's method and path, behind the guard of the table's scope.
 */
import type { Express, RequestHandler } from 'express';
import type { Authenticator } from './auth';
import { ROUTES, type Route } from './routes';

const BY_ID = new Map(ROUTES.map((r) => [r.id, r]));

/** Express's form of a table path: `{id}` becomes `:id`. */
export const expressPath = (path: string) => path.replace(/\{(\w+)\}/g, ':$1');

export interface Mount {
  /** Mounts operation `id`: the guard of its scope (none for a route served without a token), then `handlers`. */
  (id: string, ...handlers: RequestHandler[]): void;
  /** As mount, with `before` ahead of the guard (the codec's CORS headers, which a refusal needs too). */
  after(before: RequestHandler[], id: string, ...handlers: RequestHandler[]): void;
  /** Throws unless every operation of the table was mounted once: an operation the API documents but does not serve. */
  complete(): void;
}

export function mounter(app: Express, auth: Pick<Authenticator, 'require'>): Mount {
  const mounted = new Set<string>();
  const register = (before: RequestHandler[], id: string, handlers: RequestHandler[]) => {
    const route: Route | undefined = BY_ID.get(id);
    if (!route) throw new Error(`no operation ${id} in the route table (api/routes.ts)`);
    if (mounted.has(id)) throw new Error(`operation ${id} is mounted twice`);
    mounted.add(id);
    const guard = route.scope ? [auth.require(route.scope, route.csrf === false ? { csrf: false } : {})] : [];
    app[route.method](expressPath(route.path), ...before, ...guard, ...handlers);
  };
  const mount = ((id: string, ...handlers: RequestHandler[]) => register([], id, handlers)) as Mount;
  mount.after = (before, id, ...handlers) => register(before, id, handlers);
  mount.complete = () => {
    const missing = ROUTES.filter((r) => !mounted.has(r.id)).map((r) => r.id);
    if (missing.length) throw new Error(`operations of the route table with no handler: ${missing.join(', ')}`);
  };
  return mount;
}
