/**
 * Hosts as placement sees them: what each one advertises (its heartbeat), what it
 * runs, and the choice of one for a job. Pure: the store reads the rows, this decides.
 */

/** What a host's workers say of it at every heartbeat. */
export interface HostAdvert {
  id: string;
  /** Its engine activities' task queue. */
  taskQueue: string;
  /** Jobs it runs at once (a job runs one step at a time). */
  capacity: number;
  /** Free disk where its workspaces live, in MiB; null when not measured. */
  freeDiskMb: number | null;
  /** The disk floor below which it takes no new job, in MiB (0: none). */
  minFreeDiskMb: number;
}

/** A host as stored: its advert, when it was last heard from, whether it drains. */
export interface HostRow extends HostAdvert {
  seenAt: Date;
  startedAt: Date;
  draining: boolean;
}

/** A host as the API and the dashboard show it. */
export interface HostView {
  id: string;
  state: 'up' | 'draining' | 'drained' | 'silent';
  capacity: number;
  /** Its jobs that run steps now (placed, not ended, not waiting at an approval gate). */
  running: number;
  /** Its jobs not ended, waiting ones included: their workspaces are there. */
  holding: number;
  freeDiskMb: number | null;
  seenAt: string;
  startedAt: string;
}

/** A host is silent, and takes no new job, after this many heartbeats missed. */
export const HOST_HEARTBEAT_SECONDS = 5;
export const SILENT_AFTER_SECONDS = 3 * HOST_HEARTBEAT_SECONDS;

export type HostChoice = { host: HostRow } | { wait: string };

/** A host a job lost (its host queue), and when (epoch ms). */
export interface LostHost {
  taskQueue: string;
  at: number;
}

const ROOM_WAIT = 'waiting for a host with room';
/** Why a job waits when every host is full, with its place in the line. */
export const roomWait = (position: number) => `${ROOM_WAIT} (position ${position} in the queue)`;
/** The reason as of now: a stored room wait names the place it had when written, the view gives today's. */
export const currentWait = (stored: string, position: number | null) => (position !== null && stored.startsWith(ROOM_WAIT) ? roomWait(position) : stored);

/**
 * The host for a job: among those heard from lately, not draining, above their disk
 * floor and with room, one that holds the job's caches or kept workspace (`prefer`),
 * else the one with the most room left (then the least busy, then by id, so that a tie
 * is decided the same way everywhere). `position` is the job's place
 * among the jobs that wait for a host (1: first): a job waits while the jobs before
 * it take the room there is, so that jobs are placed in the order they came.
 */
export function chooseHost(
  hosts: readonly HostRow[],
  running: ReadonlyMap<string, number>,
  now: Date,
  position = 1,
  lost: readonly LostHost[] = [],
  /** Host queues that hold the job's caches or kept workspace, best first: one of them with room is taken before the others. */
  prefer: readonly string[] = [],
): HostChoice {
  // A host the job lost takes it again only once its worker has started since (a host that came back).
  const candidates = hosts.filter((h) => !lost.some((l) => l.taskQueue === h.taskQueue && h.startedAt.getTime() <= l.at));
  const fresh = candidates.filter((h) => now.getTime() - h.seenAt.getTime() <= SILENT_AFTER_SECONDS * 1000);
  if (fresh.length === 0) {
    if (hosts.length === 0) return { wait: 'waiting for a host: none has started' };
    return {
      wait:
        candidates.length < hosts.length
          ? 'waiting for a host: its own was lost, and no other has been heard from lately'
          : 'waiting for a host: none has been heard from lately',
    };
  }
  const open = fresh.filter((h) => !h.draining);
  if (open.length === 0) return { wait: 'waiting for a host: every host drains' };
  const roomy = open.filter((h) => h.freeDiskMb === null || h.minFreeDiskMb <= 0 || h.freeDiskMb >= h.minFreeDiskMb);
  if (roomy.length === 0) {
    // Every open host is below its floor (so each has its free disk measured): name the one closest to room.
    const [closest] = [...open].sort((a, b) => b.freeDiskMb! - b.minFreeDiskMb - (a.freeDiskMb! - a.minFreeDiskMb));
    return { wait: `waiting for disk space: ${closest!.freeDiskMb} MiB free on host ${closest!.id}, below the floor of ${closest!.minFreeDiskMb} MiB` };
  }
  const room = (h: HostRow) => h.capacity - (running.get(h.id) ?? 0);
  const free = roomy.filter((h) => room(h) > 0);
  const total = free.reduce((sum, h) => sum + room(h), 0);
  if (total < position) return { wait: roomWait(position) };
  const rank = (h: HostRow) => (prefer.includes(h.taskQueue) ? prefer.indexOf(h.taskQueue) : prefer.length);
  const [best] = [...free].sort(
    (a, b) => rank(a) - rank(b) || room(b) - room(a) || (running.get(a.id) ?? 0) - (running.get(b.id) ?? 0) || a.id.localeCompare(b.id),
  );
  return { host: best! };
}

/** A job in the line for a host: its resolved concurrency key ('' for none) and the key's limit. */
export interface InLine {
  id: string;
  key: string;
  limit: number | null;
}

/**
 * The line for a host in the order it is served, and the jobs held back by their
 * concurrency key. `line` is in submission order; `held` counts the jobs of each key
 * that hold a host; `lastPlaced` is when a job of each key was last placed (epoch ms).
 * The n-th waiting job of a key waits while n is past the key's room (limit less
 * held). The others take turns by key: the key placed longest ago (or never) first,
 * then submission order; jobs without a key take turns as one key.
 */
export function lineOrder(
  line: readonly InLine[],
  held: ReadonlyMap<string, number>,
  lastPlaced: ReadonlyMap<string, number>,
): { order: string[]; blocked: Map<string, string> } {
  const seen = new Map<string, number>();
  const blocked = new Map<string, string>();
  const eligible: { id: string; turn: number; i: number }[] = [];
  line.forEach((j, i) => {
    if (j.key !== '' && j.limit !== null) {
      const n = (seen.get(j.key) ?? 0) + 1;
      seen.set(j.key, n);
      const holding = held.get(j.key) ?? 0;
      if (n > j.limit - holding) {
        blocked.set(j.id, `waiting for its concurrency key ${j.key}: ${holding} of its jobs hold a host (limit ${j.limit})`);
        return;
      }
    }
    eligible.push({ id: j.id, turn: lastPlaced.get(j.key) ?? Number.NEGATIVE_INFINITY, i });
  });
  eligible.sort((a, b) => a.turn - b.turn || a.i - b.i);
  return { order: eligible.map((e) => e.id), blocked };
}

/** A spec's concurrency key as stored: `repo` and `principal` name the job's own, anything else is shared by name. */
export function concurrencyKey(key: string, job: { repo: string; principal: string }): string {
  return key === 'repo' ? `repo:${job.repo}` : key === 'principal' ? `principal:${job.principal}` : `key:${key}`;
}

/** A host's state for people: up, draining (jobs still there), drained, or silent. */
export function hostView(h: HostRow, running: number, holding: number, now: Date): HostView {
  const silent = now.getTime() - h.seenAt.getTime() > SILENT_AFTER_SECONDS * 1000;
  return {
    id: h.id,
    state: silent ? 'silent' : h.draining ? (holding > 0 ? 'draining' : 'drained') : 'up',
    capacity: h.capacity,
    running,
    holding,
    freeDiskMb: h.freeDiskMb,
    seenAt: h.seenAt.toISOString(),
    startedAt: h.startedAt.toISOString(),
  };
}
