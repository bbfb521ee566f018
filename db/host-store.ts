import type { Pool, PoolClient } from 'pg';
import { inLockedTransaction } from './transaction';
import {
  chooseHost,
  concurrencyKey,
  type HostAdvert,
  type HostChoice,
  type HostRow,
  type HostView,
  hostView,
  lineOrder,
  type LostHost,
  SILENT_AFTER_SECONDS,
} from '../common/hosts';

// Arbitrary constant: one placement at a time across workers, so that two never take the last room.
const PLACEMENT_LOCK = 7_142_002;

interface Row {
  task_queue: string;
  id: string;
  capacity: number;
  free_disk_mb: string | null;
  min_free_disk_mb: string;
  seen_at: Date;
  started_at: Date;
  draining: boolean;
}

const toHost = (r: Row): HostRow => ({
  id: r.id,
  taskQueue: r.task_queue,
  capacity: r.capacity,
  freeDiskMb: r.free_disk_mb === null ? null : Number(r.free_disk_mb),
  minFreeDiskMb: Number(r.min_free_disk_mb),
  seenAt: r.seen_at,
  startedAt: r.started_at,
  draining: r.draining,
});

/** Jobs that hold a host: placed there and not ended; running ones are not waiting at an approval gate. */
const LOAD_SQL = `
  SELECT host_queue, count(*) FILTER (WHERE status <> 'awaiting_approval')::int AS running, count(*)::int AS holding
    FROM jobs WHERE placed_from = $1 AND host_queue IS NOT NULL AND finished_at IS NULL GROUP BY host_queue`;

/**
 * The registry of the hosts of one shared task queue (a deployment: the database may
 * serve several): their heartbeats, their drains, and the placement of jobs on them.
 * A host is its host queue, unique; its id is what people see.
 */
/** How long after its submission a job not yet accepted keeps later jobs from being placed before it. */
export const JOINING_SECONDS = 10;
export const JOINING_WAIT = 'waiting for a job submitted before it to be accepted (jobs are placed in the order they came)';

export class HostStore {
  constructor(
    private readonly pool: Pool,
    private readonly sharedQueue: string,
  ) {}

  /**
   * A host's workers say they are alive and what it offers; answers whether it drains
   * and how many of its jobs have not ended. A worker's first heartbeat (`starting`)
   * ends a drain: a worker started on a drained host (the upgrade the drain was for) is
   * there to take work.
   */
  async heartbeat(advert: HostAdvert, starting = false): Promise<{ draining: boolean; holding: number }> {
    const { rows } = await this.pool.query<{ draining: boolean }>(
      `INSERT INTO hosts (task_queue, id, shared_queue, capacity, free_disk_mb, min_free_disk_mb, seen_at, started_at)
       VALUES ($1, $2, $3, $4, $5, $6, now(), now())
       ON CONFLICT (task_queue) DO UPDATE SET capacity = EXCLUDED.capacity, free_disk_mb = EXCLUDED.free_disk_mb,
         min_free_disk_mb = EXCLUDED.min_free_disk_mb, seen_at = now(), draining = hosts.draining AND NOT $7,
         started_at = CASE WHEN $7 THEN now() ELSE hosts.started_at END
       RETURNING draining`,
      [advert.taskQueue, advert.id, this.sharedQueue, advert.capacity, advert.freeDiskMb, advert.minFreeDiskMb, starting],
    );
    const held = await this.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE host_queue = $1 AND finished_at IS NULL`, [advert.taskQueue]);
    return { draining: rows[0]!.draining, holding: held.rows[0]!.n };
  }

  /**
   * The job is in this queue's line for a host from its acceptance on, with its
   * concurrency key resolved (common/hosts.ts concurrencyKey): placement follows the line.
   */
  async enqueue(jobId: string, concurrency?: { key: string; limit: number }): Promise<void> {
    const { rows } = await this.pool.query<{ repo: string | null; principal: string | null }>(`SELECT repo, principal FROM jobs WHERE id = $1`, [jobId]);
    const job = rows[0];
    const key = concurrency && job ? concurrencyKey(concurrency.key, { repo: job.repo ?? '', principal: job.principal ?? '' }) : '';
    await this.pool.query(
      `UPDATE jobs SET placed_from = $2, concurrency_key = $3, concurrency_limit = $4 WHERE id = $1 AND placed_from IS NULL AND host_queue IS NULL`,
      [jobId, this.sharedQueue, key, key ? concurrency!.limit : null],
    );
  }

  /**
   * Places a job on a host with room (common/hosts.ts chooseHost) when its turn in the
   * line has come (lineOrder: submission order, keys taking turns, a key at its limit
   * held back), or says why it waits; every waiting job's place is written as of now. A job placed already keeps its
   * host (a retried activity). One placement at a time: two workers never give away the
   * same room.
   */
  async place(jobId: string, lost: readonly LostHost[] = [], now: Date = new Date(), prefer: readonly string[] = []): Promise<HostChoice> {
    return inLockedTransaction(this.pool, PLACEMENT_LOCK, async (client) => {
      const job = await client.query<{ host_queue: string | null }>(`SELECT host_queue FROM jobs WHERE id = $1`, [jobId]);
      const hosts = (await client.query<Row>(`SELECT * FROM hosts WHERE shared_queue = $1`, [this.sharedQueue])).rows.map(toHost);
      const mine = hosts.find((h) => h.taskQueue === job.rows[0]?.host_queue);
      if (mine) return { host: mine };
      const load = await client.query<{ host_queue: string; running: number }>(LOAD_SQL, [this.sharedQueue]);
      const running = new Map(load.rows.map((r) => [hosts.find((h) => h.taskQueue === r.host_queue)?.id ?? r.host_queue, r.running]));
      const { order, blocked } = await this.line(client);
      const position = order.indexOf(jobId) + 1;
      let choice: HostChoice = blocked.has(jobId) ? { wait: blocked.get(jobId)! } : chooseHost(hosts, running, now, position || order.length + 1, lost, prefer);
      if ('host' in choice && (await this.earlierJoining(client, jobId))) choice = { wait: JOINING_WAIT };
      if ('host' in choice) {
        await client.query(
          `UPDATE jobs SET host_queue = $2, placed_from = $3, placed_at = now(), host_wait_since = NULL, queue_position = NULL, waiting = NULL, updated_at = now() WHERE id = $1`,
          [jobId, choice.host.taskQueue, this.sharedQueue],
        );
      } else {
        await client.query(`UPDATE jobs SET placed_from = $2, host_wait_since = coalesce(host_wait_since, now()), updated_at = now() WHERE id = $1`, [
          jobId,
          this.sharedQueue,
        ]);
      }
      // Every waiting job's place as of now (the job placed leaves the line).
      const places = order.filter((id) => !('host' in choice && id === jobId));
      await client.query(
        `UPDATE jobs SET queue_position = x.pos FROM unnest($1::text[], $2::int[]) AS x(id, pos) WHERE jobs.id = x.id AND jobs.queue_position IS DISTINCT FROM x.pos`,
        [places, places.map((_, k) => k + 1)],
      );
      if (blocked.size)
        await client.query(`UPDATE jobs SET queue_position = NULL WHERE id = ANY($1::text[]) AND queue_position IS NOT NULL`, [[...blocked.keys()]]);
      return choice;
    });
  }

  /**
   * Whether a job submitted before this one has not joined the line yet: the API records
   * a job when it starts its workflow, and the worker puts it in line when it accepts it,
   * so a later job's acceptance can come first (two workflow tasks, in any order). The
   * later job then waits its turn (asking again a second later) rather than jump the
   * line; a job not accepted within JOINING_SECONDS of its submission holds nobody back.
   */
  private async earlierJoining(client: PoolClient, jobId: string): Promise<boolean> {
    const { rows } = await client.query(
      `SELECT 1 FROM jobs j, jobs me
        WHERE me.id = $1 AND j.submitted_to = $3 AND j.placed_from IS NULL AND j.host_queue IS NULL AND j.finished_at IS NULL
          AND j.status = 'queued' AND (j.created_at, j.id) < (me.created_at, me.id) AND j.created_at > now() - make_interval(secs => $2)
        LIMIT 1`,
      [jobId, JOINING_SECONDS, this.sharedQueue],
    );
    return rows.length > 0;
  }

  /** The line for a host as it is served (common/hosts.ts lineOrder), read under the placement lock. */
  private async line(client: PoolClient): Promise<{ order: string[]; blocked: Map<string, string> }> {
    const waiting = await client.query<{ id: string; concurrency_key: string; concurrency_limit: number | null }>(
      `SELECT id, concurrency_key, concurrency_limit FROM jobs WHERE placed_from = $1 AND host_queue IS NULL AND finished_at IS NULL ORDER BY created_at, id`,
      [this.sharedQueue],
    );
    const keys = [...new Set(waiting.rows.map((r) => r.concurrency_key))];
    const [held, last] = await Promise.all([
      client.query<{ key: string; n: number }>(
        `SELECT concurrency_key AS key, count(*)::int AS n FROM jobs
          WHERE placed_from = $1 AND host_queue IS NOT NULL AND finished_at IS NULL AND concurrency_key = ANY($2::text[]) GROUP BY 1`,
        [this.sharedQueue, keys],
      ),
      client.query<{ key: string; at: Date | null }>(
        `SELECT k AS key, (SELECT max(placed_at) FROM jobs WHERE placed_from = $1 AND concurrency_key = k AND placed_at IS NOT NULL) AS at
           FROM unnest($2::text[]) AS k`,
        [this.sharedQueue, keys],
      ),
    ]);
    return lineOrder(
      waiting.rows.map((r) => ({ id: r.id, key: r.concurrency_key, limit: r.concurrency_limit })),
      new Map(held.rows.map((r) => [r.key, r.n])),
      new Map(last.rows.flatMap((r) => (r.at ? [[r.key, r.at.getTime()] as const] : []))),
    );
  }

  /** The jobs first in line for a host (their last written places, then submission order): the ones to wake when room frees. */
  async firstWaiting(limit: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ id: string }>(
      `SELECT id FROM jobs WHERE placed_from = $1 AND host_wait_since IS NOT NULL AND finished_at IS NULL
        ORDER BY queue_position NULLS LAST, created_at, id LIMIT $2`,
      [this.sharedQueue, limit],
    );
    return rows.map((r) => r.id);
  }

  /** The host queues of the hosts heard from lately. */
  async liveQueues(now: Date = new Date()): Promise<string[]> {
    const { rows } = await this.pool.query<{ task_queue: string }>(
      `SELECT task_queue FROM hosts WHERE shared_queue = $1 AND seen_at >= $2::timestamptz - make_interval(secs => $3) ORDER BY task_queue`,
      [this.sharedQueue, now, SILENT_AFTER_SECONDS],
    );
    return rows.map((r) => r.task_queue);
  }

  /** The hosts, by id, with what they run and hold. */
  async list(now: Date = new Date()): Promise<HostView[]> {
    const [hosts, load] = await Promise.all([
      this.pool.query<Row>(`SELECT * FROM hosts WHERE shared_queue = $1 ORDER BY id, task_queue`, [this.sharedQueue]),
      this.pool.query<{ host_queue: string; running: number; holding: number }>(LOAD_SQL, [this.sharedQueue]),
    ]);
    const by = new Map(load.rows.map((r) => [r.host_queue, r]));
    return hosts.rows.map((r) => hostView(toHost(r), by.get(r.task_queue)?.running ?? 0, by.get(r.task_queue)?.holding ?? 0, now));
  }

  async get(id: string, now: Date = new Date()): Promise<HostView | null> {
    return (await this.list(now)).find((h) => h.id === id) ?? null;
  }

  /** Starts or ends a host's drain; null for a host never heard from. */
  async setDraining(id: string, draining: boolean): Promise<HostView | null> {
    const { rowCount } = await this.pool.query(`UPDATE hosts SET draining = $3 WHERE shared_queue = $1 AND id = $2`, [this.sharedQueue, id, draining]);
    return rowCount ? this.get(id) : null;
  }

  /** Jobs that hold a host or a place in the line for one: accepted, not ended. */
  async holders(limit = 1_000): Promise<string[]> {
    const { rows } = await this.pool.query<{ id: string }>(`SELECT id FROM jobs WHERE placed_from = $1 AND finished_at IS NULL ORDER BY created_at LIMIT $2`, [
      this.sharedQueue,
      limit,
    ]);
    return rows.map((r) => r.id);
  }

  /** How many jobs wait for a host with room. */
  async waitingCount(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM jobs WHERE placed_from = $1 AND host_wait_since IS NOT NULL AND finished_at IS NULL`,
      [this.sharedQueue],
    );
    return rows[0]!.n;
  }
}
