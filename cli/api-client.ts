import type { JobView } from '../common/job';

export interface LogLine {
  step: string;
  stream: 'stdout' | 'stderr';
  time: string;
  text: string;
}

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The HTTP API as the CLI uses it. */
export class ApiClient {
  constructor(
    private readonly url: string,
    private readonly token?: string,
  ) {}

  private headers(json: boolean, extra: Record<string, string> = {}): Record<string, string> {
    return {
      ...(json ? { 'content-type': 'application/json' } : {}),
      ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
      ...extra,
    };
  }

  /** The answer's text; a failed request is an ApiError (status 0: no answer at all). */
  private async send(method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<string> {
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, {
        method,
        headers: this.headers(body !== undefined, extra),
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError(0, `cannot reach the Draftsman API at ${this.url}: ${(err as Error).message}`);
    }
    const text = await res.text();
    if (!res.ok) throw new ApiError(res.status, problemDetail(text, res.status));
    return text;
  }

  private async request<T>(method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<T> {
    const text = await this.send(method, path, body, extra);
    return (text ? JSON.parse(text) : null) as T;
  }

  /** With an idempotency key, a retry of the same submission starts nothing new. */
  submit(spec: unknown, idempotencyKey?: string): Promise<{ id: string }> {
    return this.request('POST', '/v1/jobs', spec, idempotencyKey ? { 'idempotency-key': idempotencyKey } : {});
  }

  job(id: string): Promise<JobView> {
    return this.request('GET', `/v1/jobs/${encodeURIComponent(id)}`);
  }

  list(filter: Record<string, string | undefined>): Promise<{ jobs: JobView[]; nextCursor: string | null }> {
    const q = new URLSearchParams(Object.entries(filter).filter((e): e is [string, string] => e[1] !== undefined));
    return this.request('GET', `/v1/jobs${q.size ? `?${q}` : ''}`);
  }

  events(id: string): Promise<{ events: { id: number; type: string; data: Record<string, unknown>; at: string }[] }> {
    return this.request('GET', `/v1/jobs/${encodeURIComponent(id)}/events`);
  }

  /** The stored patch as text. */
  patch(id: string): Promise<string> {
    return this.send('GET', `/v1/jobs/${encodeURIComponent(id)}/patch`);
  }

  /** The job's spec again as a new job; answers the new job's id. */
  rerun(id: string, idempotencyKey?: string): Promise<{ id: string; rerunOf: string }> {
    return this.request('POST', `/v1/jobs/${encodeURIComponent(id)}/rerun`, undefined, idempotencyKey ? { 'idempotency-key': idempotencyKey } : {});
  }

  /** Long poll: the job once it ends, or as it is after `seconds` (at most 120, the API's limit). */
  wait(id: string, seconds: number): Promise<JobView> {
    return this.request('GET', `/v1/jobs/${encodeURIComponent(id)}/wait?timeout=${Math.max(0, Math.min(120, Math.ceil(seconds)))}`);
  }

  cancel(id: string, reason?: string, idempotencyKey?: string): Promise<unknown> {
    return this.request('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`, reason ? { reason } : {}, idempotencyKey ? { 'idempotency-key': idempotencyKey } : {});
  }

  /**
   * Every stored line (NDJSON), or with `follow` the live stream until the job ends. A
   * followed stream that drops resumes after the last line it got (Last-Event-ID), up to
   * `RECONNECTS` times in a row.
   */
  async logs(id: string, opts: { follow: boolean; step?: string }, onLine: (l: LogLine) => void): Promise<{ status?: string }> {
    const q = new URLSearchParams();
    if (opts.follow) q.set('follow', 'true');
    if (opts.step) q.set('step', opts.step);
    let lastEventId: string | undefined;
    for (let failures = 0; ; ) {
      let res: Response;
      try {
        res = await fetch(`${this.url}/v1/jobs/${encodeURIComponent(id)}/logs?${q}`, {
          headers: this.headers(false, lastEventId ? { 'last-event-id': lastEventId } : {}),
        });
      } catch (err) {
        if (!opts.follow || lastEventId === undefined || ++failures > RECONNECTS) throw new ApiError(0, `cannot reach the Draftsman API at ${this.url}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, RECONNECT_MS));
        continue;
      }
      if (!res.ok || !res.body) throw new ApiError(res.status, problemDetail(await res.text().catch(() => ''), res.status));
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

const RECONNECTS = 10;
const RECONNECT_MS = 1_000;

/** What an error answer says (RFC 9457 problem details: `detail`, else `title`), or its status. */
function problemDetail(text: string, status: number): string {
  try {
    const p = JSON.parse(text) as { detail?: unknown; title?: unknown };
    if (typeof p.detail === 'string') return p.detail;
    if (typeof p.title === 'string') return p.title;
  } catch {
    // not JSON: a proxy's page, for example
  }
  return `HTTP ${status}`;
}
