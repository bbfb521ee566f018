/** The group routes: fork a job's kept workspace into attempts (best-of-N), and read a group. */
import { randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { RequestHandler } from 'express';
import type { JobsClient } from '../client/jobs';
import { budgetUnderCeiling } from '../common/budget';
import type { Config } from '../common/config';
import { isInvalidJobSpecError } from '../common/errors';
import { firstUngranted, specSecretRefs, ungrantedMessage } from '../common/grants';
import { attemptVariants, forkSpec, type GroupInput, groupAttempt, type GroupView, memberId } from '../common/group';
import type { KeepPoint } from '../common/job';
import type { Metrics } from '../common/metrics';
import { resolveJobSpec, specInput, specPolicy } from '../common/spec';
import { warmScope } from '../common/warm';
import type { KeptStore } from '../db/kept-store';
import type { JobStore } from '../db/store';
import { HttpError, parseInput } from './errors';
import { derivedJobId } from './idempotency';
import type { IdempotentRequests } from './idempotent-requests';
import { jobIdParam } from './jobs';
import type { Mount } from './route';
import { forkBody } from './schemas';

export interface GroupRoutesDeps {
  store: JobStore;
  kept: KeptStore;
  jobs: JobsClient;
  config: Parameters<typeof specPolicy>[0] & { DRAFTSMAN_SECRET_GRANTS: Parameters<typeof firstUngranted>[0] } & Partial<
      Pick<Config, 'DRAFTSMAN_CACHE_SCOPE' | 'DRAFTSMAN_BUDGET_CEILINGS'>
    >;
  metrics: Metrics;
  idempotent: IdempotentRequests;
  mount: Mount;
  json: RequestHandler;
  requireJson: RequestHandler;
}

const GROUP_ID = /^grp-[0-9a-f-]{32,36}$/;

export function mountGroups(d: GroupRoutesDeps): void {
  const { mount, store, kept, jobs, config, metrics, idempotent, json, requireJson } = d;

  mount('forkJob', requireJson, json, async (req, res) => {
    const parent = jobIdParam(req);
    const body = parseInput(forkBody, req.body, 'invalid_body');
    const after = body.after as KeepPoint;
    const stored = await store.getSpec(parent);
    if (!stored) throw new HttpError('not_found', `no job ${parent}`);
    const principal = String(res.locals.token);
    // The attempts are the caller's jobs: they start from what the parent kept in the caller's scope.
    const scope = warmScope(config.DRAFTSMAN_CACHE_SCOPE ?? 'principal', stored.repo, principal);
    if (!(await kept.pointsKeptBy(parent, scope)).includes(after)) {
      throw new HttpError(
        'not_kept',
        `job ${parent} kept no workspace after ${after} that your jobs may start from (its spec keeps none there with snapshot.after, it has not reached that point yet, the step failed, the workspace held a secret, it was evicted, or it belongs to another principal)`,
        'after',
      );
    }
    const policy = specPolicy(config);
    const base = specInput(stored, policy);
    const variants = attemptVariants(body.count ?? body.variants!.length, body.variants);
    const specs = variants.map((v, i) => {
      const spec = forkSpec(base, parent, after, v === null ? undefined : body.variants![v]);
      try {
        const resolved = resolveJobSpec(spec, policy);
        budgetUnderCeiling(resolved.budget, config.DRAFTSMAN_BUDGET_CEILINGS ?? {}, principal);
        return { spec, resolved };
      } catch (err) {
        if (!isInvalidJobSpecError(err)) throw err;
        if (v === null) throw new HttpError('job_not_rerunnable', `job ${parent}'s spec is no longer accepted by this server: ${err.message}`, err.field);
        throw new HttpError('invalid_body', `variants.${v} (attempt ${i + 1}): ${err.message}`, `variants.${v}.${err.field}`);
      }
    });
    for (const { resolved } of specs) {
      const ungranted = firstUngranted(config.DRAFTSMAN_SECRET_GRANTS, principal, specSecretRefs(resolved));
      if (ungranted) throw new HttpError('secret_not_granted', ungrantedMessage(ungranted, principal), ungranted.field);
    }
    const claim = await idempotent.claim(req, res, `POST /v1/jobs/${parent}/forks`);
    if (claim?.record.answer) return idempotent.replay(res, claim.record.answer);
    const requestId = String(res.locals.requestId);
    const groupId = claim
      ? `grp-${derivedJobId(principal, `fork:${parent}:${claim.key}`, claim.record.firstSeen).slice('job-'.length)}`
      : `grp-${randomUUID()}`;
    const members = specs.map(({ spec }, i) => ({ id: memberId(groupId, i + 1), variant: variants[i]!, spec }));
    const input: GroupInput = { groupId, parent, after, best: body.best ?? 'none', principal, requestId, taskQueue: jobs.taskQueue, members };
    let started = false;
    try {
      await jobs.startGroup(input);
      started = true;
    } catch (err) {
      // A duplicate that ran at the same time, or a first request that died before it answered, started it.
      if (!(claim && err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    // The group's workflow records the group too; this row makes it readable before a worker picks it up.
    await store.groups.create({ id: groupId, parent, after, best: input.best, principal, members: members.map((m) => ({ id: m.id, variant: m.variant })) });
    if (started) metrics.jobsSubmitted.inc(members.length);
    const answer = { id: groupId, parent, jobs: members.map((m) => m.id) };
    await claim?.save(202, answer);
    res.status(202).location(`/v1/groups/${groupId}`).json(answer);
  });

  mount('getGroup', async (req, res) => {
    const id = String(req.params.id);
    const group = GROUP_ID.test(id) ? await store.groups.get(id) : null;
    if (!group) throw new HttpError('not_found', `no group ${JSON.stringify(id)}`);
    const views = await Promise.all(group.members.map((m) => store.getJob(m.id)));
    const view: GroupView = {
      id: group.id,
      parent: group.parent,
      after: group.after,
      best: group.best,
      principal: group.principal,
      createdAt: group.createdAt,
      endedAt: group.endedAt,
      winner: group.winner,
      jobs: group.members.map((m, i) => groupAttempt(m.id, m.variant, views[i] ?? null)),
    };
    res.json(view);
  });
}
