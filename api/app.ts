import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { PayloadCodec } from '@temporalio/common';
import express, { type NextFunction, type Request, type Response } from 'express';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { type JobsClient, newJobId } from '../client/jobs';
import type { Config } from '../common/config';
import { diskRoom } from '../common/disk';
import { isInvalidJobSpecError } from '../common/errors';
import { firstUngranted, specSecretRefs, ungrantedMessage } from '../common/grants';
import { FINAL_STATUSES, JOB_ID_PATTERN, type JobView } from '../common/job';
import type { Logger } from '../common/logger';
import { Metrics } from '../common/metrics';
import { type JobSpec, resolveJobSpec, specInput, specPolicy } from '../common/spec';
import { IdempotencyStore } from '../db/idempotency-store';
import { decodeCursor, encodeCursor } from '../db/list-cursor';
import type { JobStore } from '../db/store';
import { projectRoot } from '../common/paths';
import type { Authenticator } from './auth';
import { mountApproval } from './approval';
import { mountCodec } from './codec';
import { mountDashboard } from './dashboard';
import { mountSessions } from './session';
import { SessionStore } from '../db/session-store';
import { mountTemporalUi, TEMPORAL_UI_PATH } from './temporal-ui';
import { HttpError, parseInput, PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_PREFIX, PROBLEMS, type ProblemCode, problem, requestIdFrom } from './errors';
import { FollowStreams, serveLogs } from './logs';
import { webSocketUpgrade } from './ws';
import { mountWebhooks } from './webhooks';
import { WebhookStore } from '../db/webhook-store';
import { HostStore } from '../db/host-store';
import { KeptStore } from '../db/kept-store';
import { mountCaches } from './caches';
import { mountHosts } from './hosts';
import { DEFAULT_TASK_QUEUE } from '../common/names';
import { parseExceptions } from '../common/egress-policy';
import { derivedJobId, IDEMPOTENCY_TTL_HOURS } from './idempotency';
import { IdempotentRequests } from './idempotent-requests';
import { allowedMethods, openApiDocument, packageVersion } from './openapi';
import { cancelBody, listJobsQuery, logsQuery, rerunBody, waitQuery } from './schemas';
import { JobFeeds, waitForEnd } from './job-feed';

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
    Partial<Pick<Config, 'DRAFTSMAN_SESSION_HOURS' | 'DRAFTSMAN_TEMPORAL_UI_PROXY' | 'TEMPORAL_NAMESPACE' | 'DRAFTSMAN_TASK_QUEUE'>> & {
      DRAFTSMAN_CODEC_CORS_ORIGINS?: readonly string[];
    };
  log?: (line: string) => void;
}

const version = packageVersion(projectRoot());

/** A job started through the client SDK that no worker has picked up yet. */
const queuedView = (id: string): JobView => ({
  id,
  status: 'queued',
  repo: null,
  commit: null,
  createdAt: new Date().toISOString(),
  startedAt: null,
  finishedAt: null,
  steps: [],
  loop: null,
});

function jobIdParam(req: Pick<Request, 'params'>): string {
  const id = String(req.params.id);
  if (!JOB_ID_PATTERN.test(id)) throw new HttpError('not_found', `no job ${JSON.stringify(id)}`);
  return id;
}

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

  app.get('/health', async (_req, res) => {
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

  // Everything below needs a token; reading needs `read`, submitting and cancelling `write`,
  // approval decisions `approve`, webhooks `admin`.
  const read = auth.require('read');
  const sessions = new SessionStore(store.pool);
  auth.useSessions(sessions);
  const write = auth.require('write');

  // The codec's POSTs change nothing: the Temporal Web UI sends them with the session's cookie only.
  mountCodec(app, codec, config.DRAFTSMAN_CODEC_CORS_ORIGINS ?? [], auth.require('read', { csrf: false }));
  if (config.DRAFTSMAN_TEMPORAL_UI_PROXY) mountTemporalUi(app, new URL(config.DRAFTSMAN_TEMPORAL_UI_PROXY), auth.require('admin', { csrf: false }));

  // The problem types, public like the error answers that name them.
  app.get(`${PROBLEM_TYPE_PREFIX}:code`, (req, res, next) => {
    const code = String(req.params.code);
    if (!Object.hasOwn(PROBLEMS, code)) return next(new HttpError('not_found', `no problem type ${JSON.stringify(code.slice(0, 64))}`));
    res.json({ type: `${PROBLEM_TYPE_PREFIX}${code}`, code, ...PROBLEMS[code as ProblemCode] });
  });
  app.get(PROBLEM_TYPE_PREFIX.replace(/\/$/, ''), (_req, res) => {
    res.json({ problems: Object.entries(PROBLEMS).map(([code, p]) => ({ type: `${PROBLEM_TYPE_PREFIX}${code}`, code, ...p })) });
  });

  const document = openApiDocument(version);
  // Public: clients are generated from it before anyone has a token.
  app.get('/openapi.json', (_req, res) => {
    res.json(document);
  });

  app.get('/metrics', read, async (_req, res) => {
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

  /**
   * Starts a job of `input` for the request's principal: the spec and the principal's
   * secret grants are checked, the request's Idempotency-Key is claimed on `route`, and the
   * answer is kept for the key's retries. `rerunOf` names the job a rerun repeats.
   */
  async function startJob(req: Request, res: Response, input: unknown, route: string, rerunOf?: string): Promise<void> {
    let spec;
    try {
      spec = resolveJobSpec(input, specPolicy(config));
    } catch (err) {
      if (!isInvalidJobSpecError(err)) throw err;
      if (rerunOf) throw new HttpError('job_not_rerunnable', `job ${rerunOf} cannot run again on this server: ${err.message}`, err.field);
      throw new HttpError('invalid_spec', err.message, err.field);
    }
    // The token's name is the job's principal; its secret grants are checked before anything starts.
    const principal = String(res.locals.token);
    const ungranted = firstUngranted(config.DRAFTSMAN_SECRET_GRANTS, principal, specSecretRefs(spec));
    if (ungranted) throw new HttpError('secret_not_granted', ungrantedMessage(ungranted, principal), ungranted.field);
    // Only a request that passed the checks above claims its key: a refused one may be corrected and sent again.
    const claim = await idempotent.claim(req, res, route);
    if (claim?.record.answer) return idempotent.replay(res, claim.record.answer);
    const requestId = String(res.locals.requestId);
    const id = claim ? derivedJobId(principal, rerunOf ? `rerun:${rerunOf}:${claim.key}` : claim.key, claim.record.firstSeen) : newJobId();
    let started: { runId: string } | null = null;
    try {
      started = await jobs.start(input as JobSpec, id, { principal, requestId });
    } catch (err) {
      // A duplicate that ran at the same time, or a first request that died before it answered, started it.
      if (!(claim && err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    if (started) {
      const by = { principal, requestId, ...(rerunOf ? { rerunOf } : {}) };
      // The workflow records the job itself; this row only makes it visible before a worker picks it up.
      await store.recordQueued(id, started.runId, spec.repo, spec.commit, input, by).catch((err: Error) => {
        log(`recording queued job ${id} failed (the worker will record it): ${err.message}`);
      });
      if (rerunOf) await store.event(rerunOf, `rerun:${id}`, 'rerun', { jobId: id, principal, requestId });
      metrics.jobsSubmitted.inc();
      logger?.info({ jobId: id, repo: spec.repo, commit: spec.commit, requestId, ...(rerunOf ? { rerunOf } : {}) }, 'job submitted');
    }
    const body = rerunOf ? { id, rerunOf } : { id };
    await claim?.save(202, body);
    res.status(202).location(`/v1/jobs/${id}`).json(body);
  }

  app.post('/v1/jobs', write, requireJson, json, async (req, res) => {
    await startJob(req, res, req.body, 'POST /v1/jobs');
  });

  // The same spec again, as a new job of the caller (whose secret grants it needs).
  app.post('/v1/jobs/:id/rerun', write, optionalJson, json, async (req, res) => {
    const id = jobIdParam(req);
    parseInput(rerunBody, req.body ?? {}, 'invalid_body');
    const stored = await store.getSpec(id);
    if (!stored) {
      throw new HttpError(
        'not_found',
        (await jobs.describe(id)) ? `job ${id} was started through the SDK and no worker has recorded it yet: rerun it once one has` : `no job ${id}`,
      );
    }
    await startJob(req, res, specInput(stored, specPolicy(config)), `POST /v1/jobs/${id}/rerun`, id);
  });

  // Long poll: answers when the job has ended, or after `timeout` seconds with it as it is.
  app.get('/v1/jobs/:id/wait', read, async (req, res) => {
    const id = jobIdParam(req);
    const { timeout } = parseInput(waitQuery, req.query, 'invalid_query');
    if (!(await store.jobState(id)) && !(await jobs.describe(id))) throw new HttpError('not_found', `no job ${id}`);
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    await waitForEnd(feeds, id, (timeout ?? 30) * 1000, abort.signal);
    const job = await store.getJob(id);
    res.set('x-draftsman-job-ended', String(Boolean(job?.finishedAt))).json(job ?? queuedView(id));
  });

  app.get('/v1/jobs', read, async (req, res) => {
    const { cursor, limit, ...filter } = parseInput(listJobsQuery, req.query, 'invalid_query');
    const after = cursor === undefined ? undefined : decodeCursor(cursor);
    if (after === null) throw new HttpError('invalid_query', 'cursor: not a cursor of this API (use a nextCursor as it was given)', 'cursor');
    const page = await store.listJobs({ ...filter, after, limit: limit ?? 50 });
    res.json({ jobs: page.jobs, nextCursor: page.next ? encodeCursor(page.next) : null });
  });

  app.get('/v1/jobs/:id', read, async (req, res) => {
    const id = jobIdParam(req);
    const job = await store.getJob(id);
    if (job && !FINAL_STATUSES.includes(job.status)) {
      // What only the server knows: an activity failing and being tried again (a view without it is still served).
      const retrying = await jobs.retrying(id).catch(() => null);
      if (retrying) job.retrying = retrying;
    }
    if (job) return void res.json(job);
    // Started through the client SDK and not yet picked up by a worker.
    const workflow = await jobs.describe(id);
    if (!workflow) throw new HttpError('not_found', `no job ${id}`);
    res.json(queuedView(id));
  });

  app.get('/v1/jobs/:id/events', read, async (req, res) => {
    const id = jobIdParam(req);
    const events = await store.events(id);
    if (events.length === 0 && !(await store.getJob(id))) throw new HttpError('not_found', `no job ${id}`);
    res.json({ events });
  });

  app.get('/v1/jobs/:id/logs', read, async (req, res) => {
    const query = parseInput(logsQuery, req.query, 'invalid_query');
    const follow = query.follow === 'true' || query.follow === '1';
    if (!follow) return serveLogs(store, feeds, jobIdParam(req), query, req, res);
    if (streams.full()) {
      res.set('retry-after', '5');
      throw streams.refusal();
    }
    const release = streams.open();
    try {
      await serveLogs(store, feeds, jobIdParam(req), query, req, res);
    } finally {
      release();
    }
  });

  // Upgrades are answered by the server's upgrade listener (api/ws.ts); a plain GET learns why not.
  app.get('/v1/jobs/:id/logs/ws', read, (req, res) => {
    parseInput(logsQuery.omit({ follow: true }), req.query, 'invalid_query');
    jobIdParam(req);
    res.set('upgrade', 'websocket');
    throw new HttpError('upgrade_required', 'this endpoint is a WebSocket: send an upgrade request (or use /logs?follow=true for Server-Sent Events)');
  });

  app.get('/v1/jobs/:id/patch', read, async (req, res) => {
    const id = jobIdParam(req);
    const patch = await store.getPatch(id);
    if (!patch) {
      const job = await store.getJob(id);
      throw new HttpError('not_found', job ? `job ${id} has no patch (it has no loop, or has not finished it)` : `no job ${id}`);
    }
    res.status(200).type('text/x-diff').set('x-draftsman-patch-truncated', String(patch.truncated)).send(patch.data);
  });

  app.post('/v1/jobs/:id/cancel', write, optionalJson, json, async (req, res) => {
    const id = jobIdParam(req);
    const { reason } = parseInput(cancelBody, req.body ?? {}, 'invalid_body');
    const claim = await idempotent.claim(req, res, `POST /v1/jobs/${id}/cancel`);
    if (claim?.record.answer) return idempotent.replay(res, claim.record.answer);
    const job = await store.getJob(id);
    const workflow = await jobs.describe(id);
    if (!job && !workflow) throw new HttpError('not_found', `no job ${id}`);
    if (!workflow?.running || (job && FINAL_STATUSES.includes(job.status))) {
      throw new HttpError('job_ended', `job ${id} has already ended`);
    }
    const requestId = String(res.locals.requestId);
    // Who asked, and in which request (the job's own `cancelled` event follows when it stops).
    if (job)
      await store.event(id, `cancel_requested:${requestId}`, 'cancel_requested', {
        requestId,
        principal: String(res.locals.token),
        ...(reason ? { reason } : {}),
      });
    await jobs.cancel(id, reason);
    await claim?.save(202, { id, status: 'cancelling' });
    res.status(202).json({ id, status: 'cancelling' });
  });

  mountSessions(app, { auth, sessions, hours: config.DRAFTSMAN_SESSION_HOURS ?? 12, json: [requireJson, json] });

  mountDashboard(app, {
    assets: path.join(projectRoot(), 'dist', 'web'),
    read,
    temporalUi: config.DRAFTSMAN_TEMPORAL_UI_PROXY ? `${TEMPORAL_UI_PATH}/namespaces/${config.TEMPORAL_NAMESPACE ?? 'default'}/workflows` : undefined,
  });

  mountApproval(app, {
    jobs,
    store,
    idempotent,
    approve: auth.require('approve'),
    json: [requireJson, json],
    jobId: jobIdParam,
  });

  mountHosts(app, { hosts: new HostStore(store.pool, config.DRAFTSMAN_TASK_QUEUE ?? DEFAULT_TASK_QUEUE), read, admin: auth.require('admin') });
  mountCaches(app, { kept: new KeptStore(store.pool), admin: auth.require('admin') });

  mountWebhooks(app, {
    store: new WebhookStore(store.pool),
    admin: auth.require('admin'),
    json: [requireJson, json],
    exceptions: parseExceptions(config.DRAFTSMAN_WEBHOOK_EXCEPTIONS),
  });

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
