/**
 * GET /v1/jobs/:id/logs/ws: the log stream of a job over a WebSocket, with the events and
 * the resume rule of the SSE stream (api/logs.ts). Every message is a JSON text frame
 * `{ event, id?, data }`: `line` (with its id), `step`, `status`, then `end`, after which
 * the server closes with 1000. Resume with `?lastEventId=` (the id of the last line
 * received). Heartbeats are WebSocket pings. The token comes in the Authorization header
 * of the upgrade request (read scope).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { JOB_ID_PATTERN } from '../common/job';
import type { Metrics } from '../common/metrics';
import type { JobStore } from '../db/store';
import type { Authenticator } from './auth';
import { HttpError, parseInput, PROBLEM_CONTENT_TYPE, problem, requestIdFrom } from './errors';
import { followJob, type JobFeeds, resumePoint } from './job-feed';
import { type FollowStreams, wireEvent } from './logs';
import { logsQuery } from './schemas';

export const WS_PATH = /^\/v1\/jobs\/([^/]+)\/logs\/ws$/;
const ROUTE = '/v1/jobs/:id/logs/ws';
const HEARTBEAT_MS = 15_000;
/** Past this many bytes queued for a slow client, the stream waits for it. */
const HIGH_WATER = 1 << 20;

/** Answers a refused upgrade with a problem document, as the HTTP routes do. */
function refuse(socket: Duplex, err: HttpError, requestId: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(problem(err.code, err.message, requestId, err.field));
  const head = [
    `HTTP/1.1 ${err.status} ${err.code}`,
    `content-type: ${PROBLEM_CONTENT_TYPE}`,
    `content-length: ${Buffer.byteLength(body)}`,
    `x-request-id: ${requestId}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    'connection: close',
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}

async function drained(ws: WebSocket): Promise<void> {
  while (ws.bufferedAmount > HIGH_WATER && ws.readyState === ws.OPEN) await new Promise((r) => setTimeout(r, 20));
}

async function stream(ws: WebSocket, feeds: JobFeeds, store: JobStore, jobId: string, step: string | undefined, resume: ReturnType<typeof resumePoint>) {
  const abort = new AbortController();
  ws.on('close', () => abort.abort());
  // Clients only listen; what they send is ignored (maxPayload keeps it small).
  ws.on('message', () => undefined);
  for await (const batch of followJob(feeds, store, jobId, { step, resume, heartbeatMs: HEARTBEAT_MS, abort: abort.signal })) {
    for (const e of batch) {
      if (e.type === 'heartbeat') ws.ping();
      else ws.send(JSON.stringify(wireEvent(e)));
    }
    await drained(ws);
  }
  if (ws.readyState === ws.OPEN) ws.close(1000, 'end');
}

/** The server's `upgrade` listener for the WebSocket endpoint; other upgrades get a 404. */
export function webSocketUpgrade(deps: {
  auth: Authenticator;
  store: JobStore;
  feeds: JobFeeds;
  streams: FollowStreams;
  metrics: Metrics;
  log: (line: string) => void;
}) {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const requestId = requestIdFrom(req.headers['x-request-id'], randomUUID);
    const count = (status: number) => deps.metrics.httpRequests.inc({ method: 'GET', route: ROUTE, status: String(status) });
    socket.on('error', () => undefined);
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const match = WS_PATH.exec(url.pathname);
      if (!match) throw new HttpError('not_found', 'no such route');
      const admitted = deps.auth.check(req.headers.authorization, 'read');
      if ('error' in admitted) {
        count(admitted.error.status);
        return refuse(socket, admitted.error, requestId, {
          ...(admitted.retryAfter ? { 'retry-after': String(admitted.retryAfter) } : {}),
          ...(admitted.error.code === 'unauthorized' ? { 'www-authenticate': 'Bearer realm="draftsman"' } : {}),
        });
      }
      const jobId = decodeURIComponent(match[1]!);
      if (!JOB_ID_PATTERN.test(jobId)) throw new HttpError('not_found', `no job ${JSON.stringify(jobId)}`);
      // The same rules as the SSE stream's query; the schema checks lastEventId's form.
      const { step, lastEventId } = parseInput(logsQuery.omit({ follow: true }), Object.fromEntries(url.searchParams), 'invalid_query');
      const resume = lastEventId === undefined ? null : resumePoint(lastEventId);
      if (!(await deps.store.jobState(jobId))) throw new HttpError('not_found', `no job ${jobId}`);
      if (deps.streams.full()) {
        count(429);
        return refuse(socket, deps.streams.refusal(), requestId, { 'retry-after': '5' });
      }
      // A handshake that ws refuses (a bad Sec-WebSocket-Key...) never calls back: the
      // stream is counted only once it exists.
      wss.handleUpgrade(req, socket, head, (ws) => {
        count(101);
        const release = deps.streams.open();
        stream(ws, deps.feeds, deps.store, jobId, step, resume)
          .catch((err: Error) => {
            deps.log(`log stream of ${jobId} over WebSocket failed (request ${requestId}): ${err.message}`);
            ws.close(1011, 'internal error');
          })
          .finally(release);
      });
    })().catch((err: unknown) => {
      const e = err instanceof HttpError ? err : new HttpError('internal', 'internal error');
      if (!(err instanceof HttpError)) deps.log(`WebSocket upgrade failed (request ${requestId}): ${String(err)}`);
      count(e.status);
      refuse(socket, e, requestId);
    });
  };
}
