/**
 * POST /v1/jobs/:id/approval: a decision on a job's approval gate, with the approve
 * scope. The job itself takes it (a Temporal update, so the answer says what it
 * recorded); the caller's principal is recorded as who decided.
 */
import { createHash } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Request, RequestHandler } from 'express';
import type { JobsClient } from '../client/jobs';
import { ApprovalRefusedError, DecisionPendingError } from '../common/errors';
import type { JobStore } from '../db/store';
import { HttpError, parseInput } from './errors';
import type { IdempotentRequests } from './idempotent-requests';
import { approvalBody } from './schemas';
import type { Mount } from './route';

/** How long a request waits for the job to take its decision (a worker must run the update). */
const DECISION_WAIT_MS = 20_000;

export interface ApprovalDeps {
  jobs: JobsClient;
  store: JobStore;
  idempotent: IdempotentRequests;
  json: RequestHandler[];
  /** The route's job id, or a 404 for one that cannot be a job's. */
  jobId: (req: Pick<Request, 'params'>) => string;
}

export function mountApproval(mount: Mount, { jobs, store, idempotent, json, jobId }: ApprovalDeps): void {
  mount('decideApproval', ...json, async (req, res) => {
    const id = jobId(req);
    const body = parseInput(approvalBody, req.body, 'invalid_body');
    const claim = await idempotent.claim(req, res, `POST /v1/jobs/${id}/approval`);
    if (claim?.record.answer) return idempotent.replay(res, claim.record.answer);
    // A queued job has reached no gate (and may have no worker yet to answer an update).
    const stored = await store.jobState(id);
    if (stored?.status === 'queued') throw new HttpError('not_awaiting_approval', `job ${id} is queued, not awaiting approval`);
    const principal = String(res.locals.token);
    let approval;
    try {
      // The update's id comes from the caller's key: a retry after a 503 is the same update, taken once.
      const updateId = claim ? `approval-${createHash('sha256').update(`${principal}\n${claim.key}`).digest('hex')}` : undefined;
      approval = await jobs.approve(id, body, principal, { timeoutMs: DECISION_WAIT_MS, ...(updateId ? { updateId } : {}) });
    } catch (err) {
      if (err instanceof ApprovalRefusedError) throw new HttpError(err.reason === 'conflict' ? 'approval_conflict' : 'not_awaiting_approval', err.message);
      if (err instanceof DecisionPendingError) {
        res.set('retry-after', '5');
        throw new HttpError('decision_pending', err.message);
      }
      if (err instanceof WorkflowNotFoundError) {
        throw (await store.getJob(id)) ? new HttpError('job_ended', `job ${id} has already ended`) : new HttpError('not_found', `no job ${id}`);
      }
      throw err;
    }
    await claim?.save(200, approval);
    res.status(200).json(approval);
  });
}
