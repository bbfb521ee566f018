/**
 * The route table: every operation of the API once, with its method, path, scope, tag and
 * OpenAPI description (summary, parameters, body, answers), one file per group in
 * api/routes/. The OpenAPI document (openapi.ts) and the Express routes (route.ts) are
 * both made from it.
 */
import { ADMIN_ROUTES } from './routes/admin';
import { CODEC_ROUTES } from './routes/codec';
import { JOBS_ROUTES } from './routes/jobs';
import { SERVICE_ROUTES } from './routes/service';

export type { Method, Route } from './routes/route';
import type { Route } from './routes/route';

/** In the document's order: jobs, service, then the operator's and the codec's. */
export const ROUTES: readonly Route[] = [...JOBS_ROUTES, ...SERVICE_ROUTES, ...ADMIN_ROUTES, ...CODEC_ROUTES];
