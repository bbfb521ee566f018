/**
 * POST /v1/jobs/:id/approval: a decision on a job's approval gate, with the approve
 * scope. The job itself takes it (a Temporal update, so the answer says what it
 * recorded); the caller's principal is recorded as who decided.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Express, Request, RequestHandler } from 'express';
import type { JobsClient } from '../client/jobs';
import { ApprovalRefusedError } from '../common/errors';
import type { JobStore } from '../db/store';
import { HttpError, parseInput } from './errors';
import type { IdempotentRequests } from './idempotent-requests';
import { approvalBody } from './schemas';

export interface ApprovalDeps {
  jobs: JobsClient;
  store: JobStore;
  idempotent: IdempotentRequests;
  approve: RequestHandler;
  json: RequestHandler[];
  /** The route's job id, or a 404 for one that cannot be a job's. */
  jobId: (req: Pick<Request, 'params'>) => string;
}

export function mountApproval(app: Express, { jobs, store, idempotent, approve, json, jobId }: ApprovalDeps): void {
  app.post('/v1/jobs/:id/approval', approve, ...json, async (req, res) => {
    const id = jobId(req);
    const body = parseInput(approvalBody, req.body, 'invalid_body');
    const claim = await idempotent.claim(req, res, `POST /v1/jobs/${id}/approval`);
    if (claim?.record.answer) return idempotent.replay(res, claim.record.answer);
    let approval;
    try {
      approval = await jobs.approve(id, body, String(res.locals.token));
    } catch (err) {
      if (err instanceof ApprovalRefusedError) throw new HttpError(err.reason === 'conflict' ? 'approval_conflict' : 'not_awaiting_approval', err.message);
      if (err instanceof WorkflowNotFoundError) {
        throw (await store.getJob(id)) ? new HttpError('job_ended', `job ${id} has already ended`) : new HttpError('not_found', `no job ${id}`);
      }
      throw err;
    }
    await claim?.save(200, approval);
    res.status(200).json(approval);
  });
}
