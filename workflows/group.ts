/**
 * A group of attempts (best-of-N): started whole by one workflow start, so a fork call is
 * accepted all or none. Each attempt is a job of its own (its workflow id is its job id,
 * cancelled, watched and recorded like any), started as a child that outlives the group;
 * the group applies its rule as they end.
 */
import {
  ApplicationFailure,
  CancelledFailure,
  ChildWorkflowFailure,
  ParentClosePolicy,
  TimeoutFailure,
  WorkflowIdReusePolicy,
  proxyActivities,
  startChild,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { type AttemptEnd, decidesEarly, type GroupInput, pickWinner } from '../common/group';
import type { JobStatus, JobView } from '../common/job';
import { CANCEL_SIGNAL, FailureType, JOB_WORKFLOW_TYPE, PRINCIPAL_MEMO, REQUEST_ID_MEMO } from '../common/names';
import { BOOKKEEPING } from './job-placement';

const bookkeeping = proxyActivities<Activities>(BOOKKEEPING);

/** How an attempt ended, from the failure its workflow ended with. */
export function attemptStatus(err: unknown): JobStatus {
  const cause = err instanceof ChildWorkflowFailure ? err.cause : err;
  if (cause instanceof CancelledFailure) return 'cancelled';
  if (cause instanceof TimeoutFailure) return 'timed_out';
  if (cause instanceof ApplicationFailure) {
    if (cause.type === FailureType.JobTimeout || cause.type === FailureType.StepTimeout) return 'timed_out';
    if (cause.type === FailureType.JobRejected) return 'rejected';
  }
  return 'failed';
}

export async function groupWorkflow(input: GroupInput): Promise<{ winner: string | null; attempts: AttemptEnd[] }> {
  const memo = { [PRINCIPAL_MEMO]: input.principal, ...(input.requestId ? { [REQUEST_ID_MEMO]: input.requestId } : {}) };
  // Every attempt is started in one workflow task; a group whose worker dies starts the rest when it is picked up again.
  const children = await Promise.all(
    input.members.map((m) =>
      startChild(JOB_WORKFLOW_TYPE, {
        workflowId: m.id,
        taskQueue: input.taskQueue,
        args: [m.spec],
        memo,
        // An attempt is a job of its own: it runs to its end whatever happens to the group.
        parentClosePolicy: ParentClosePolicy.ABANDON,
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        staticSummary: `attempt of group ${input.groupId} (from ${input.parent} after ${input.after})`,
      }),
    ),
  );
  await bookkeeping.recordGroup({
    ...input,
    members: input.members.map((m, i) => ({
      id: m.id,
      variant: m.variant,
      runId: children[i]!.firstExecutionRunId,
      repo: m.spec.repo,
      commit: m.spec.commit,
      spec: m.spec,
    })),
  });

  const ended: AttemptEnd[] = [];
  let winner: string | null = null;
  await Promise.all(
    children.map(async (child, i) => {
      const id = input.members[i]!.id;
      let end: AttemptEnd;
      try {
        const view = (await child.result()) as JobView;
        end = { id, status: 'succeeded', patchBytes: view.patch?.bytes ?? null };
      } catch (err) {
        end = { id, status: attemptStatus(err), patchBytes: null };
      }
      ended.push(end);
      if (winner !== null || !decidesEarly(input.best) || end.status !== 'succeeded') return;
      winner = id;
      await bookkeeping.decideGroup({ groupId: input.groupId, parent: input.parent, winner: id });
      const reason = `attempt ${id} of group ${input.groupId} succeeded first (best: ${input.best})`;
      await Promise.all(
        children
          .filter((_, j) => !ended.some((e) => e.id === input.members[j]!.id))
          // One that has ended meanwhile refuses the signal, which changes nothing.
          .map((other) => other.signal(CANCEL_SIGNAL, { reason }).catch(() => undefined)),
      );
    }),
  );
  winner ??= pickWinner(input.best, ended);
  await bookkeeping.endGroup({ groupId: input.groupId, parent: input.parent, winner, attempts: ended });
  return { winner, attempts: ended };
}
