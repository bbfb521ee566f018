import type { Request, Response } from 'express';
import type { JobStore, StoredLogLine } from '../db/store';
import { HttpError } from './errors';

const POLL_MS = 200;
/** Chunks read per query (up to 64 KiB each): a long log is sent in pages of about 1 MiB. */
const PAGE = 16;
const KEEPALIVE_MS = 15_000;

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

export interface LogLineView {
  step: string;
  stream: 'stdout' | 'stderr';
  time: string;
  text: string;
}

/**
 * Where a stream resumes: after line `line` of stored chunk `chunk` (each SSE line event's
 * id is `<chunk>.<line>`; a client sends the last one back as Last-Event-ID, which
 * EventSource does by itself when it reconnects, or as `?lastEventId=`). Null when the
 * text is not such an id.
 */
export function resumePoint(text: string): { chunk: number; line: number } | null {
  const m = /^(\d{1,15})\.(\d{1,6})$/.exec(text);
  return m ? { chunk: Number(m[1]), line: Number(m[2]) } : null;
}

const view = (step: string, l: StoredLogLine): LogLineView => ({
  step,
  stream: l.s === 'e' ? 'stderr' : 'stdout',
  time: l.t,
  text: l.x,
});

/**
 * GET /v1/jobs/:id/logs. Without `follow`: every stored line as NDJSON, each
 * tagged with its step. With `follow=true`: Server-Sent Events, the backlog first,
 * then lines as they are stored, and an `end` event once the job has ended.
 */
export async function serveLogs(
  store: JobStore,
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
    throw new HttpError('invalid_query', 'Last-Event-ID: must be an id of this stream\'s line events (<chunk>.<line>)', 'lastEventId');
  }
  if (!(await store.jobState(jobId))) throw new HttpError('not_found', `no job ${jobId}`);

  if (!follow) {
    res.status(200).type('application/x-ndjson');
    let after = 0;
    for (;;) {
      const chunks = await store.readLogs(jobId, { afterId: after, step, limit: PAGE });
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
  res.flushHeaders();
  let closed = false;
  req.on('close', () => {
    closed = true;
  });
  // A reconnect resumes after the last line it got: the chunks before its chunk are not
  // read again, and that chunk's lines up to it are skipped.
  const last = req.headers['last-event-id'] ?? query.lastEventId;
  const resume = typeof last === 'string' ? resumePoint(last) : null;
  let after = resume ? resume.chunk - 1 : 0;
  let lastWrite = Date.now();
  while (!closed) {
    // Read the job's state before the chunks: a job seen ended has stored all its output.
    const job = await store.jobState(jobId);
    let chunks;
    do {
      chunks = await store.readLogs(jobId, { afterId: after, step, limit: PAGE });
      for (const c of chunks) {
        const skip = resume && c.id === resume.chunk ? resume.line + 1 : 0;
        const events = c.lines.map((l, i) => (i < skip ? '' : `id: ${c.id}.${i}\nevent: line\ndata: ${JSON.stringify(view(c.step, l))}\n\n`));
        await send(res, events.join(''));
        after = c.id;
        lastWrite = Date.now();
      }
    } while (chunks.length === PAGE && !closed);
    if (job?.finished) {
      res.write(`event: end\ndata: ${JSON.stringify({ status: job.status })}\n\n`);
      break;
    }
    if (Date.now() - lastWrite > KEEPALIVE_MS) {
      res.write(': keep-alive\n\n');
      lastWrite = Date.now();
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  res.end();
}
