/** The activities of a group (best-of-N): its record, its attempts', and the parent's audit trail. */
import type { AttemptEnd, GroupInput } from '../common/group';
import type { Shared } from './deps';

/** A group's attempts once started: each with the run id its workflow got. */
export interface RecordGroupInput extends Omit<GroupInput, 'members'> {
  members: { id: string; variant: number | null; runId: string; repo: string; commit: string; spec: unknown }[];
}

export function createGroupActivities(sh: Shared) {
  const { store } = sh;
  return {
    /**
     * Records the group and its attempts as queued (before a worker accepts them, as the API
     * does for a job it starts), in the line of their queue; the parent's audit trail names them.
     */
    async recordGroup(input: RecordGroupInput): Promise<void> {
      const { groupId, parent, after, best, principal, requestId, taskQueue, members } = input;
      await store.groups.create({ id: groupId, parent, after, best, principal, members: members.map((m) => ({ id: m.id, variant: m.variant })) });
      const by = { principal, ...(requestId ? { requestId } : {}), group: groupId };
      for (const m of members) await store.recordQueued(m.id, m.runId, m.repo, m.commit, m.spec, by, taskQueue);
      await store.groups.join(
        groupId,
        members.map((m) => m.id),
      );
      await store.event(parent, `forked:${groupId}`, 'forked', { groupId, after, best, jobs: members.map((m) => m.id), principal });
    },

    /** The rule picked its winner before the others ended (first-validated): recorded in the group and the parent's trail. */
    async decideGroup(input: { groupId: string; parent: string; winner: string }): Promise<void> {
      await store.groups.decide(input.groupId, input.winner);
      await store.event(input.parent, `group-won:${input.groupId}`, 'group_won', { groupId: input.groupId, winner: input.winner });
    },

    /** Every attempt has ended: the group's end, and the parent's `group_ended` event (webhook group.ended). */
    async endGroup(input: { groupId: string; parent: string; winner: string | null; attempts: AttemptEnd[] }): Promise<void> {
      await store.groups.end(input.groupId, input.winner);
      const group = await store.groups.get(input.groupId);
      await store.event(input.parent, `group-ended:${input.groupId}`, 'group_ended', {
        groupId: input.groupId,
        winner: group?.winner ?? input.winner,
        jobs: input.attempts.map((a) => ({ id: a.id, status: a.status })),
      });
    },
  };
}
