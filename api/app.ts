import { randomUUID } from 'node:crypto';
import type { PayloadCodec } from '@temporalio/common';
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { type JobsClient, newJobId } from '../client/jobs';
import type { Config } from '../common/config';
import { diskRoom } from '../common/disk';
import { isInvalidJobSpecError } from '../common/errors';
import { firstUngranted, specSecretRefs, ungrantedMessage } from '../common/grants';
import { FINAL_STATUSES, JOB_ID_PATTERN, type JobView } from '../common/job';
import type { Logger } from '../common/logger';
import { Metrics } from '../common/metrics';
import { resolveJobSpec, specPolicy } from '../common/spec';
import { IdempotencyStore } from '../db/idempotency-store';
import { decodeCursor, encodeCursor } from '../db/list-cursor';
import type { JobStore } from '../db/store';
import { projectRoot } from '../stack/paths';
import type { Authenticator } from './auth';
import { mountCodec } from './codec';
import { HttpError, PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_PREFIX, PROBLEMS, type ProblemCode, problem, requestIdFrom } from './errors';
import { serveLogs } from './logs';
import { derivedJobId, IDEMPOTENCY_TTL_HOURS } from './idempotency';
import { IdempotentRequests } from './idempotent-requests';
import { openApiDocument, packageVersion } from './openapi';
import { cancelBody, listJobsQuery, logsQuery } from './schemas';

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
    Pick<Config, 'DRAFTSMAN_MAX_FOLLOW_STREAMS' | 'DRAFTSMAN_API_MAX_BODY_BYTES' | 'DRAFTSMAN_SECRET_GRANTS'> & { DRAFTSMAN_CODEC_CORS_ORIGINS?: readonly string[] };
  log?: (line: string) => void;
}

/** Parses untrusted input with a schema; the first problem becomes a 400 naming the field. */
function parseInput<T extends z.ZodType>(schema: T, value: unknown, code: ProblemCode): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : issue.path.map(String).join('.');
  const message = issue.code === 'unrecognized_keys' ? `unknown parameter ${field}` : `${field}: ${issue.message}`;
  throw new HttpError(code, message, field || undefined);
}

const version = packageVersion(projectRoot());

function jobIdParam(req: Request): string {
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

  // Everything below needs a token; reading needs `read`, submitting and cancelling `write`.
  const read = auth.require('read');
  const write = auth.require('write');

  mountCodec(app, codec, config.DRAFTSMAN_CODEC_CORS_ORIGINS ?? [], read);

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

  const idempotent = new IdempotentRequests(new IdempotencyStore(store.pool, IDEMPOTENCY_TTL_HOURS));

  app.post('/v1/jobs', write, requireJson, json, async (req, res) => {
    let spec;
    try {
      spec = resolveJobSpec(req.body, specPolicy(config));
    } catch (err) {
      if (isInvalidJobSpecError(err)) throw new HttpError('invalid_spec', err.message, err.field);
      throw err;
    }
    // The token's name is the job's principal; its secret grants are checked before anything starts.
    const principal = String(res.locals.token);
    const ungranted = firstUngranted(config.DRAFTSMAN_SECRET_GRANTS, principal, specSecretRefs(spec));
    if (ungranted) throw new HttpError('secret_not_granted', ungrantedMessage(ungranted, principal), ungranted.field);
    // Only a request that passed the checks above claims its key: a refused one may be corrected and sent again.
    const claim = await idempotent.claim(req, res, 'POST /v1/jobs');
    if (claim?.record.answer) return idempotent.replay(res, claim.record.answer);
    const requestId = String(res.locals.requestId);
    const id = claim ? derivedJobId(principal, claim.key, claim.record.firstSeen) : newJobId();
    let started: { runId: string } | null = null;
    try {
      started = await jobs.start(req.body, id, { principal, requestId });
    } catch (err) {
      // A duplicate that ran at the same time, or a first request that died before it answered, started it.
      if (!(claim && err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    if (started) {
      // The workflow records the job itself; this row only makes it visible before a worker picks it up.
      await store.recordQueued(id, started.runId, spec.repo, spec.commit, req.body, { principal, requestId }).catch((err: Error) => {
        log(`recording queued job ${id} failed (the worker will record it): ${err.message}`);
      });
      metrics.jobsSubmitted.inc();
      logger?.info({ jobId: id, repo: spec.repo, commit: spec.commit, requestId }, 'job submitted');
    }
    await claim?.save(202, { id });
    res.status(202).location(`/v1/jobs/${id}`).json({ id });
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
    if (job) return void res.json(job);
    // Started through the client SDK and not yet picked up by a worker.
    const workflow = await jobs.describe(id);
    if (!workflow) throw new HttpError('not_found', `no job ${id}`);
    const queued: JobView = {
      id,
      status: 'queued',
      repo: null,
      commit: null,
      createdAt: new Date().toISOString(),
      startedAt: null,
      finishedAt: null,
      steps: [],
      loop: null,
    };
    res.json(queued);
  });

  app.get('/v1/jobs/:id/events', read, async (req, res) => {
    const id = jobIdParam(req);
    const events = await store.events(id);
    if (events.length === 0 && !(await store.getJob(id))) throw new HttpError('not_found', `no job ${id}`);
    res.json({ events });
  });

  let following = 0;
  app.get('/v1/jobs/:id/logs', read, async (req, res) => {
    const query = parseInput(logsQuery, req.query, 'invalid_query');
    const follow = query.follow === 'true' || query.follow === '1';
    if (!follow) return serveLogs(store, jobIdParam(req), query, req, res);
    if (following >= config.DRAFTSMAN_MAX_FOLLOW_STREAMS) {
      res.set('retry-after', '5');
      throw new HttpError('too_many_streams', `this API already serves ${following} log streams (DRAFTSMAN_MAX_FOLLOW_STREAMS); retry in 5 s, or read the logs without follow`);
    }
    following++;
    try {
      await serveLogs(store, jobIdParam(req), query, req, res);
    } finally {
      following--;
    }
  });

  app.get('/v1/jobs/:id/patch', read, async (req, res) => {
    const id = jobIdParam(req);
    const patch = await store.getPatch(id);
    if (!patch) {
      const job = await store.getJob(id);
      throw new HttpError('not_found', job ? `job ${id} has no patch (it has no loop, or has not finished it)` : `no job ${id}`);
    }
    res
      .status(200)
      .type('text/x-diff')
      .set('x-draftsman-patch-truncated', String(patch.truncated))
      .send(patch.data);
  });

  app.post('/v1/jobs/:id/cancel', write, requireJson, json, async (req, res) => {
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
    if (job) await store.event(id, `cancel_requested:${requestId}`, 'cancel_requested', { requestId, principal: String(res.locals.token), ...(reason ? { reason } : {}) });
    await jobs.cancel(id, reason);
    await claim?.save(202, { id, status: 'cancelling' });
    res.status(202).json({ id, status: 'cancelling' });
  });

  app.use(read, (_req, _res, next) => next(new HttpError('not_found', 'no such route')));

  const sendProblem = (res: Response, code: ProblemCode, detail: string, field?: string, status?: number) => {
    const body = problem(code, detail, String(res.locals.requestId), field);
    res.status(status ?? body.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(status ? { ...body, status } : body));
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
