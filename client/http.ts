/**
 * The HTTP API's client, typed by the OpenAPI document: client/api-types.ts is generated
 * from docs/openapi.json (`npm run openapi`), so a request or an answer that drifts from
 * the API fails the build. The CLI uses it; client/jobs.ts is the Temporal-SDK client.
 */
import createClient from 'openapi-fetch';
import type { components, paths } from './api-types';

export type JobView = components['schemas']['JobView'];
export type JobSpecInput = components['schemas']['JobSpec'];
export type JobPage = { jobs: JobView[]; nextCursor: string | null };
export type HostView = components['schemas']['Host'];
export type KeptView = components['schemas']['Kept'];
export type GroupView = components['schemas']['GroupView'];
export type ForkRequest = NonNullable<paths['/v1/jobs/{id}/forks']['post']['requestBody']>['content']['application/json'];
export type ResumeChanges = NonNullable<paths['/v1/jobs/{id}/resume']['post']['requestBody']>['content']['application/json'];
export type AuditEvent = { id: number; type: string; data: Record<string, unknown>; at: string };
export type ListFilter = NonNullable<paths['/v1/jobs']['get']['parameters']['query']>;

export interface LogLine {
  step: string;
  stream: 'stdout' | 'stderr';
  time: string;
  text: string;
}

/** A refused or failed request: `status` 0 when the API did not answer at all. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** How many times in a row a followed stream that drops is resumed, and after how long. */
const RECONNECTS = 10;
const RECONNECT_MS = 1_000;

const key = (idempotencyKey?: string) => (idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : {});

export class DraftsmanApi {
  private readonly http: ReturnType<typeof createClient<paths>>;

  constructor(
    readonly url: string,
    private readonly token?: string,
  ) {
    this.http = createClient<paths>({ baseUrl: url, headers: token ? { authorization: `Bearer ${token}` } : {} });
  }

  /** The answer's data; a refusal is an ApiError with the problem's detail and code. */
  private async call<T>(request: () => Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
    let answer;
    try {
      answer = await request();
    } catch (err) {
      throw new ApiError(0, `cannot reach the Draftsman API at ${this.url}: ${(err as Error).message}`);
    }
    if (!answer.response.ok) {
      const { detail, code } = problemOf(answer.error, answer.response.status);
      throw new ApiError(answer.response.status, detail, code);
    }
    return answer.data as T;
  }

  /** With an idempotency key, a retry of the same submission starts nothing new. */
  submit(spec: unknown, idempotencyKey?: string): Promise<{ id: string }> {
    return this.call(() => this.http.POST('/v1/jobs', { body: spec as JobSpecInput, params: { header: key(idempotencyKey) } }));
  }

  job(id: string): Promise<JobView> {
    return this.call(() => this.http.GET('/v1/jobs/{id}', { params: { path: { id } } }));
  }

  list(filter: ListFilter): Promise<JobPage> {
    return this.call(() => this.http.GET('/v1/jobs', { params: { query: filter } }));
  }

  events(id: string): Promise<{ events: AuditEvent[] }> {
    return this.call(() => this.http.GET('/v1/jobs/{id}/events', { params: { path: { id } } }));
  }

  /** The stored patch as text (ready for `git apply`). */
  patch(id: string): Promise<string> {
    return this.call(() => this.http.GET('/v1/jobs/{id}/patch', { params: { path: { id } }, parseAs: 'text' }));
  }

  cancel(id: string, reason?: string, idempotencyKey?: string): Promise<{ id: string; status: 'cancelling' }> {
    return this.call(() => this.http.POST('/v1/jobs/{id}/cancel', { params: { path: { id }, header: key(idempotencyKey) }, body: reason ? { reason } : {} }));
  }

  /** A decision on the job's approval gate; answers the decision the job recorded. */
  approval(
    id: string,
    body: { decision: 'approve' | 'reject'; comment?: string; budget?: components['schemas']['Approval']['budget'] },
    idempotencyKey?: string,
  ): Promise<components['schemas']['Approval']> {
    return this.call(() => this.http.POST('/v1/jobs/{id}/approval', { params: { path: { id }, header: key(idempotencyKey) }, body }));
  }

  /** The hosts that run steps, and how many jobs wait for one with room. */
  hosts(): Promise<{ hosts: HostView[]; waiting: number }> {
    return this.call(() => this.http.GET('/v1/hosts'));
  }

  /** Starts (or, with `draining` false, ends) a host's drain (admin scope). */
  drain(hostId: string, draining = true): Promise<HostView> {
    const path = { hostId };
    return this.call(() =>
      draining ? this.http.POST('/v1/hosts/{hostId}/drain', { params: { path } }) : this.http.POST('/v1/hosts/{hostId}/undrain', { params: { path } }),
    );
  }

  /** The saved caches and kept workspaces (admin scope), most recently used first. */
  caches(kind?: 'cache' | 'snapshot'): Promise<{ caches: KeptView[]; bytes: number }> {
    return this.call(() => this.http.GET('/v1/caches', { params: { query: kind ? { kind } : {} } }));
  }

  /** Forgets a saved cache or kept workspace (admin scope); its host's janitor removes the volume. */
  deleteCache(id: string): Promise<KeptView> {
    return this.call(() => this.http.DELETE('/v1/caches/{cacheId}', { params: { path: { cacheId: id } } }));
  }

  /** The job's spec again as a new job; answers the new job's id. */
  rerun(id: string, idempotencyKey?: string): Promise<{ id: string; rerunOf: string }> {
    return this.call(() => this.http.POST('/v1/jobs/{id}/rerun', { params: { path: { id }, header: key(idempotencyKey) } }));
  }

  /** The jobs' ledgers summed, in all and per principal (another principal's needs the admin scope). */
  usage(query: NonNullable<paths['/v1/usage']['get']['parameters']['query']> = {}): Promise<components['schemas']['Usage']> {
    return this.call(() => this.http.GET('/v1/usage', { params: { query } }));
  }

  /** A group of attempts from the workspace the job kept at `after` (best-of-N); answers the group's id and its attempts'. */
  fork(id: string, body: ForkRequest, idempotencyKey?: string): Promise<{ id: string; parent: string; jobs: string[] }> {
    return this.call(() => this.http.POST('/v1/jobs/{id}/forks', { params: { path: { id }, header: key(idempotencyKey) }, body }));
  }

  /** A group: its attempts with their status, validation, patch size and duration, and its winner. */
  group(id: string): Promise<GroupView> {
    return this.call(() => this.http.GET('/v1/groups/{id}', { params: { path: { id } } }));
  }

  /** A failed or timed-out job again from the last workspace it kept, with the changes given; answers the new job's id and the point. */
  resume(id: string, changes: ResumeChanges = {}, idempotencyKey?: string): Promise<{ id: string; resumeOf: string; from: string }> {
    return this.call(() => this.http.POST('/v1/jobs/{id}/resume', { params: { path: { id }, header: key(idempotencyKey) }, body: changes }));
  }

  /** Long poll: the job once it ends, or as it is after `seconds` (at most 120, the API's limit). */
  wait(id: string, seconds: number): Promise<JobView> {
    const timeout = Math.max(0, Math.min(120, Math.ceil(seconds)));
    return this.call(() => this.http.GET('/v1/jobs/{id}/wait', { params: { path: { id }, query: { timeout } } }));
  }

  /**
   * Every stored line (NDJSON), or with `follow` the live stream (Server-Sent Events) until
   * the job ends. A followed stream that drops resumes after the last line it got
   * (Last-Event-ID), up to RECONNECTS times in a row. Streams are read with fetch itself:
   * the typed client answers whole bodies.
   */
  async logs(id: string, opts: { follow: boolean; step?: string }, onLine: (l: LogLine) => void): Promise<{ status?: string }> {
    const q = new URLSearchParams();
    if (opts.follow) q.set('follow', 'true');
    if (opts.step) q.set('step', opts.step);
    const headers = (extra: Record<string, string>) => ({ ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...extra });
    let lastEventId: string | undefined;
    for (let failures = 0; ;) {
      let res: Response;
      try {
        res = await fetch(`${this.url}/v1/jobs/${encodeURIComponent(id)}/logs?${q}`, { headers: headers(lastEventId ? { 'last-event-id': lastEventId } : {}) });
      } catch (err) {
        if (!opts.follow || lastEventId === undefined || ++failures > RECONNECTS)
          throw new ApiError(0, `cannot reach the Draftsman API at ${this.url}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, RECONNECT_MS));
        continue;
      }
      if (!res.ok || !res.body) {
        const text = await res.text().catch(() => '');
        const { detail, code } = problemOf(parseJson(text), res.status);
        throw new ApiError(res.status, detail, code);
      }
      const decoder = new TextDecoder();
      let buffer = '';
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buffer += decoder.decode(chunk, { stream: true });
          if (!opts.follow) {
            let nl;
            while ((nl = buffer.indexOf('\n')) >= 0) {
              const line = buffer.slice(0, nl);
              buffer = buffer.slice(nl + 1);
              if (line) onLine(JSON.parse(line) as LogLine);
            }
            continue;
          }
          let split;
          while ((split = buffer.indexOf('\n\n')) >= 0) {
            const event = buffer.slice(0, split);
            buffer = buffer.slice(split + 2);
            const type = /^event: (\w+)/m.exec(event)?.[1];
            const data = /^data: (.*)$/m.exec(event)?.[1];
            if (type === 'line' && data) {
              onLine(JSON.parse(data) as LogLine);
              lastEventId = /^id: (.*)$/m.exec(event)?.[1] ?? lastEventId;
              failures = 0;
            }
            if (type === 'end' && data) return JSON.parse(data) as { status: string };
          }
        }
      } catch (err) {
        if (!opts.follow) throw err;
      }
      if (!opts.follow) return {};
      // The stream ended without its end event: the connection dropped.
      if (++failures > RECONNECTS) throw new ApiError(0, `the log stream of ${id} kept dropping (${RECONNECTS} reconnects)`);
      await new Promise((r) => setTimeout(r, RECONNECT_MS));
    }
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** What an error answer says (RFC 9457 problem details: `detail`, else `title`), or its status. */
export function problemOf(body: unknown, status: number): { detail: string; code?: string } {
  if (body && typeof body === 'object') {
    const p = body as { detail?: unknown; title?: unknown; code?: unknown };
    const code = typeof p.code === 'string' ? p.code : undefined;
    if (typeof p.detail === 'string') return { detail: p.detail, code };
    if (typeof p.title === 'string') return { detail: p.title, code };
  }
  // Not a problem document: a proxy's page, for example.
  return { detail: `HTTP ${status}` };
}
