/**
 * /v1/hosts: the hosts that run steps, their room, and their drain (admin scope to
 * change). A drained host takes no new job; its jobs finish there (a job's next step can
 * only run where its workspace is), then its workers stop.
 */
import type { Express, RequestHandler } from 'express';
import type { HostStore } from '../db/host-store';
import { HttpError } from './errors';

const HOST_ID = /^[a-z0-9][a-z0-9-]{0,39}$/;

export function mountHosts(app: Express, deps: { hosts: HostStore; read: RequestHandler; admin: RequestHandler }): void {
  const { hosts } = deps;
  const hostId = (raw: unknown) => {
    const id = String(raw);
    if (!HOST_ID.test(id)) throw new HttpError('not_found', `no host ${JSON.stringify(id.slice(0, 64))}`);
    return id;
  };

  app.get('/v1/hosts', deps.read, async (_req, res) => {
    const [list, waiting] = await Promise.all([hosts.list(), hosts.waitingCount()]);
    res.json({ hosts: list, waiting });
  });

  app.get('/v1/hosts/:hostId', deps.read, async (req, res) => {
    const id = hostId(req.params.hostId);
    const host = await hosts.get(id);
    if (!host) throw new HttpError('not_found', `no host ${id}`);
    res.json(host);
  });

  for (const [action, draining] of [
    ['drain', true],
    ['undrain', false],
  ] as const) {
    app.post(`/v1/hosts/:hostId/${action}`, deps.admin, async (req, res) => {
      const id = hostId(req.params.hostId);
      const host = await hosts.setDraining(id, draining);
      if (!host) throw new HttpError('not_found', `no host ${id}`);
      res.json(host);
    });
  }
}
