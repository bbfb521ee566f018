/**
 * FakeRunner's volumes: the files of each job's workspace and caches and of each kept
 * volume, by path, in memory; where a step's write lands; and hashFiles over them with
 * the glob semantics of git's pathspecs that the tests use.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { CACHE_ROOT } from '../../common/warm';
import type { StepRequest, VolumeRef } from '../runner';

type Files = Map<string, Buffer>;

const keyOf = (ref: VolumeRef) => ('workspace' in ref ? `w:${ref.workspace}` : 'cache' in ref ? `c:${ref.cache.jobId}:${ref.cache.name}` : `k:${ref.kept}`);

export class FakeVolumes {
  private readonly volumes = new Map<string, Files>();
  private readonly keptAt = new Map<string, Date>();

  files(ref: VolumeRef): Files | undefined {
    return this.volumes.get(keyOf(ref));
  }

  /** `to` becomes a copy of `from` (empty when null); answers its bytes. */
  copy(to: VolumeRef, from: VolumeRef | null): number {
    const copy: Files = new Map([...((from && this.files(from)) ?? [])].map(([p, d]) => [p, Buffer.from(d)]));
    this.volumes.set(keyOf(to), copy);
    if ('kept' in to) this.keptAt.set(to.kept, new Date());
    return [...copy.values()].reduce((n, d) => n + d.length, 0);
  }

  removeKept(id: string): void {
    this.volumes.delete(keyOf({ kept: id }));
    this.keptAt.delete(id);
  }

  listKept(): { id: string; createdAt: Date }[] {
    return [...this.keptAt].map(([id, createdAt]) => ({ id, createdAt }));
  }

  /** The job's workspace and caches go with the job. */
  removeJob(jobId: string): void {
    for (const key of [...this.volumes.keys()]) if (key === `w:${jobId}` || key.startsWith(`c:${jobId}:`)) this.volumes.delete(key);
  }

  hashFiles(jobId: string, pathspecs: readonly string[]): string {
    const include = pathspecs.filter((p) => p.startsWith(':(glob)')).map((p) => p.slice(':(glob)'.length));
    const exclude = pathspecs.filter((p) => p.startsWith(':(glob,exclude)')).map((p) => p.slice(':(glob,exclude)'.length));
    const matched = [...(this.files({ workspace: jobId }) ?? [])]
      .filter(([p]) => include.some((g) => path.matchesGlob(p, g)) && !exclude.some((g) => path.matchesGlob(p, g)))
      .sort(([a], [b]) => a.localeCompare(b));
    if (matched.length === 0) return '';
    const h = createHash('sha256');
    for (const [p, data] of matched) h.update(`${p}\0${createHash('sha256').update(data).digest('hex')}\0`);
    return h.digest('hex');
  }

  /**
   * A step writes `text` to `target`: in its workspace (a relative path), or in a cache it
   * mounts (/cache/NAME/..., or under a cache's path in the workspace); false anywhere else
   * (the root file system is read-only).
   */
  write(step: StepRequest, target: string, text: string): boolean {
    let ref: VolumeRef;
    let file: string;
    if (target.startsWith(`${CACHE_ROOT}/`)) {
      const [name, ...rest] = target.slice(CACHE_ROOT.length + 1).split('/');
      if (!step.caches?.includes(name!)) return false;
      ref = { cache: { jobId: step.jobId, name: name! } };
      file = rest.join('/');
    } else if (target.startsWith('/')) {
      return false;
    } else {
      // Under a cache's path, the write lands in the job's copy of that cache (mounted there).
      const mounted = step.workspaceCaches?.find((c) => target.startsWith(`${c.path}/`));
      ref = mounted ? { cache: { jobId: step.jobId, name: mounted.name } } : { workspace: step.jobId };
      file = mounted ? target.slice(mounted.path.length + 1) : target;
    }
    const key = keyOf(ref);
    if (!this.volumes.has(key)) this.volumes.set(key, new Map());
    this.volumes.get(key)!.set(file, Buffer.from(text));
    return true;
  }
}
