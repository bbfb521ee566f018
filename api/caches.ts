/**
 * /v1/caches: the saved dependency caches and kept workspaces of every host (admin
 * scope): what they hold, for whom, how big, when last used; a delete forgets one at
 * once (no job restores it from then on) and its host's janitor removes the volume.
 */

import type { KeptStore } from '../db/kept-store';
import { HttpError } from './errors';
import type { Mount } from './route';

const KEPT_ID = /^[0-9a-f-]{36}$/;
const KINDS = ['cache', 'snapshot'] as const;

export function mountCaches(mount: Mount, deps: { kept: KeptStore }): void {
  const { kept } = deps;

  mount('listCaches', async (req, res) => {
    const kind = req.query.kind;
    if (kind !== undefined && !KINDS.includes(kind as (typeof KINDS)[number])) {
      throw new HttpError('invalid_query', `kind must be one of ${KINDS.join(', ')}`, 'kind');
    }
    const scope = typeof req.query.scope === 'string' ? req.query.scope : undefined;
    const list = await kept.list({ ...(kind ? { kind: kind as (typeof KINDS)[number] } : {}), ...(scope ? { scope } : {}) });
    res.json({ caches: list, bytes: list.reduce((n, k) => n + k.bytes, 0) });
  });

  mount('deleteCache', async (req, res) => {
    const id = String(req.params.cacheId);
    const gone = KEPT_ID.test(id) ? await kept.remove(id) : null;
    if (!gone) throw new HttpError('not_found', `no cache or kept workspace ${JSON.stringify(id.slice(0, 64))}`);
    res.json(gone);
  });
}
