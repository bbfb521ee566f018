import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';

/** A webhook endpoint as the API shows it: never its secrets. */
export interface WebhookEndpoint {
  id: string;
  url: string;
  description: string | null;
  /** The event types it receives; null: all of them. */
  events: string[] | null;
  createdBy: string;
  createdAt: string;
}

export interface WebhookDelivery {
  id: string;
  endpointId: string;
  eventType: string;
  jobId: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  nextAttemptAt: string | null;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: string;
  deliveredAt: string | null;
}

/** A delivery a dispatcher holds for one attempt, with what it needs to send it. */
export interface LeasedDelivery {
  id: string;
  endpointId: string;
  url: string;
  secrets: string[];
  payload: unknown;
  attempts: number;
}

interface EndpointRow {
  id: string;
  url: string;
  description: string | null;
  events: string[] | null;
  created_by: string;
  created_at: Date;
}

const endpointView = (r: EndpointRow): WebhookEndpoint => ({
  id: r.id,
  url: r.url,
  description: r.description,
  events: r.events,
  createdBy: r.created_by,
  createdAt: r.created_at.toISOString(),
});

interface DeliveryRow {
  id: string;
  endpoint_id: string;
  event_type: string;
  job_id: string;
  status: WebhookDelivery['status'];
  attempts: number;
  next_attempt_at: Date;
  last_status: number | null;
  last_error: string | null;
  created_at: Date;
  delivered_at: Date | null;
}

const deliveryView = (r: DeliveryRow): WebhookDelivery => ({
  id: r.id,
  endpointId: r.endpoint_id,
  eventType: r.event_type,
  jobId: r.job_id,
  status: r.status,
  attempts: r.attempts,
  nextAttemptAt: r.status === 'pending' ? r.next_attempt_at.toISOString() : null,
  lastStatus: r.last_status,
  lastError: r.last_error,
  createdAt: r.created_at.toISOString(),
  deliveredAt: r.delivered_at?.toISOString() ?? null,
});

/** How long a dispatcher holds a delivery it is sending; past it another may take it. */
const LEASE_SECONDS = 60;
/** How long the previous secret still signs after a rotation. */
const ROTATION_HOURS = 24;

export class WebhookStore {
  constructor(readonly pool: Pool) {}

  async create(e: { url: string; description?: string; events?: string[]; secret: string; createdBy: string }): Promise<WebhookEndpoint> {
    const { rows } = await this.pool.query<EndpointRow>(
      `INSERT INTO webhook_endpoints (id, url, description, events, secret, created_by) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
      [`wh_${randomUUID().replace(/-/g, '')}`, e.url, e.description ?? null, e.events ?? null, e.secret, e.createdBy],
    );
    return endpointView(rows[0]!);
  }

  async list(): Promise<WebhookEndpoint[]> {
    const { rows } = await this.pool.query<EndpointRow>('SELECT * FROM webhook_endpoints ORDER BY created_at DESC, id');
    return rows.map(endpointView);
  }

  async get(id: string): Promise<WebhookEndpoint | null> {
    const { rows } = await this.pool.query<EndpointRow>('SELECT * FROM webhook_endpoints WHERE id = $1', [id]);
    return rows[0] ? endpointView(rows[0]) : null;
  }

  /** Removes an endpoint and what it was still owed; false when there was none. */
  async remove(id: string): Promise<boolean> {
    const { rowCount } = await this.pool.query('DELETE FROM webhook_endpoints WHERE id = $1', [id]);
    return (rowCount ?? 0) > 0;
  }

  /** A new secret; the current one keeps signing beside it for ROTATION_HOURS. False when there is no such endpoint. */
  async rotate(id: string, secret: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `UPDATE webhook_endpoints SET previous_secret = secret, previous_valid_until = now() + make_interval(hours => $3), secret = $2 WHERE id = $1`,
      [id, secret, ROTATION_HOURS],
    );
    return (rowCount ?? 0) > 0;
  }

  async deliveries(endpointId: string, limit: number): Promise<WebhookDelivery[]> {
    const { rows } = await this.pool.query<DeliveryRow>('SELECT * FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2', [
      endpointId,
      limit,
    ]);
    return rows.map(deliveryView);
  }

  /** Sends a delivery again (whatever its state), now. False when the endpoint has no such delivery. */
  async redeliver(endpointId: string, deliveryId: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(), leased_until = NULL WHERE id = $1 AND endpoint_id = $2`,
      [deliveryId, endpointId],
    );
    return (rowCount ?? 0) > 0;
  }

  /**
   * Up to `limit` deliveries that are due, each held for LEASE_SECONDS (SKIP LOCKED: two
   * dispatchers never take the same one), counted as an attempt. `endpoints` narrows
   * which endpoints' deliveries to take.
   */
  async lease(limit: number, endpoints?: readonly string[]): Promise<LeasedDelivery[]> {
    const { rows } = await this.pool.query<{
      id: string;
      endpoint_id: string;
      url: string;
      secret: string;
      previous: string | null;
      payload: unknown;
      attempts: number;
    }>(
      `WITH due AS (
         SELECT id FROM webhook_deliveries
          WHERE status = 'pending' AND next_attempt_at <= now() AND (leased_until IS NULL OR leased_until < now())
            AND ($3::text[] IS NULL OR endpoint_id = ANY ($3::text[]))
          ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
       )
       UPDATE webhook_deliveries d SET leased_until = now() + make_interval(secs => $2), attempts = d.attempts + 1
         FROM due, webhook_endpoints e
        WHERE d.id = due.id AND e.id = d.endpoint_id
       RETURNING d.id, d.endpoint_id, e.url, e.secret,
                 CASE WHEN e.previous_valid_until > now() THEN e.previous_secret END AS previous, d.payload, d.attempts`,
      [limit, LEASE_SECONDS, endpoints ?? null],
    );
    return rows.map((r) => ({
      id: r.id,
      endpointId: r.endpoint_id,
      url: r.url,
      secrets: [r.secret, ...(r.previous ? [r.previous] : [])],
      payload: r.payload,
      attempts: r.attempts,
    }));
  }

  /** The outcome of an attempt: delivered, to be tried again at `retryAt`, or given up (retryAt null). */
  async settle(id: string, outcome: { delivered: boolean; status: number | null; error: string | null; retryAt: Date | null }): Promise<void> {
    await this.pool.query(
      `UPDATE webhook_deliveries SET leased_until = NULL, last_status = $2, last_error = $3,
         status = CASE WHEN $4 THEN 'delivered' WHEN $5::timestamptz IS NULL THEN 'failed' ELSE 'pending' END,
         delivered_at = CASE WHEN $4 THEN now() END,
         next_attempt_at = COALESCE($5, next_attempt_at)
       WHERE id = $1`,
      [id, outcome.status, outcome.error?.slice(0, 500) ?? null, outcome.delivered, outcome.retryAt],
    );
  }
}
