/**
 * Warm starts on the job's host: its dependency caches restored before setup and saved
 * after it, its workspace kept after setup or restored from a kept one. A job reads and
 * writes only the entries of its scope (repository and principal, common/warm.ts).
 */
import { createHash, randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { CacheSpec, KeepPoint } from '../common/job';
import { WorkspaceGitError } from '../common/errors';
import { secretScanner } from '../common/secret-scan';
import { FailureType } from '../common/names';
import { cacheHitEnv, hashedPatterns, keptName, parseKeyTemplate, pathspecs, renderKey, snapshotKey } from '../common/warm';
import type { JobVolumeRef } from '../runner/runner';
import { CLONE_SCRIPT } from './clone';
import type { Shared } from './deps';

/** What a batch of setup steps does for warm starts. */
export interface WarmInput {
  scope: string;
  /** Restored before the first setup step, saved after the last succeeded. */
  caches?: CacheSpec[];
  /** Keep the workspace under this key once setup succeeded (restoreWorkspace computed it). */
  snapshotKey?: string;
  /** The job's commit (read from the job's spec when absent: inputs of jobs started before it was always sent). */
  commit?: string;
  /** The secrets the clone and setup received: a cache or workspace that holds one of their values is not kept. */
  secretRefs?: string[];
}

export interface RestoreWorkspaceInput {
  jobId: string;
  placement?: number;
  scope: string;
  /** Look for a workspace kept after the same setup. */
  snapshot?: { repo: string; commit: string; image: string; setup: string[]; env: Record<string, string>; secretRefs: Record<string, string> };
  /** Start from the workspace this job kept (after setup when `after` is absent). */
  from?: { job: string; commit: string; after?: KeepPoint };
}

/** Keep the workspace after a loop step, for forks. */
export interface KeepWorkspaceInput {
  jobId: string;
  placement?: number;
  scope: string;
  after: KeepPoint;
  commit: string;
  /** The secrets the job's steps received: a workspace that holds one of their values is not kept. */
  secretRefs: string[];
}

/** Whether the workspace came from a kept one (clone and setup are then skipped), and the key to keep it under. */
export interface RestoredWorkspace {
  restored: boolean;
  snapshotKey?: string;
}

/** The version of the clone procedure, part of a kept workspace's key. */
const CLONE_VERSION = createHash('sha256').update(CLONE_SCRIPT).digest('hex').slice(0, 16);

const tag = (placement: number | undefined) => (placement && placement > 1 ? `p${placement}:` : '');

/**
 * The job's workspace on this host. A moved job's first attempt here first removes
 * what an earlier placement of it left on this host (it may be one that came back).
 */
export async function prepareJobWorkspace(sh: Shared, jobId: string, placement: number | undefined): Promise<void> {
  if ((placement ?? 1) > 1 && Context.current().info.attempt === 1 && !(await sh.steps.finished(jobId, 'clone', 0, placement))) {
    await sh.runner.removeJob(jobId);
  }
  await sh.runner.prepareWorkspace(jobId);
}

/** Runs `work` heartbeating meanwhile: a copy of a large tree outlasts the step's heartbeat timeout. */
async function beating<T>(sh: Shared, work: () => Promise<T>): Promise<T> {
  const ctx = Context.current();
  const timer = setInterval(() => ctx.heartbeat(), sh.heartbeatMs);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

export function createWarm(sh: Shared) {
  const hostQueue = () => sh.host?.taskQueue ?? sh.config.DRAFTSMAN_TASK_QUEUE;

  /** Saves a volume as a new kept one and commits it; false if an entry of the key came first (its copy is removed). */
  async function keep(
    jobId: string,
    what: { kind: 'cache' | 'snapshot'; scope: string; name: string; key: string; commit: string },
    from: Parameters<Shared['runner']['copyVolume']>[1],
  ) {
    // A new id per attempt: a copy cut short is a volume no row names, which the janitor removes.
    const id = randomUUID();
    const bytes = await sh.runner.copyVolume({ kept: id }, from);
    const committed = await sh.kept.commit({ id, hostQueue: hostQueue(), jobId, bytes, ...what });
    if (!committed) await sh.runner.removeKept(id);
    return { id, bytes, committed };
  }

  /**
   * A job's volume from the kept volume `id`; false, with the volume made empty again, when
   * the entry was forgotten meanwhile (evicted, or deleted through the API). The janitor
   * forgets an entry (its row) before it looks for job volumes layered on it and removes
   * it; a restore layers first and reads the row after, so one of the two sees the other:
   * a kept volume is never removed from under a job that goes on with it.
   */
  async function restoreKept(jobId: string, to: JobVolumeRef, id: string): Promise<boolean> {
    await sh.runner.copyVolume(to, { kept: id });
    if (await sh.kept.exists(id)) return true;
    await sh.runner.copyVolume(to, null);
    return false;
  }

  /**
   * The files of a job's volume (at most 20) that hold the value of a secret its steps
   * received, in its contents, its name or (a symlink) its target, in any form the
   * scanner knows; their names as they may be shown (masked). None read without secrets.
   */
  async function secretFiles(ref: JobVolumeRef, secretRefs: string[]): Promise<string[]> {
    if (secretRefs.length === 0) return [];
    const scanner = secretScanner(secretRefs.map((ref) => sh.resolveSecret(ref)));
    const files: string[] = [];
    const found = (path: string) => {
      if (files.length < 20) files.push(scanner.mask(path));
    };
    await sh.runner.readVolume(
      ref,
      (path, data) => {
        if (scanner.holds(path) || scanner.holds(data.toString('utf8'))) found(path);
      },
      (path, link) => {
        if (scanner.holds(path) || (link !== undefined && scanner.holds(link))) found(path);
      },
    );
    return files;
  }

  /**
   * Keeps the workspace under its key, unless a file in it holds the value of a secret
   * the job's steps received (in any of the encodings the patch is scanned for): then
   * nothing is kept, and the event names the files. Once per placement and point.
   */
  async function keepWorkspace(
    jobId: string,
    placement: number | undefined,
    k: { after: KeepPoint; scope: string; key: string; commit: string; secretRefs: string[] },
  ) {
    const eventKey = `snapshot:${tag(placement)}${k.after}`;
    if (await sh.store.eventData(jobId, eventKey)) return;
    const at = k.after === 'setup' ? {} : { after: k.after };
    const files = await secretFiles({ workspace: jobId }, k.secretRefs);
    if (files.length > 0) {
      await sh.store.event(jobId, eventKey, 'snapshot_refused', {
        key: k.key,
        ...at,
        why: "a file in the workspace holds the value of one of the job's secrets",
        files,
      });
      return;
    }
    const saved = await keep(jobId, { kind: 'snapshot', scope: k.scope, name: keptName(k.after), key: k.key, commit: k.commit }, { workspace: jobId });
    await sh.store.event(
      jobId,
      eventKey,
      'snapshot_saved',
      saved.committed ? { key: k.key, ...at, bytes: saved.bytes } : { key: k.key, ...at, saved: false, why: 'another job kept this setup first' },
    );
  }

  /** The hash of the commit's files a key names; a workspace whose objects no longer hold the commit fails the job, not a retry. */
  async function hashFiles(jobId: string, commit: string | undefined, specs: string[], secretRefs: string[]): Promise<string> {
    const c = commit ?? (await sh.store.getSpec(jobId))?.commit;
    if (!c) throw new Error(`job ${jobId} has no accepted spec to read its commit from`);
    try {
      return await sh.runner.hashFiles(jobId, c, specs);
    } catch (err) {
      // Git's words about the workspace go into the job's error: masked like every string that came from a step.
      if (err instanceof WorkspaceGitError)
        throw ApplicationFailure.nonRetryable(secretScanner(secretRefs.map((r) => sh.resolveSecret(r))).mask(err.message), err.name);
      throw err;
    }
  }

  const api = {
    /**
     * Restores each cache into the job's private copy (empty on a miss) before its first
     * setup step, once per placement: a retry that finds it recorded leaves the copy as
     * setup left it.
     */
    async restoreCaches(jobId: string, placement: number | undefined, warm: WarmInput): Promise<void> {
      for (const cache of warm.caches ?? []) {
        const eventKey = `cache-restored:${tag(placement)}${cache.name}`;
        if (await sh.store.eventData(jobId, eventKey)) continue;
        const parts = parseKeyTemplate(cache.key);
        const hashes: string[] = [];
        for (const patterns of hashedPatterns(parts)) hashes.push(await hashFiles(jobId, warm.commit, pathspecs(patterns), warm.secretRefs ?? []));
        const key = renderKey(parts, hashes);
        const to = { cache: { jobId, name: cache.name } };
        let found = await sh.kept.restore({ hostQueue: hostQueue(), kind: 'cache', scope: warm.scope, name: cache.name }, key, cache.restoreKeys);
        if (!found) await sh.runner.copyVolume(to, null);
        else if (!(await restoreKept(jobId, to, found.id))) found = null;
        sh.metrics.cacheLookups.inc({ result: found ? (found.exact ? 'hit' : 'partial') : 'miss' });
        await sh.store.event(
          jobId,
          eventKey,
          found ? 'cache_hit' : 'cache_miss',
          found
            ? { name: cache.name, key, restored: found.key, exact: found.exact, bytes: found.bytes, placement: placement ?? 1 }
            : { name: cache.name, key, placement: placement ?? 1 },
        );
      }
    },

    /**
     * What setup's steps learn of the restores (`DRAFTSMAN_CACHE_<NAME>_HIT`), from what
     * was recorded: the same in a retried attempt as in the one that restored.
     */
    async lookups(jobId: string, placement: number | undefined, warm: WarmInput): Promise<Record<string, string>> {
      const env: Record<string, string> = {};
      for (const cache of warm.caches ?? []) {
        const restored = await sh.store.eventData(jobId, `cache-restored:${tag(placement)}${cache.name}`);
        Object.assign(env, cacheHitEnv(cache.name, restored?.exact === true ? 'exact' : restored?.restored ? 'partial' : 'miss'));
      }
      return env;
    },

    /**
     * Saves each cache the job's setup filled, under its key, after setup succeeded: a
     * cache restored from its own key is not saved again (the key names its contents).
     */
    async saveCaches(jobId: string, placement: number | undefined, warm: WarmInput): Promise<void> {
      for (const cache of warm.caches ?? []) {
        const restored = await sh.store.eventData(jobId, `cache-restored:${tag(placement)}${cache.name}`);
        if (!restored || restored.exact === true) continue;
        const savedKey = `cache-saved:${tag(placement)}${cache.name}`;
        if (await sh.store.eventData(jobId, savedKey)) continue;
        const key = String(restored.key);
        // A cache that holds a secret setup received would hand it to the scope's later jobs.
        const files = await secretFiles({ cache: { jobId, name: cache.name } }, warm.secretRefs ?? []);
        if (files.length > 0) {
          await sh.store.event(jobId, savedKey, 'cache_refused', {
            name: cache.name,
            key,
            why: "a file in the cache holds the value of one of the job's secrets",
            files,
          });
          continue;
        }
        const saved = await keep(jobId, { kind: 'cache', scope: warm.scope, name: cache.name, key, commit: '' }, { cache: { jobId, name: cache.name } });
        if (saved.committed) sh.metrics.cacheSavedBytes.inc(saved.bytes);
        await sh.store.event(
          jobId,
          savedKey,
          'cache_saved',
          saved.committed ? { name: cache.name, key, bytes: saved.bytes } : { name: cache.name, key, saved: false, why: 'another job saved this key first' },
        );
      }
    },

    /** Keeps the workspace after setup under the key of its setup (restoreWorkspace computed it). */
    async saveSnapshot(jobId: string, placement: number | undefined, warm: WarmInput): Promise<void> {
      if (!warm.snapshotKey) return;
      await keepWorkspace(jobId, placement, {
        after: 'setup',
        scope: warm.scope,
        key: warm.snapshotKey,
        commit: warm.commit ?? '',
        secretRefs: warm.secretRefs ?? [],
      });
    },

    /** Keeps the workspace after a loop step (under the job's id: for its forks alone), on the terms a setup's is kept. */
    async keepAfterStep(input: KeepWorkspaceInput): Promise<void> {
      await keepWorkspace(input.jobId, input.placement, {
        after: input.after,
        scope: input.scope,
        key: input.jobId,
        commit: input.commit,
        secretRefs: input.secretRefs,
      });
    },

    /**
     * Before the clone: the job's workspace from a kept one, if it starts from another
     * job's (`from`) or one was kept after the same setup (`snapshot`). Answers whether
     * it did, and the key a workspace kept after this setup goes under.
     */
    async restoreWorkspace(input: RestoreWorkspaceInput): Promise<RestoredWorkspace> {
      const { jobId, placement } = input;
      // The volume and the network holder are made while the kept workspace is looked up.
      const preparing = prepareJobWorkspace(sh, jobId, placement);
      preparing.catch(() => undefined);
      const eventKey = `setup-restored:${tag(placement)}workspace`;
      if (input.from) {
        await preparing;
        const after = input.from.after ?? 'setup';
        const parent = await sh.kept.keptBy(input.from.job, input.scope, keptName(after));
        const refuse = (why: string) => ApplicationFailure.nonRetryable(`from: ${why}`, FailureType.JobFailed);
        if (!parent) {
          throw refuse(
            `job ${input.from.job} kept no workspace after ${after} that this job may use (its spec kept none there, that step failed or was not reached, the workspace held a secret, it was evicted, or it belongs to another repository or principal)`,
          );
        }
        if (parent.commit && parent.commit !== input.from.commit)
          throw refuse(`job ${input.from.job} kept a workspace of commit ${parent.commit}, not of this job's ${input.from.commit}`);
        if (parent.hostQueue !== hostQueue())
          throw refuse(`the workspace job ${input.from.job} kept is on another host (${parent.hostQueue}) than the one this job was placed on`);
        if (!(await restoreKept(jobId, { workspace: jobId }, parent.id)))
          throw refuse(`the workspace job ${input.from.job} kept after ${after} was evicted or deleted while this job restored it`);
        await sh.store.event(jobId, eventKey, 'setup_restored', { from: input.from.job, key: parent.key, bytes: parent.bytes, placement: placement ?? 1 });
        return { restored: true };
      }
      if (!input.snapshot) {
        await preparing;
        return { restored: false };
      }
      const s = input.snapshot;
      const imageId = await sh.runner.imageId(s.image);
      const key = snapshotKey({ repo: s.repo, commit: s.commit, imageId, setup: s.setup, env: s.env, secretRefs: s.secretRefs, cloneVersion: CLONE_VERSION });
      const found = await sh.kept.restore({ hostQueue: hostQueue(), kind: 'snapshot', scope: input.scope, name: '' }, key, []);
      await preparing;
      const restored = found !== null && (await restoreKept(jobId, { workspace: jobId }, found.id));
      sh.metrics.snapshotLookups.inc({ result: restored ? 'hit' : 'miss' });
      if (!found || !restored) return { restored: false, snapshotKey: key };
      await sh.store.event(jobId, eventKey, 'setup_restored', { from: found.jobId, key, bytes: found.bytes, placement: placement ?? 1 });
      return { restored: true, snapshotKey: key };
    },
  };
  return {
    restoreCaches: (...a: Parameters<typeof api.restoreCaches>) => beating(sh, () => api.restoreCaches(...a)),
    saveCaches: (...a: Parameters<typeof api.saveCaches>) => beating(sh, () => api.saveCaches(...a)),
    lookups: api.lookups,
    saveSnapshot: (...a: Parameters<typeof api.saveSnapshot>) => beating(sh, () => api.saveSnapshot(...a)),
    keepAfterStep: (input: KeepWorkspaceInput) => beating(sh, () => api.keepAfterStep(input)),
    restoreWorkspace: (input: RestoreWorkspaceInput) => beating(sh, () => api.restoreWorkspace(input)),
  };
}
