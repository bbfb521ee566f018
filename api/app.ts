import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { PayloadCodec } from '@temporalio/common';
import express, { type NextFunction, type Request, type Response } from 'express';
import { type JobsClient } from '../client/jobs';
import type { Config } from '../common/config';
import { diskRoom } from '../common/disk';
import type { Logger } from '../common/logger';
import { Metrics } from '../common/metrics';
import { specPolicy } from '../common/spec';
import { IdempotencyStore } from '../db/idempotency-store';
import type { JobStore } from '../db/store';
import { projectRoot } from '../common/paths';
import type { Authenticator } from './auth';
import { mountApproval } from './approval';
import { mountCodec } from './codec';
import { mountDashboard } from './dashboard';
import { mountSessions } from './session';
import { SessionStore } from '../db/session-store';
import { mountTemporalUi, TEMPORAL_UI_PATH } from './temporal-ui';
import { HttpError, PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_PREFIX, PROBLEMS, type ProblemCode, problem, requestIdFrom } from './errors';
import { FollowStreams } from './logs';
import { webSocketUpgrade } from './ws';
import { mountGroups } from './groups';
import { jobIdParam, mountJobs } from './jobs';
import { mounter } from './route';
import { mountWebhooks } from './webhooks';
import { WebhookStore } from '../db/webhook-store';
import { HostStore } from '../db/host-store';
import { KeptStore } from '../db/kept-store';
import { mountCaches } from './caches';
import { mountHosts } from './hosts';
import { DEFAULT_TASK_QUEUE } from '../common/names';
import { parseExceptions } from '../common/egress-policy';
import { IDEMPOTENCY_TTL_HOURS } from './idempotency';
import { IdempotentRequests } from './idempotent-requests';
import { allowedMethods, openApiDocument, packageVersion } from './openapi';
import { JobFeeds } from './job-feed';

export interface ApiDeps {
  store: JobStore;
  jobs: JobsClient;
  auth: Authenticator;
  /** The payload codec the codec endpoints use; none when payloads are not encrypted. */
  codec?: PayloadCodec;
  metrics?: Metrics;
  logger?: Logger;
  config: Parameters<typeof specPolicy>[0] &
    Parameters<typeof diskRoom>[0] &
    Pick<Config, 'DRAFTSMAN_MAX_FOLLOW_STREAMS' | 'DRAFTSMAN_API_MAX_BODY_BYTES' | 'DRAFTSMAN_SECRET_GRANTS' | 'DRAFTSMAN_WEBHOOK_EXCEPTIONS'> &
    Partial<
      Pick<Config, 'DRAFTSMAN_SESSION_HOURS' | 'DRAFTSMAN_TEMPORAL_UI_PROXY' | 'TEMPORAL_NAMESPACE' | 'DRAFTSMAN_TASK_QUEUE' | 'DRAFTSMAN_CACHE_SCOPE'>
    > & {
      DRAFTSMAN_CODEC_CORS_ORIGINS?: readonly string[];
    };
  log?: (line: string) => void;
}

const version = packageVersion(projectRoot());

export function createApp({ store, jobs, auth, codec, config, metrics = new Metrics(), logger, log = () => undefined }: ApiDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    // Every answer carries the request's id; errors name it as their `instance`, and the
    // log line and the audit trail keep it.
    const requestId = requestIdFrom(req.headers['x-request-id'], randomUUID);
    res.locals.requestId = requestId;
    res.set('x-request-id', requestId);
    res.on('finish', () => {
      // The route pattern, not the path, so that job ids do not become label values.
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      metrics.httpRequests.inc({ method: req.method, route, status: String(res.statusCode) });
      // Health checks come every few seconds from the engine or a balancer: debug, not info.
      const level = route === '/health' && res.statusCode === 200 ? 'debug' : 'info';
      logger?.[level](
        {
          method: req.method,
          route,
          status: res.statusCode,
          ms: Number(process.hrtime.bigint() - started) / 1e6,
          jobId: typeof req.params?.id === 'string' ? req.params.id : undefined,
          requestId,
        },
        'request',
      );
    });
    next();
  });

  // Every documented operation is mounted from the route table (routes.ts), behind its scope's guard.
  const mount = mounter(app, auth);

  mount('getHealth', async (_req, res) => {
    const database = await store.ping().then(
      () => 'ok',
      (err: Error) => `error: ${err.message}`,
    );
    // Below the disk floor new jobs wait queued: the service is degraded, not down.
    const disk = await diskRoom(config).catch((err: Error) => ({ error: err.message }));
    const healthy = database === 'ok';
    const status = !healthy ? 'unavailable' : disk && !('enough' in disk && disk.enough) ? 'degraded' : 'ok';
    res.status(healthy ? 200 : 503).json({ status, database, ...(disk ? { disk } : {}) });
  });

  // The scope each operation needs is in the route table: reading needs `read`, submitting
  // and cancelling `write`, approval decisions `approve`, webhooks, hosts and caches `admin`.
  // The dashboard's pages and an unknown route need `read` too.
  const read = auth.require('read');
  const sessions = new SessionStore(store.pool);
  auth.useSessions(sessions);

  // The codec's POSTs change nothing: the Temporal Web UI sends them with the session's cookie only.
  mountCodec(mount, codec, config.DRAFTSMAN_CODEC_CORS_ORIGINS ?? []);
  if (config.DRAFTSMAN_TEMPORAL_UI_PROXY) mountTemporalUi(app, new URL(config.DRAFTSMAN_TEMPORAL_UI_PROXY), auth.require('admin', { csrf: false }));

  // The problem types, public like the error answers that name them.
  mount('getProblemType', (req, res, next) => {
    const code = String(req.params.code);
    if (!Object.hasOwn(PROBLEMS, code)) return next(new HttpError('not_found', `no problem type ${JSON.stringify(code.slice(0, 64))}`));
    res.json({ type: `${PROBLEM_TYPE_PREFIX}${code}`, code, ...PROBLEMS[code as ProblemCode] });
  });
  mount('listProblemTypes', (_req, res) => {
    res.json({ problems: Object.entries(PROBLEMS).map(([code, p]) => ({ type: `${PROBLEM_TYPE_PREFIX}${code}`, code, ...p })) });
  });

  const document = openApiDocument(version);
  // Public: clients are generated from it before anyone has a token.
  mount('getOpenApi', (_req, res) => {
    res.json(document);
  });

  mount('getMetrics', async (_req, res) => {
    const { contentType, body } = await metrics.render();
    res.type(contentType).send(body);
  });

  const maxBody = config.DRAFTSMAN_API_MAX_BODY_BYTES;
  const json = express.json({ limit: maxBody, type: () => true });
  const requireJson = (req: Request, _res: Response, next: NextFunction) => {
    if (!req.is('application/json')) {
      return next(new HttpError('unsupported_media_type', 'request body must be application/json'));
    }
    next();
  };
  // A body is optional (no Content-Length, or 0, and no Transfer-Encoding); one that is sent must be JSON.
  const optionalJson = (req: Request, res: Response, next: NextFunction) => {
    const none = req.headers['transfer-encoding'] === undefined && (req.headers['content-length'] ?? '0') === '0';
    if (none) return next();
    requireJson(req, res, next);
  };

  // One reader per followed job, shared by its log followers and long polls.
  const feeds = new JobFeeds(store, log);
  const streams = new FollowStreams(config.DRAFTSMAN_MAX_FOLLOW_STREAMS);
  // Express makes its HTTP server in listen(); the WebSocket endpoint needs that server's upgrades.
  const upgrade = webSocketUpgrade({ auth, store, feeds, streams, metrics, log });
  const listen = app.listen.bind(app);
  app.listen = ((...args: Parameters<typeof listen>) =>
    listen(...args)
      .on('upgrade', upgrade)
      .on('close', () => void feeds.close())) as typeof app.listen;
  const idempotent = new IdempotentRequests(new IdempotencyStore(store.pool, IDEMPOTENCY_TTL_HOURS));

  const kept = new KeptStore(store.pool);
  mountJobs({ mount, store, kept, jobs, config, metrics, logger, log, feeds, streams, idempotent, json, requireJson, optionalJson });
  mountGroups({ mount, store, kept, jobs, config, metrics, idempotent, json, requireJson });

  mountSessions(mount, { auth, sessions, hours: config.DRAFTSMAN_SESSION_HOURS ?? 12, json: [requireJson, json] });

  mountDashboard(app, {
    assets: path.join(projectRoot(), 'dist', 'web'),
    read,
    temporalUi: config.DRAFTSMAN_TEMPORAL_UI_PROXY ? `${TEMPORAL_UI_PATH}/namespaces/${config.TEMPORAL_NAMESPACE ?? 'default'}/workflows` : undefined,
  });

  mountApproval(mount, {
    jobs,
    store,
    idempotent,
    json: [requireJson, json],
    jobId: jobIdParam,
  });

  mountHosts(mount, { hosts: new HostStore(store.pool, config.DRAFTSMAN_TASK_QUEUE ?? DEFAULT_TASK_QUEUE) });
  mountCaches(mount, { kept });

  mountWebhooks(mount, {
    store: new WebhookStore(store.pool),
    json: [requireJson, json],
    exceptions: parseExceptions(config.DRAFTSMAN_WEBHOOK_EXCEPTIONS),
  });

  mount.complete();

  // A path the API has, asked with a method it does not have: 405 and the methods it has
  // (the public document lists them anyway, so no token is needed to learn them).
  app.use((req, res, next) => {
    const allowed = allowedMethods(req.path);
    if (allowed.length === 0) return next();
    res.set('allow', allowed.join(', '));
    next(new HttpError('method_not_allowed', `${req.method} ${req.path}: use ${allowed.join(', ')}`));
  });
  app.use(read, (_req, _res, next) => next(new HttpError('not_found', 'no such route')));

  const sendProblem = (res: Response, code: ProblemCode, detail: string, field?: string, status?: number) => {
    const body = problem(code, detail, String(res.locals.requestId), field);
    res
      .status(status ?? body.status)
      .type(PROBLEM_CONTENT_TYPE)
      .send(JSON.stringify(status ? { ...body, status } : body));
  };

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof HttpError) return sendProblem(res, err.code, err.message, err.field);
    // body-parser's errors carry a status and a type (entity.parse.failed, entity.too.large...).
    const e = err as { status?: number; type?: string; message?: string };
    if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
      if (e.type === 'entity.too.large') {
        return sendProblem(res, 'too_large', `the request body is larger than ${maxBody} bytes (DRAFTSMAN_API_MAX_BODY_BYTES)`);
      }
      if (e.type === 'entity.parse.failed') return sendProblem(res, 'invalid_json', e.message ?? 'the body is not valid JSON');
      return sendProblem(res, 'bad_request', e.message ?? 'bad request', undefined, e.status);
    }
    log(`internal error (request ${String(res.locals.requestId)}): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    sendProblem(res, 'internal', 'internal error');
  });

  return app;
}
