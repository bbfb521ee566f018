/**
 * Sends the webhook deliveries the outbox holds (db/webhook-store.ts): each is leased for
 * one attempt, signed (webhooks/signing.ts), sent to the address its target resolved to
 * and was checked at (webhooks/target.ts), and settled: delivered on a 2xx, else tried
 * again on the retry schedule, then given up. At least once: a dispatcher that dies
 * mid-attempt leaves the lease to expire, and the next attempt has the same delivery id.
 */
import { lookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import type { OperatorException, Resolver } from '../common/egress-policy';
import type { LeasedDelivery, WebhookStore } from '../db/webhook-store';
import { signedHeaders } from './signing';
import { decideTarget, parseTarget } from './target';

/** When attempt number `attempts` (1-based) failed: the time of the next, or null when the schedule is spent. Pure. */
export function nextAttemptAt(attempts: number, scheduleSeconds: readonly number[], now: number): Date | null {
  const wait = scheduleSeconds[attempts - 1];
  return wait === undefined ? null : new Date(now + wait * 1000);
}

export const systemResolver: Resolver = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

export interface DispatcherOptions {
  store: WebhookStore;
  exceptions: readonly OperatorException[];
  retrySeconds: readonly number[];
  log: (line: string) => void;
  resolve?: Resolver;
  /** Only these endpoints' deliveries (all when absent). */
  endpoints?: readonly string[];
  pollMs?: number;
  timeoutMs?: number;
}

const MAX_ANSWER_BYTES = 64 * 1024;

export class WebhookDispatcher {
  private stopped = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;

  constructor(private readonly o: DispatcherOptions) {}

  start(): this {
    this.loop ??= this.run();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let batch: LeasedDelivery[] = [];
      try {
        batch = await this.o.store.lease(10, this.o.endpoints);
        await Promise.all(batch.map((d) => this.attempt(d)));
      } catch (err) {
        this.o.log(`webhook deliveries: ${(err as Error).message} (trying again)`);
      }
      if (batch.length === 0 && !this.stopped) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.o.pollMs ?? 500);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    }
  }

  private async attempt(d: LeasedDelivery): Promise<void> {
    const { status, error } = await this.send(d).catch((err: Error) => ({ status: null, error: err.message }));
    const delivered = status !== null && status >= 200 && status < 300;
    const retryAt = delivered ? null : nextAttemptAt(d.attempts, this.o.retrySeconds, Date.now());
    if (!delivered)
      this.o.log(
        `webhook ${d.id} to ${d.endpointId}: attempt ${d.attempts} failed (${error ?? `HTTP ${status}`})${retryAt ? `; next at ${retryAt.toISOString()}` : '; given up'}`,
      );
    await this.o.store.settle(d.id, { delivered, status, error: delivered ? null : (error ?? `HTTP ${status}`), retryAt });
  }

  private async send(d: LeasedDelivery): Promise<{ status: number | null; error: string | null }> {
    const target = parseTarget(d.url, this.o.exceptions);
    if ('problem' in target) return { status: null, error: `target refused: ${target.problem}` };
    const decision = await decideTarget(target, this.o.exceptions, this.o.resolve ?? systemResolver);
    if (!decision.allowed) return { status: null, error: `target refused: ${decision.reason}` };
    const body = JSON.stringify(d.payload);
    const headers = {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      'user-agent': 'Draftsman-Webhooks/1',
      host: target.url.host,
      ...signedHeaders(d.secrets, d.id, Math.floor(Date.now() / 1000), body),
    };
    const secure = target.url.protocol === 'https:';
    return new Promise((resolve) => {
      // To the address that was checked, never resolving the name again (no DNS rebinding).
      const req = (secure ? https : http).request(
        {
          host: decision.address,
          port: target.port,
          path: `${target.url.pathname}${target.url.search}`,
          method: 'POST',
          headers,
          ...(secure ? { servername: target.host } : {}),
          timeout: this.o.timeoutMs ?? 10_000,
        },
        (res) => {
          let read = 0;
          res.on('data', (c: Buffer) => {
            read += c.length;
            if (read > MAX_ANSWER_BYTES) res.destroy();
          });
          res.on('close', () => resolve({ status: res.statusCode ?? null, error: null }));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer in ${this.o.timeoutMs ?? 10_000} ms`)));
      req.on('error', (err) => resolve({ status: null, error: err.message }));
      req.end(body);
    });
  }
}
