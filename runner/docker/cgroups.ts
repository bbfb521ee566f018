/**
 * A step's usage from the kernel's accounting. Each step container runs under a cgroup
 * of its own that Draftsman names (`CgroupParent`, with the engine's cgroupfs driver):
 * the container's own cgroup goes when it exits, but its parent keeps what its processes
 * used (CPU time is charged to every ancestor as it is used, and the memory peak counts
 * the descendants), so the usage is read after the exit as well as during the run, and
 * the step cannot change it. cgroup v1 (cpuacct, memory) and v2 (cpu.stat, memory.peak).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { StepUsage } from '../runner';

export type CgroupLayout = { version: 1; root: string } | { version: 2; root: string };

/** The cgroup hierarchy under `root` (/sys/fs/cgroup), or null when neither version's accounting can be read there. */
export async function detectLayout(root: string): Promise<CgroupLayout | null> {
  if (await exists(path.join(root, 'cgroup.controllers'))) return { version: 2, root };
  if ((await exists(path.join(root, 'cpuacct', 'cpuacct.usage'))) && (await exists(path.join(root, 'memory', 'memory.max_usage_in_bytes')))) {
    return { version: 1, root };
  }
  return null;
}

/** The parent cgroup of a deployment's step containers, as the engine's CgroupParent names it. */
export const deploymentCgroup = (deployment: string) => `/draftsman-${deployment}`;

/** A step's own parent cgroup: one per container, so that its usage is its own. */
export const stepCgroup = (parent: string, containerName: string) => `${parent}/${containerName}`;

/** Parses a v2 cpu.stat: the microseconds of `usage_usec`. Pure. */
export function usageUsec(cpuStat: string): number | null {
  const m = /^usage_usec (\d+)$/m.exec(cpuStat);
  return m ? Number(m[1]) : null;
}

/** What the processes under `cgroup` used, or null when it is not there (never made, or removed). */
export async function readUsage(layout: CgroupLayout, cgroup: string): Promise<StepUsage | null> {
  try {
    if (layout.version === 1) {
      const [cpu, peak] = await Promise.all([
        fs.readFile(path.join(layout.root, 'cpuacct', cgroup, 'cpuacct.usage'), 'utf8'),
        fs.readFile(path.join(layout.root, 'memory', cgroup, 'memory.max_usage_in_bytes'), 'utf8'),
      ]);
      return { cpuSeconds: Number(cpu.trim()) / 1e9, peakMemoryBytes: Number(peak.trim()) };
    }
    const dir = path.join(layout.root, cgroup);
    const [stat, peak] = await Promise.all([
      fs.readFile(path.join(dir, 'cpu.stat'), 'utf8'),
      // memory.peak is there from Linux 5.19; before, the current use is the best there is.
      fs.readFile(path.join(dir, 'memory.peak'), 'utf8').catch(() => fs.readFile(path.join(dir, 'memory.current'), 'utf8')),
    ]);
    const usec = usageUsec(stat);
    return usec === null ? null : { cpuSeconds: usec / 1e6, peakMemoryBytes: Number(peak.trim()) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Removes a step's cgroup once its container is gone (from every v1 hierarchy the engine made it in). Succeeds if it is gone. */
export async function removeCgroup(layout: CgroupLayout, cgroup: string): Promise<void> {
  const dirs =
    layout.version === 2
      ? [path.join(layout.root, cgroup)]
      : (await fs.readdir(layout.root, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => path.join(layout.root, e.name, cgroup));
  await Promise.all(
    dirs.map((d) =>
      fs.rmdir(d).catch((err: NodeJS.ErrnoException) => {
        // Gone already; a container still in it (EBUSY); or a hierarchy mounted read-only
        // here: an empty folder is left, which costs the host nothing to speak of.
        if (!['ENOENT', 'EBUSY', 'EROFS', 'EACCES', 'EPERM'].includes(err.code ?? '')) throw err;
      }),
    ),
  );
}

/** The cgroups left of a deployment's steps whose names start with `prefix` (a job's containers), for its cleanup. */
export async function stepCgroups(layout: CgroupLayout, parent: string, prefix: string): Promise<string[]> {
  const base = layout.version === 2 ? path.join(layout.root, parent) : path.join(layout.root, 'cpuacct', parent);
  const names = await fs.readdir(base).catch(() => [] as string[]);
  return names.filter((n) => n.startsWith(prefix)).map((n) => stepCgroup(parent, n));
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}
