/**
 * The disk guard's reading: free space where the engine keeps workspaces, against the
 * operator's floor. A job does not start below it (activities/jobs.ts), and /health
 * shows it.
 */
import fs from 'node:fs';
import type { Config } from './config';

export interface DiskRoom {
  path: string;
  freeMb: number;
  floorMb: number;
  /** At or above the floor: jobs start. */
  enough: boolean;
}

export const diskGuardPath = (config: Pick<Config, 'DRAFTSMAN_DISK_GUARD_PATH' | 'DRAFTSMAN_DATA_DIR'>): string =>
  config.DRAFTSMAN_DISK_GUARD_PATH ?? config.DRAFTSMAN_DATA_DIR;

/** Null when the guard is off (a floor of 0). */
export async function diskRoom(
  config: Pick<Config, 'DRAFTSMAN_DISK_GUARD_PATH' | 'DRAFTSMAN_DATA_DIR' | 'DRAFTSMAN_MIN_FREE_DISK_MB'>,
): Promise<DiskRoom | null> {
  const floorMb = config.DRAFTSMAN_MIN_FREE_DISK_MB;
  if (floorMb <= 0) return null;
  const path = diskGuardPath(config);
  const stats = await fs.promises.statfs(path);
  const freeMb = Math.floor((stats.bavail * stats.bsize) / (1024 * 1024));
  return { path, freeMb, floorMb, enough: freeMb >= floorMb };
}
