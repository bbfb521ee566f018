/**
 * One reader per followed job in this API process, shared by all of that job's log
 * followers (SSE and WebSocket) and long polls. It reads when PostgreSQL notifies a change
 * of the job (migration 9's triggers), so the database sees the same queries for one
 * follower as for five hundred. Followers that start behind the reader's recent chunks
 * read their backlog themselves, then join it.
 */
import { Client, type Pool } from 'pg';
import type { JobStatus } from '../common/job';
import { FeedStore, JOB_CHANGES_CHANNEL, type StreamedEvent } from '../db/feed-store';
import type { StoredLogLine } from '../db/log-store';
import type { JobStore } from '../db/store';

/** Chunks read per query (up to 64 KiB each). */
export const PAGE = 16;
/** Recent chunks a reader keeps for its followers (at most 64 KiB each). */
const RING = 64;
const RECENT_EVENTS = 256;
/** How often readers read anyway: rarely while notifications arrive, often while they cannot. */
const LISTENING_POLL_MS = 5_000;
const DEAF_POLL_MS = 250;
/** How long the notification connection stays open after its last reader. */
const LINGER_MS = 10_000;

export interface Chunk {
  id: number;
  step: string;
  lines: StoredLogLine[];
}

export interface JobState {
  status: JobStatus;
  finished: boolean;
}

/** What a follower receives: the transports (SSE, WebSocket) only format these. */
export type FollowEvent =
  | { type: 'line'; id: string; step: string; line: StoredLogLine }
  | { type: 'step'; event: StreamedEvent }
  | { type: 'status'; status: JobStatus }
  | { type: 'heartbeat' }
  | { type: 'end'; status: JobStatus };

/**
 * Where a stream resumes: after line `line` of stored chunk `chunk` (each line event's id
 * is `<chunk>.<line>`; a client sends the last one back as Last-Event-ID, which
 * EventSource does by itself when it reconnects, or as `?lastEventId=`). Null when the
 * text is not such an id.
 */
export function resumePoint(text: string): { chunk: number; line: number } | null {
  const m = /^(\d{1,15})\.(\d{1,6})$/.exec(text);
  return m ? { chunk: Number(m[1]), line: Number(m[2]) } : null;
}

/** The shared reader of one job. */
export class JobFeed {
  /** Chunks with ids in (floor, head], in order: every chunk of the job in that range. */
  floor = 0;
  head = 0;
  chunks: Chunk[] = [];
  eventHead = 0;
  events: StreamedEvent[] = [];
  /** Read before the chunks up to `head`: once it says finished, `head` holds all output. */
  state: JobState | null = null;
  followers = 0;
  /** Bumped after every read, so that followers wait only for news. */
  version = 0;
  private waiters = new Set<() => void>();
  private reading: Promise<void> | null = null;
  private again = false;
  readonly ready: Promise<void>;

  constructor(
    readonly jobId: string,
    private readonly store: JobStore,
    private readonly feedStore: FeedStore,
  ) {
    this.ready = this.start();
  }

  private async start(): Promise<void> {
    const at = await this.feedStore.position(this.jobId);
    this.floor = this.head = at.chunk;
    this.eventHead = at.event;
    await this.refresh();
  }

  /** Reads what changed; calls during a read make one more read after it. */
  refresh(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return this.reading;
    }
    this.reading = (async () => {
      do {
        this.again = false;
        await this.read();
      } while (this.again);
    })().finally(() => {
      this.reading = null;
    });
    return this.reading;
  }

  private async read(): Promise<void> {
    // The state first: a job seen ended has stored all its output, so the chunks read
    // after it are the last.
    const state = await this.store.jobState(this.jobId);
    const events = await this.feedStore.stepEvents(this.jobId, this.eventHead);
    for (;;) {
      const page = await this.store.logs.read(this.jobId, { afterId: this.head, limit: PAGE });
      for (const c of page) this.chunks.push(c);
      if (page.length) this.head = page[page.length - 1]!.id;
      if (page.length < PAGE) break;
    }
    if (this.chunks.length > RING) {
      const dropped = this.chunks.splice(0, this.chunks.length - RING);
      this.floor = dropped[dropped.length - 1]!.id;
    }
    if (events.length) {
      this.events.push(...events);
      this.eventHead = events[events.length - 1]!.id;
      if (this.events.length > RECENT_EVENTS) this.events.splice(0, this.events.length - RECENT_EVENTS);
    }
    this.state = state;
    this.version++;
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }

  /** Resolves after the next read that ends after `version`, or after `ms`. */
  changed(version: number, ms: number, abort?: AbortSignal): Promise<void> {
    if (this.version !== version || abort?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        abort?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      abort?.addEventListener('abort', done);
    });
  }
}

/** The readers of one API process, and the connection that listens for changes. */
export class JobFeeds {
  private readonly feeds = new Map<string, JobFeed>();
  private readonly feedStore: FeedStore;
  private listener: Client | null = null;
  private connecting: Promise<void> | null = null;
  private poll: NodeJS.Timeout | null = null;
  private linger: NodeJS.Timeout | null = null;
  private lastPoll = 0;
  /** Set when the API stops: readers still open poll, and nothing listens again. */
  private closed = false;

  constructor(
    private readonly store: JobStore,
    private readonly onError: (message: string) => void = () => undefined,
  ) {
    this.feedStore = new FeedStore(store.pool);
  }

  /** Whether changes arrive by notification now (false: readers poll). */
  get listening(): boolean {
    return this.listener !== null;
  }

  get followed(): number {
    return this.feeds.size;
  }

  /** The shared reader of a job, read once; give it back with release(). */
  async acquire(jobId: string): Promise<JobFeed> {
    let feed = this.feeds.get(jobId);
    if (!feed) {
      feed = new JobFeed(jobId, this.store, this.feedStore);
      this.feeds.set(jobId, feed);
      // A failed first read must not leave a broken reader behind for the next follower.
      feed.ready.catch(() => {
        if (this.feeds.get(jobId) === feed) this.feeds.delete(jobId);
      });
    }
    feed.followers++;
    this.keepAlive();
    try {
      await feed.ready;
    } catch (err) {
      this.release(feed);
      throw err;
    }
    return feed;
  }

  release(feed: JobFeed): void {
    feed.followers--;
    if (feed.followers === 0 && this.feeds.get(feed.jobId) === feed) this.feeds.delete(feed.jobId);
    if (this.feeds.size === 0) this.idle();
  }

  /** Starts listening and polling while readers exist. */
  private keepAlive(): void {
    if (this.linger) {
      clearTimeout(this.linger);
      this.linger = null;
    }
    if (!this.listener && !this.connecting && !this.closed) this.connecting = this.listen().finally(() => (this.connecting = null));
    if (!this.poll) {
      this.poll = setInterval(() => this.tick(), DEAF_POLL_MS);
      this.poll.unref();
    }
  }

  private idle(): void {
    if (this.poll) clearInterval(this.poll);
    this.poll = null;
    if (this.linger) clearTimeout(this.linger);
    this.linger = setTimeout(() => void this.close(), LINGER_MS);
    this.linger.unref();
  }

  private tick(): void {
    const every = this.listening ? LISTENING_POLL_MS : DEAF_POLL_MS;
    if (Date.now() - this.lastPoll < every) return;
    this.lastPoll = Date.now();
    if (!this.listening && !this.connecting && !this.closed) this.connecting = this.listen().finally(() => (this.connecting = null));
    this.refreshAll();
  }

  private refreshAll(): void {
    for (const feed of this.feeds.values()) feed.refresh().catch((err: Error) => this.onError(`reading job ${feed.jobId} for its followers: ${err.message}`));
  }

  private async listen(): Promise<void> {
    const client = new Client((this.store.pool as Pool & { options: object }).options);
    const lost = (err?: Error) => {
      if (this.listener !== client) return;
      this.listener = null;
      if (err) this.onError(`the change notification connection failed (followers poll until it is back): ${err.message}`);
      client.end().catch(() => undefined);
    };
    client.on('notification', (msg) => {
      const feed = msg.payload ? this.feeds.get(msg.payload) : undefined;
      feed?.refresh().catch((err: Error) => this.onError(`reading job ${feed.jobId} for its followers: ${err.message}`));
    });
    client.on('error', lost);
    client.on('end', () => lost());
    try {
      await client.connect();
      await client.query(`LISTEN ${JOB_CHANGES_CHANNEL}`);
    } catch (err) {
      client.end().catch(() => undefined);
      this.onError(`listening for job changes failed (followers poll): ${(err as Error).message}`);
      return;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.listener = client;
    // What changed while nothing listened.
    this.refreshAll();
  }

  /** Ends the notification connection (readers still open fall back to polling). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.linger) clearTimeout(this.linger);
    this.linger = null;
    await this.connecting;
    const client = this.listener;
    this.listener = null;
    await client?.end().catch(() => undefined);
  }
}

/**
 * A follower of a job's log: the lines after `resume` (of one step, or all), step events
 * and status changes while it runs, and an end once it has ended and every line was given;
 * in batches, so that a transport writes each batch at once. A heartbeat after
 * `heartbeatMs` without news. Stops early when `abort` fires.
 */
export async function* followJob(
  feeds: JobFeeds,
  store: JobStore,
  jobId: string,
  opts: { step?: string; resume?: { chunk: number; line: number } | null; heartbeatMs: number; abort: AbortSignal },
): AsyncGenerator<FollowEvent[]> {
  const feed = await feeds.acquire(jobId);
  try {
    const step = opts.step ? { kind: opts.step.split('-')[0]!, index: Number(opts.step.split('-')[1]) } : undefined;
    const resume = opts.resume;
    let cursor = resume ? resume.chunk - 1 : 0;
    // Step events are live notices: those recorded before the follower came are in the job's view.
    let eventCursor = feed.eventHead;
    let status: JobStatus | undefined;
    const linesOf = (c: Chunk, out: FollowEvent[]) => {
      const skip = resume && c.id === resume.chunk ? resume.line + 1 : 0;
      for (let i = skip; i < c.lines.length; i++) out.push({ type: 'line', id: `${c.id}.${i}`, step: c.step, line: c.lines[i]! });
    };

    while (!opts.abort.aborted) {
      const version = feed.version;
      const out: FollowEvent[] = [];
      // Behind the reader's recent chunks: read the backlog directly, a page at a time.
      if (cursor < feed.floor) {
        const floor = feed.floor;
        const page = await store.logs.read(jobId, { afterId: cursor, step, limit: PAGE });
        for (const c of page) linesOf(c, out);
        cursor = page.length === PAGE ? page[page.length - 1]!.id : Math.max(floor, page[page.length - 1]?.id ?? 0);
        if (out.length) yield out;
        continue;
      }
      // Taken at once, since the reader moves on while this follower writes.
      const head = feed.head;
      const state = feed.state;
      const events = feed.events.filter((e) => e.id > eventCursor);
      for (const e of events) if (e.type === 'step_started') out.push({ type: 'step', event: e });
      for (const c of feed.chunks) if (c.id > cursor && c.id <= head && (!opts.step || c.step === opts.step)) linesOf(c, out);
      for (const e of events) if (e.type === 'step_finished') out.push({ type: 'step', event: e });
      cursor = head;
      if (events.length) eventCursor = events[events.length - 1]!.id;
      if (state && state.status !== status) {
        status = state.status;
        out.push({ type: 'status', status });
      }
      if (state?.finished) {
        out.push({ type: 'end', status: state.status });
        yield out;
        return;
      }
      if (out.length) {
        yield out;
        continue;
      }
      const before = Date.now();
      await feed.changed(version, opts.heartbeatMs, opts.abort);
      if (feed.version === version && !opts.abort.aborted && Date.now() - before >= opts.heartbeatMs) yield [{ type: 'heartbeat' }];
    }
  } finally {
    feeds.release(feed);
  }
}

/**
 * Waits until the job has ended or `ms` passed; answers whether it ended. Null when the
 * job has no row (yet).
 */
export async function waitForEnd(feeds: JobFeeds, jobId: string, ms: number, abort: AbortSignal): Promise<JobState | null> {
  const feed = await feeds.acquire(jobId);
  try {
    const deadline = Date.now() + ms;
    while (!feed.state?.finished && !abort.aborted && Date.now() < deadline) {
      await feed.changed(feed.version, deadline - Date.now(), abort);
    }
    return feed.state;
  } finally {
    feeds.release(feed);
  }
}
