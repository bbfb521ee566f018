import type { Request, Response } from 'express';
import type { StoredLogLine } from '../db/log-store';
import type { JobStore } from '../db/store';
import { HttpError } from './errors';
import { type FollowEvent, followJob, type JobFeeds, PAGE, resumePoint } from './job-feed';

const KEEPALIVE_MS = 15_000;
const RETRY_MS = 2_000;

/** Writes, and waits while the client reads slower than the log is read from the database. */
async function send(res: Response, text: string): Promise<void> {
  if (res.write(text) || res.destroyed) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** The follow streams (SSE and WebSocket) this API serves, against DRAFTSMAN_MAX_FOLLOW_STREAMS. */
export class FollowStreams {
  private count = 0;
  constructor(private readonly max: number) {}

  full(): boolean {
    return this.count >= this.max;
  }

  /** Counts a stream; the function given back uncounts it (once). */
  open(): () => void {
    this.count++;
    let open = true;
    return () => {
      if (open) this.count--;
      open = false;
    };
  }

  refusal(): HttpError {
    return new HttpError(
      'too_many_streams',
      `this API already serves ${this.count} log streams (DRAFTSMAN_MAX_FOLLOW_STREAMS); retry in 5 s, or read the logs without follow`,
    );
  }
}

export interface LogLineView {
  step: string;
  stream: 'stdout' | 'stderr';
  time: string;
  text: string;
}

const view = (step: string, l: StoredLogLine): LogLineView => ({
  step,
  stream: l.s === 'e' ? 'stderr' : 'stdout',
  time: l.t,
  text: l.x,
});

/**
 * A follow event as both transports carry it: its name, its id (line events only, so that
 * a resumed stream counts lines, never notices) and its data.
 */
export function wireEvent(e: Exclude<FollowEvent, { type: 'heartbeat' }>): { event: string; id?: string; data: Record<string, unknown> } {
  switch (e.type) {
    case 'line':
      return { event: 'line', id: e.id, data: { ...view(e.step, e.line) } };
    case 'step':
      return { event: 'step', data: { type: e.event.type, ...e.event.data } };
    case 'status':
      return { event: 'status', data: { status: e.status } };
    case 'end':
      return { event: 'end', data: { status: e.status } };
  }
}

function sseEvent(e: FollowEvent): string {
  if (e.type === 'heartbeat') return ': keep-alive\n\n';
  const w = wireEvent(e);
  return `${w.id ? `id: ${w.id}\n` : ''}event: ${w.event}\ndata: ${JSON.stringify(w.data)}\n\n`;
}

/**
 * GET /v1/jobs/:id/logs. Without `follow`: every stored line as NDJSON, each
 * tagged with its step. With `follow=true`: Server-Sent Events, the backlog first,
 * then lines as they are stored, and an `end` event once the job has ended.
 */
export async function serveLogs(
  store: JobStore,
  feeds: JobFeeds,
  jobId: string,
  query: { step?: string; follow?: string; lastEventId?: string },
  req: Request,
  res: Response,
): Promise<void> {
  const [kind, index] = query.step ? query.step.split('-') : [];
  const step = kind ? { kind, index: Number(index) } : undefined;
  const follow = query.follow === 'true' || query.follow === '1';
  const lastEventId = req.headers['last-event-id'] ?? query.lastEventId;
  if (lastEventId !== undefined && (typeof lastEventId !== 'string' || !resumePoint(lastEventId))) {
    throw new HttpError('invalid_query', "Last-Event-ID: must be an id of this stream's line events (<chunk>.<line>)", 'lastEventId');
  }
  if (!(await store.jobState(jobId))) throw new HttpError('not_found', `no job ${jobId}`);

  if (!follow) {
    res.status(200).type('application/x-ndjson');
    let after = 0;
    for (;;) {
      const chunks = await store.logs.read(jobId, { afterId: after, step, limit: PAGE });
      for (const c of chunks) {
        await send(res, c.lines.map((l) => `${JSON.stringify(view(c.step, l))}\n`).join(''));
        after = c.id;
      }
      if (chunks.length < PAGE || res.destroyed) break;
    }
    res.end();
    return;
  }

  res.status(200).set({
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  // How long EventSource waits before it reconnects (it sends Last-Event-ID when it does).
  res.write(`retry: ${RETRY_MS}\n\n`);
  const abort = new AbortController();
  res.on('close', () => abort.abort());
  const resume = typeof lastEventId === 'string' ? resumePoint(lastEventId) : null;
  for await (const batch of followJob(feeds, store, jobId, { step: query.step, resume, heartbeatMs: KEEPALIVE_MS, abort: abort.signal })) {
    await send(res, batch.map(sseEvent).join(''));
  }
  res.end();
}
