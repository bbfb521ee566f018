/**
 * /v1/webhooks: endpoints that hear of job events (admin scope). Registering checks the
 * target's form; each delivery checks where it resolves (webhooks/target.ts). The secret
 * is shown when the endpoint is made and when it is rotated, never again.
 */
import type { RequestHandler } from 'express';
import type { OperatorException } from '../common/egress-policy';
import type { WebhookStore } from '../db/webhook-store';
import { newSecret } from '../webhooks/signing';
import { parseTarget } from '../webhooks/target';
import { HttpError, parseInput } from './errors';
import { deliveriesQuery, webhookBody } from './schemas';
import type { Mount } from './route';

const ID = /^wh_[0-9a-f]{32}$/;

export function mountWebhooks(mount: Mount, deps: { store: WebhookStore; json: RequestHandler[]; exceptions: readonly OperatorException[] }): void {
  const { store } = deps;
  const endpointId = (raw: unknown) => {
    const id = String(raw);
    if (!ID.test(id)) throw new HttpError('not_found', `no webhook ${JSON.stringify(id.slice(0, 64))}`);
    return id;
  };
  const existing = async (raw: unknown) => {
    const id = endpointId(raw);
    const endpoint = await store.get(id);
    if (!endpoint) throw new HttpError('not_found', `no webhook ${id}`);
    return endpoint;
  };

  mount('createWebhook', ...deps.json, async (req, res) => {
    const body = parseInput(webhookBody, req.body, 'invalid_body');
    const target = parseTarget(body.url, deps.exceptions);
    if ('problem' in target) throw new HttpError('invalid_body', `url: ${target.problem}`, 'url');
    const secret = newSecret();
    const endpoint = await store.create({
      url: target.url.toString(),
      description: body.description,
      events: body.events,
      secret,
      createdBy: String(res.locals.token),
    });
    res
      .status(201)
      .location(`/v1/webhooks/${endpoint.id}`)
      .json({ ...endpoint, secret });
  });

  mount('listWebhooks', async (_req, res) => {
    res.json({ webhooks: await store.list() });
  });

  mount('getWebhook', async (req, res) => {
    res.json(await existing(req.params.webhookId));
  });

  mount('deleteWebhook', async (req, res) => {
    const id = endpointId(req.params.webhookId);
    if (!(await store.remove(id))) throw new HttpError('not_found', `no webhook ${id}`);
    res.status(204).end();
  });

  mount('rotateWebhookSecret', async (req, res) => {
    const id = endpointId(req.params.webhookId);
    const secret = newSecret();
    if (!(await store.rotate(id, secret))) throw new HttpError('not_found', `no webhook ${id}`);
    res.json({ secret });
  });

  mount('listWebhookDeliveries', async (req, res) => {
    const { limit } = parseInput(deliveriesQuery, req.query, 'invalid_query');
    const endpoint = await existing(req.params.webhookId);
    res.json({ deliveries: await store.deliveries(endpoint.id, limit ?? 20) });
  });

  mount('redeliverWebhook', async (req, res) => {
    const endpoint = await existing(req.params.webhookId);
    const delivery = String(req.params.deliveryId);
    if (!/^msg_[0-9a-f]{32}$/.test(delivery) || !(await store.redeliver(endpoint.id, delivery))) {
      throw new HttpError('not_found', `webhook ${endpoint.id} has no delivery ${JSON.stringify(delivery.slice(0, 64))}`);
    }
    res.status(202).json({ id: delivery, status: 'pending' });
  });
}
