/** Idempotency-Key on a route: claims a request's key, waits for a duplicate in flight, replays the first answer (rules in api/idempotency.ts). */
import type { Request, Response } from 'express';
import type { IdempotencyRecord, IdempotencyStore } from '../db/idempotency-store';
import { HttpError } from './errors';
import { bodyHash, IDEMPOTENCY_TTL_HOURS, idempotencyKey } from './idempotency';

/** How long a duplicate waits for the answer of the request in flight with the same Idempotency-Key. */
const IN_FLIGHT_WAIT_MS = 10_000;

export interface Claim {
  key: string;
  record: IdempotencyRecord;
  /** Keeps the answer for the key's retries. */
  save(status: number, body: unknown): Promise<void>;
}

export class IdempotentRequests {
  constructor(private readonly store: IdempotencyStore) {}

  /**
   * The request's Idempotency-Key, claimed for its principal (`res.locals.token`) and
   * route; `null` without one. Another body under the key is a 422; a duplicate of a
   * request still in flight waits (a while) for its answer.
   */
  async claim(req: Request, res: Response, route: string): Promise<Claim | null> {
    const { key, problem } = idempotencyKey(req.headers['idempotency-key']);
    if (problem) throw new HttpError('invalid_idempotency_key', problem);
    if (!key) return null;
    const principal = String(res.locals.token);
    const hash = bodyHash(req.body);
    let record = await this.store.claim(principal, route, key, hash);
    if (record.bodyHash !== hash) {
      throw new HttpError(
        'idempotency_key_reused',
        `the Idempotency-Key ${JSON.stringify(key)} was used with another body in the last ${IDEMPOTENCY_TTL_HOURS} h`,
      );
    }
    if (record.fresh) {
      // A refusal (4xx) did nothing and keeps no answer: the key is freed at once, so a
      // duplicate in flight or a later retry runs afresh instead of waiting for an answer
      // that never comes (a job not at its gate yet may be at it on the retry).
      res.once('finish', () => {
        if (res.statusCode >= 400 && res.statusCode < 500) void this.store.release(principal, route, key).catch(() => undefined);
      });
    }
    for (let waited = 0; !record.fresh && !record.answer && waited < IN_FLIGHT_WAIT_MS; waited += 100) {
      await new Promise((r) => setTimeout(r, 100));
      const current = await this.store.get(principal, route, key);
      // The request in flight was refused and freed the key: this one runs afresh.
      if (!current) return this.claim(req, res, route);
      record = { ...record, answer: current.answer };
    }
    return { key, record, save: (status, body) => this.store.answer(principal, route, key, status, body) };
  }

  /** The first answer again, marked as such. */
  replay(res: Response, answer: { status: number; body: unknown }): void {
    res.set('idempotent-replayed', 'true').status(answer.status).json(answer.body);
  }
}
