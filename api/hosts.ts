/**
 * /v1/hosts: the hosts that run steps, their room, and their drain (admin scope to
 * change). A drained host takes no new job; its jobs finish there (a job's next step can
 * only run where its workspace is), then its workers stop.
 */

import type { HostStore } from '../db/host-store';
import { HttpError } from './errors';
import type { Mount } from './route';

const HOST_ID = /^[a-z0-9][a-z0-9-]{0,39}$/;

export function mountHosts(mount: Mount, deps: { hosts: HostStore }): void {
  const { hosts } = deps;
  const hostId = (raw: unknown) => {
    const id = String(raw);
    if (!HOST_ID.test(id)) throw new HttpError('not_found', `no host ${JSON.stringify(id.slice(0, 64))}`);
    return id;
  };

  mount('listHosts', async (_req, res) => {
    const [list, waiting] = await Promise.all([hosts.list(), hosts.waitingCount()]);
    res.json({ hosts: list, waiting });
  });

  mount('getHost', async (req, res) => {
    const id = hostId(req.params.hostId);
    const host = await hosts.get(id);
    if (!host) throw new HttpError('not_found', `no host ${id}`);
    res.json(host);
  });

  for (const [operation, draining] of [
    ['drainHost', true],
    ['undrainHost', false],
  ] as const) {
    mount(operation, async (req, res) => {
      const id = hostId(req.params.hostId);
      const host = await hosts.setDraining(id, draining);
      if (!host) throw new HttpError('not_found', `no host ${id}`);
      res.json(host);
    });
  }
}
