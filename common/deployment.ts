import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from './config';

/**
 * The deployment's id: the configured one, else the one kept in the data folder
 * (made at first start).
 */
export function deploymentId(config: Config): string {
  if (config.DRAFTSMAN_DEPLOYMENT_ID) return config.DRAFTSMAN_DEPLOYMENT_ID;
  const file = path.join(path.resolve(config.DRAFTSMAN_DATA_DIR), 'deployment-id');
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    // wx: two processes starting together keep the first one's id.
    try {
      fs.writeFileSync(file, `${randomBytes(4).toString('hex')}\n`, { flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  const id = fs.readFileSync(file, 'utf8').trim();
  if (!/^[a-z0-9]{1,16}$/.test(id)) throw new Error(`${file} does not hold a deployment id (1 to 16 lower-case letters or digits)`);
  return id;
}

/** The task queue of one host's engine activities, beside the shared queue it belongs to. */
export const hostTaskQueue = (taskQueue: string, hostId: string): string => `${taskQueue}@${hostId}`;

/**
 * This worker's host id: the configured one, else one derived from its backend's host key
 * (the engine's id and address), so that workers of one engine, restarted or scaled,
 * serve one host queue, and workers of two engines never share one.
 */
export function hostId(configured: string | undefined, hostKey: string): string {
  return configured ?? `h${createHash('sha256').update(hostKey).digest('hex').slice(0, 12)}`;
}
