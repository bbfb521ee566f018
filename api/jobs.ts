/** The job routes: start, rerun, resume, wait, list, read, events, logs, patch, cancel. */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { type JobsClient, newJobId } from '../client/jobs';
import { isInvalidJobSpecError } from '../common/errors';
import { firstUngranted, specSecretRefs, ungrantedMessage } from '../common/grants';
import { budgetUnderCeiling } from '../common/budget';
import type { Config } from '../common/config';
import { lastKeptPoint, RESUMABLE, resumeSpec } from '../common/group';
import { FINAL_STATUSES, JOB_ID_PATTERN, type JobView, type KeepPoint } from '../common/job';
import type { Logger } from '../common/logger';
import type { Metrics } from '../common/metrics';
import { type JobSpec, resolveJobSpec, specInput, specPolicy } from '../common/spec';
import { warmScope } from '../common/warm';
import type { KeptStore } from '../db/kept-store';
import { decodeCursor, encodeCursor } from '../db/list-cursor';
import type { JobStore } from '../db/store';
import { usage } from '../db/usage';
import { HttpError, parseInput } from './errors';
import { derivedJobId } from './idempotency';
import type { IdempotentRequests } from './idempotent-requests';
import type { Mount } from './route';
import { type JobFeeds, waitForEnd } from './job-feed';
import { type FollowStreams, serveLogs } from './logs';
import { cancelBody, listJobsQuery, logsQuery, rerunBody, resumeBody, usageQuery, waitQuery } from './schemas';

/** The range GET /v1/usage sums without a `from`. */
const USAGE_DEFAULT_DAYS = 30;

type Middleware = (req: Request, res: Response, next: NextFunction) => void;

/** The job a new one comes from: a rerun repeats it, a resume goes on from a point it kept. */
type Origin = { kind: 'rerun'; of: string } | { kind: 'resume'; of: string; from: KeepPoint };

export interface JobRoutesDeps {
  store: JobStore;
  jobs: JobsClient;
  config: Parameters<typeof specPolicy>[0] & { DRAFTSMAN_SECRET_GRANTS: Parameters<typeof firstUngranted>[0] } & Partial<
      Pick<Config, 'DRAFTSMAN_CACHE_SCOPE' | 'DRAFTSMAN_BUDGET_CEILINGS'>
    >;
  kept: KeptStore;
  metrics: Metrics;
  logger?: Logger;
  log: (line: string) => void;
  feeds: JobFeeds;
  streams: FollowStreams;
  idempotent: IdempotentRequests;
  mount: Mount;
  json: RequestHandler;
  requireJson: Middleware;
  optionalJson: Middleware;
}

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

/** The `:id` of a route, when it can be a job's id (else the job is not found). */
export function jobIdParam(req: Pick<Request, 'params'>): string {
  const id = String(req.params.id);
  if (!JOB_ID_PATTERN.test(id)) throw new HttpError('not_found', `no job ${JSON.stringify(id)}`);
  return id;
}

export function mountJobs(d: JobRoutesDeps): void {
  const { mount, store, kept, jobs, config, metrics, logger, log, feeds, streams, idempotent, json, requireJson, optionalJson } = d;

  /**
   * Starts a job of `input` for the request's principal: the spec and the principal's
   * secret grants are checked, the request's Idempotency-Key is claimed on `route`, and the
   * answer is kept for the key's retries. `origin` names the job a rerun repeats or a
   * resume goes on from.
   */
  async function startJob(req: Request, res: Response, input: unknown, route: string, origin?: Origin): Promise<void> {
    let spec;
    try {
      spec = resolveJobSpec(input, specPolicy(config));
      budgetUnderCeiling(spec.budget, config.DRAFTSMAN_BUDGET_CEILINGS ?? {}, String(res.locals.token));
    } catch (err) {
      if (!isInvalidJobSpecError(err)) throw err;
      if (origin?.kind === 'rerun') throw new HttpError('job_not_rerunnable', `job ${origin.of} cannot run again on this server: ${err.message}`, err.field);
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
    const id = claim ? derivedJobId(principal, origin ? `${origin.kind}:${origin.of}:${claim.key}` : claim.key, claim.record.firstSeen) : newJobId();
    let started: { runId: string } | null = null;
    try {
      started = await jobs.start(input as JobSpec, id, { principal, requestId });
    } catch (err) {
      // A duplicate that ran at the same time, or a first request that died before it answered, started it.
      if (!(claim && err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    const link = origin?.kind === 'rerun' ? { rerunOf: origin.of } : origin ? { resumeOf: origin.of, from: origin.from } : {};
    if (started) {
      const by = { principal, requestId, ...link };
      // The workflow records the job itself; this row only makes it visible before a worker picks it up.
      await store.recordQueued(id, started.runId, spec.repo, spec.commit, input, by, jobs.taskQueue).catch((err: Error) => {
        log(`recording queued job ${id} failed (the worker will record it): ${err.message}`);
      });
      if (origin?.kind === 'rerun') await store.event(origin.of, `rerun:${id}`, 'rerun', { jobId: id, principal, requestId });
      if (origin?.kind === 'resume') await store.event(origin.of, `resumed:${id}`, 'resumed', { jobId: id, from: origin.from, principal, requestId });
      metrics.jobsSubmitted.inc();
      logger?.info({ jobId: id, repo: spec.repo, commit: spec.commit, requestId, ...link }, 'job submitted');
    }
    const body = { id, ...link };
    await claim?.save(202, body);
    res.status(202).location(`/v1/jobs/${id}`).json(body);
  }

  mount('startJob', requireJson, json, async (req, res) => {
    await startJob(req, res, req.body, 'POST /v1/jobs');
  });

  // The same spec again, as a new job of the caller (whose secret grants it needs).
  mount('rerunJob', optionalJson, json, async (req, res) => {
    const id = jobIdParam(req);
    parseInput(rerunBody, req.body ?? {}, 'invalid_body');
    const stored = await store.getSpec(id);
    if (!stored) {
      throw new HttpError(
        'not_found',
        (await jobs.describe(id)) ? `job ${id} was started through the SDK and no worker has recorded it yet: rerun it once one has` : `no job ${id}`,
      );
    }
    await startJob(req, res, specInput(stored, specPolicy(config)), `POST /v1/jobs/${id}/rerun`, { kind: 'rerun', of: id });
  });

  // A failed job again, from the last workspace it kept, running only what follows (with the changes given).
  mount('resumeJob', optionalJson, json, async (req, res) => {
    const id = jobIdParam(req);
    const changes = parseInput(resumeBody, req.body ?? {}, 'invalid_body');
    const [stored, job] = await Promise.all([store.getSpec(id), store.getJob(id)]);
    if (!stored || !job) throw new HttpError('not_found', `no job ${id}`);
    if (!RESUMABLE.includes(job.status)) {
      throw new HttpError('job_not_resumable', `job ${id} is ${job.status}: only a job that failed or timed out is resumed (rerun starts any job again)`);
    }
    const scope = warmScope(config.DRAFTSMAN_CACHE_SCOPE ?? 'principal', stored.repo, String(res.locals.token));
    const point = lastKeptPoint((await kept.pointsKeptBy(id, scope)) as KeepPoint[]);
    if (!point) {
      throw new HttpError(
        'not_kept',
        `job ${id} kept no workspace that your jobs may start from (a spec keeps one with snapshot, e.g. { "after": "setup", "when": "failed" }; it may also have been evicted, or belong to another principal)`,
      );
    }
    const input = resumeSpec(specInput(stored, specPolicy(config)), id, point, job.loop, changes);
    await startJob(req, res, input, `POST /v1/jobs/${id}/resume`, { kind: 'resume', of: id, from: point });
  });

  // Long poll: answers when the job has ended, or after `timeout` seconds with it as it is.
  mount('waitForJob', async (req, res) => {
    const id = jobIdParam(req);
    const { timeout } = parseInput(waitQuery, req.query, 'invalid_query');
    if (!(await store.jobState(id)) && !(await jobs.describe(id))) throw new HttpError('not_found', `no job ${id}`);
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    await waitForEnd(feeds, id, (timeout ?? 30) * 1000, abort.signal);
    const job = await store.getJob(id);
    res.set('x-draftsman-job-ended', String(Boolean(job?.finishedAt))).json(job ?? queuedView(id));
  });

  // The ledgers summed: the caller's own jobs, or (admin scope) anyone's.
  mount('getUsage', async (req, res) => {
    const q = parseInput(usageQuery, req.query, 'invalid_query');
    const caller = String(res.locals.token);
    const admin = ((res.locals.scopes ?? []) as readonly string[]).includes('admin');
    if (q.principal && q.principal !== caller && !admin) {
      throw new HttpError('forbidden', `another principal's usage needs the admin scope (the token ${caller} lacks it)`, 'principal');
    }
    const principal = q.principal ?? (admin ? undefined : caller);
    const to = q.to ? new Date(q.to) : new Date();
    const from = q.from ? new Date(q.from) : new Date(to.getTime() - USAGE_DEFAULT_DAYS * 86_400_000);
    if (from >= to) throw new HttpError('invalid_query', 'from: must be before to', 'from');
    const sums = await usage(store.pool, { principal, label: q.label, from: from.toISOString(), to: to.toISOString() });
    res.json({
      from: from.toISOString(),
      to: to.toISOString(),
      principal: principal ?? null,
      label: q.label ? `${q.label.key}=${q.label.value}` : null,
      ...sums,
    });
  });

  mount('listJobs', async (req, res) => {
    const { cursor, limit, ...filter } = parseInput(listJobsQuery, req.query, 'invalid_query');
    const after = cursor === undefined ? undefined : decodeCursor(cursor);
    if (after === null) throw new HttpError('invalid_query', 'cursor: not a cursor of this API (use a nextCursor as it was given)', 'cursor');
    const page = await store.listJobs({ ...filter, after, limit: limit ?? 50 });
    res.json({ jobs: page.jobs, nextCursor: page.next ? encodeCursor(page.next) : null });
  });

  mount('getJob', async (req, res) => {
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

  mount('listJobEvents', async (req, res) => {
    const id = jobIdParam(req);
    const events = await store.events(id);
    if (events.length === 0 && !(await store.getJob(id))) throw new HttpError('not_found', `no job ${id}`);
    res.json({ events });
  });

  mount('getJobLogs', async (req, res) => {
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
  mount('followJobLogsWebSocket', (req, res) => {
    parseInput(logsQuery.omit({ follow: true }), req.query, 'invalid_query');
    jobIdParam(req);
    res.set('upgrade', 'websocket');
    throw new HttpError('upgrade_required', 'this endpoint is a WebSocket: send an upgrade request (or use /logs?follow=true for Server-Sent Events)');
  });

  mount('getJobPatch', async (req, res) => {
    const id = jobIdParam(req);
    const patch = await store.getPatch(id);
    if (!patch) {
      const job = await store.getJob(id);
      throw new HttpError('not_found', job ? `job ${id} has no patch (it has no loop, or has not finished it)` : `no job ${id}`);
    }
    res.status(200).type('text/x-diff').set('x-draftsman-patch-truncated', String(patch.truncated)).send(patch.data);
  });

  mount('cancelJob', optionalJson, json, async (req, res) => {
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
}
