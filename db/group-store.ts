import type { Pool } from 'pg';
import type { BestRule } from '../common/group';
import type { KeepPoint } from '../common/job';

/** A group as recorded: its attempts (ids and variants), its rule and, once decided, its winner. */
export interface GroupRecord {
  id: string;
  parent: string;
  after: KeepPoint;
  best: BestRule;
  principal: string;
  members: { id: string; variant: number | null }[];
  winner: string | null;
  createdAt: string;
  endedAt: string | null;
}

interface Row {
  id: string;
  parent_job: string;
  after: string;
  best: string;
  principal: string;
  members: { id: string; variant: number | null }[];
  winner: string | null;
  created_at: Date;
  ended_at: Date | null;
}

const toRecord = (r: Row): GroupRecord => ({
  id: r.id,
  parent: r.parent_job,
  after: r.after as KeepPoint,
  best: r.best as BestRule,
  principal: r.principal,
  members: r.members,
  winner: r.winner,
  createdAt: r.created_at.toISOString(),
  endedAt: r.ended_at?.toISOString() ?? null,
});

/** Groups of attempts (best-of-N). Every write is idempotent: the API and the group's activities may both make it, and retry it. */
export class GroupStore {
  constructor(private readonly pool: Pool) {}

  async create(g: Pick<GroupRecord, 'id' | 'parent' | 'after' | 'best' | 'principal' | 'members'>): Promise<void> {
    await this.pool.query(
      `INSERT INTO job_groups (id, parent_job, after, best, principal, members) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
      [g.id, g.parent, g.after, g.best, g.principal, JSON.stringify(g.members)],
    );
  }

  /** Marks the jobs as the group's attempts (their rows exist: recorded queued, or accepted by a worker). */
  async join(groupId: string, jobIds: readonly string[]): Promise<void> {
    await this.pool.query('UPDATE jobs SET group_id = $1 WHERE id = ANY($2::text[]) AND group_id IS DISTINCT FROM $1', [groupId, jobIds]);
  }

  /** Records the winner its rule picked; the first decision stands. */
  async decide(groupId: string, winner: string): Promise<void> {
    await this.pool.query('UPDATE job_groups SET winner = $2 WHERE id = $1 AND winner IS NULL', [groupId, winner]);
  }

  /** Records that every attempt has ended (and the winner, unless one was decided before); true the first time. */
  async end(groupId: string, winner: string | null): Promise<boolean> {
    const { rowCount } = await this.pool.query('UPDATE job_groups SET ended_at = now(), winner = COALESCE(winner, $2) WHERE id = $1 AND ended_at IS NULL', [
      groupId,
      winner,
    ]);
    return rowCount === 1;
  }

  async get(id: string): Promise<GroupRecord | null> {
    const { rows } = await this.pool.query<Row>('SELECT * FROM job_groups WHERE id = $1', [id]);
    return rows[0] ? toRecord(rows[0]) : null;
  }

  /** The groups forked from a job, oldest first. */
  async ofParent(parentId: string): Promise<GroupRecord[]> {
    const { rows } = await this.pool.query<Row>('SELECT * FROM job_groups WHERE parent_job = $1 ORDER BY created_at, id LIMIT 100', [parentId]);
    return rows.map(toRecord);
  }
}
