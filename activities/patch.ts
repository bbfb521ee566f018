import { randomBytes } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { ContainerLostError } from '../common/errors';
import { CHECKOUT_SCRIPT, PATCH_SCRIPT } from '../common/trusted-git';
import type { StepRef, StepRequest } from '../runner/runner';
import { withholdFiles } from './patch-filter';
import { secretScanner } from '../common/secret-scan';
import type { Shared } from './deps';

/** Runs of one of Draftsman's own steps before a non-zero exit is the job's failure. */
const PATCH_ATTEMPTS = 3;
/** Files withheld from a patch that are named in an event each (the patch_stored event counts them all): a step cannot flood the trail. */
const MAX_WITHHELD_EVENTS = 50;
/** The exit code of Draftsman's git when the workspace's objects do not hold the commit: the same on every run. */
const WORKSPACE_GIT_EXIT = 3;

/** The activities of Draftsman's own steps on the workspace after the loop: the patch, and the checkout publish runs on. */
export function createPatchActivities(sh: Shared) {
  /** The job's commit: sent by the workflow, else (jobs started before it was) read from the job's spec. */
  async function commitOf(jobId: string, commit: string | undefined): Promise<string> {
    const c = commit ?? (await sh.store.getSpec(jobId))?.commit;
    if (!c) throw ApplicationFailure.nonRetryable(`job ${jobId} has no accepted spec to read its commit from`, 'PatchError');
    return c;
  }

  /**
   * Runs one of Draftsman's steps to its end and hands its exit to `done` (which reads
   * what it needs of the container), then removes it. A non-zero exit is read again a
   * few times (an engine restarted under it stops it too) before it is the job's
   * failure; Draftsman's git saying the workspace's objects are spoiled is at once.
   */
  async function ownStep<T>(request: StepRequest, what: string, maskRefs: string[], done: (ref: StepRef) => Promise<T>): Promise<T> {
    const ref: StepRef = { jobId: request.jobId, kind: request.kind, index: request.index };
    try {
      await sh.runner.start(request);
    } catch (err) {
      // Reading changes nothing (and a checkout starts over), so a container the engine lost is replaced.
      if (err instanceof ContainerLostError) await sh.runner.remove(ref);
      throw err;
    }
    const ctx = Context.current();
    const beat = setInterval(() => ctx.heartbeat(), sh.heartbeatMs);
    try {
      const exit = await sh.runner.wait(ref, ctx.cancellationSignal);
      if (exit.exitCode !== 0) {
        // Git's own words may quote what it read: masked like every string that came from a step.
        const said = secretScanner(maskRefs.map((r) => sh.resolveSecret(r))).mask(await lastError(ref).catch(() => ''));
        await sh.runner.remove(ref);
        const message = `${what} failed with exit code ${exit.exitCode}${said ? `: ${said}` : ''}`;
        if (exit.exitCode !== WORKSPACE_GIT_EXIT && ctx.info.attempt < PATCH_ATTEMPTS) throw ApplicationFailure.retryable(message, 'PatchError');
        throw ApplicationFailure.nonRetryable(message, 'PatchError');
      }
      const result = await done(ref);
      // Removed once recorded: a retry after a failure above reads the same container's
      // output rather than run it again (the job's end removes it in any case).
      await sh.runner.remove(ref);
      return result;
    } finally {
      clearInterval(beat);
    }
  }

  /** What Draftsman's git said on stderr (its own `draftsman:` lines only: they name no file content). */
  async function lastError(ref: StepRef): Promise<string> {
    const lines: string[] = [];
    await sh.runner.followLogs(
      ref,
      (batch) => void lines.push(...batch.filter((l) => l.stream === 'stderr' && l.text.startsWith('draftsman: ')).map((l) => l.text)),
      { skipLines: 0 },
    );
    return (lines.at(-1) ?? '').slice(0, 300);
  }

  return {
    /**
     * Stores the workspace's diff against the job's commit (after the loop), computed by
     * Draftsman's git (common/trusted-git.ts), capped in size, before the workspace is
     * removed. Files that hold a secret, or text that is no file's diff, are left out.
     */
    async capturePatch(input: {
      jobId: string;
      image: string;
      timeoutSeconds: number;
      maskRefs?: string[];
      commit?: string;
    }): Promise<{ bytes: number; truncated: boolean }> {
      // Stored by an attempt that was lost before it reported: not read again.
      const stored = await sh.store.getPatch(input.jobId);
      if (stored) return { bytes: stored.data.length, truncated: stored.truncated };
      const commit = await commitOf(input.jobId, input.commit);
      const request: StepRequest = {
        jobId: input.jobId,
        kind: 'patch',
        index: 0,
        image: input.image,
        command: PATCH_SCRIPT,
        env: { DRAFTSMAN_COMMIT: commit },
        timeoutSeconds: input.timeoutSeconds,
      };
      return ownStep(request, 'reading the patch', input.maskRefs ?? [], async (ref) => {
        const out = await sh.runner.stdout(ref, sh.config.DRAFTSMAN_PATCH_MAX_BYTES);
        const { truncated } = out;
        const scanner = secretScanner((input.maskRefs ?? []).map((r) => sh.resolveSecret(r)));
        const { kept: data, withheld } = withholdFiles(out.data, (text) => scanner.holds(text), truncated);
        // A file's name is the step's to choose: it can carry a secret too.
        for (const w of withheld.slice(0, MAX_WITHHELD_EVENTS)) {
          const file = scanner.mask(w.file).slice(0, 1024);
          await sh.store.event(input.jobId, `patch_withheld:${file}`, 'patch_file_withheld', { ...w, file });
        }
        await sh.store.savePatch(input.jobId, data, truncated);
        await sh.store.event(input.jobId, 'patch', 'patch_stored', { bytes: data.length, truncated, withheld: withheld.length });
        return { bytes: data.length, truncated };
      });
    },

    /**
     * Before the first publish step: the workspace made a clean checkout of the job's
     * commit with the stored patch applied (what validation and the approval gate saw),
     * so that nothing the loop wrote meets the publish secrets. A patch that was cut at
     * the cap is not published: what was approved would not be what is pushed.
     */
    async preparePublish(input: {
      jobId: string;
      image: string;
      timeoutSeconds: number;
      commit: string;
      placement?: number;
      withPatch: boolean;
      maskRefs?: string[];
    }): Promise<{ patchBytes: number }> {
      const done = await sh.store.eventData(input.jobId, `publish-checkout:${input.placement ?? 1}`);
      if (done) return { patchBytes: Number(done.patchBytes ?? 0) };
      const stored = input.withPatch ? await sh.store.getPatch(input.jobId) : null;
      if (stored?.truncated) {
        throw ApplicationFailure.nonRetryable(
          `the stored patch was cut at DRAFTSMAN_PATCH_MAX_BYTES (${sh.config.DRAFTSMAN_PATCH_MAX_BYTES} bytes): publish runs on the approved patch only, whole`,
          'PublishRefused',
        );
      }
      // A name no step can have guessed: the file is the patch Draftsman stored, not one the loop left.
      const name = `.draftsman-approved-${randomBytes(12).toString('hex')}.patch`;
      const files = stored && stored.data.length > 0 ? [{ name, data: stored.data }] : [];
      const request: StepRequest = {
        jobId: input.jobId,
        kind: 'checkout',
        index: 0,
        ...(input.placement && input.placement > 1 ? { placement: input.placement } : {}),
        image: input.image,
        command: CHECKOUT_SCRIPT,
        env: { DRAFTSMAN_COMMIT: input.commit, ...(files.length ? { DRAFTSMAN_PATCH_FILE: name } : {}) },
        timeoutSeconds: input.timeoutSeconds,
        files,
      };
      // A retry that finds the container made by an earlier attempt re-attaches to it; one removed starts over (the checkout empties the workspace first).
      return ownStep(request, 'preparing the workspace for publish', input.maskRefs ?? [], async () => {
        const patchBytes = stored?.data.length ?? 0;
        await sh.store.event(input.jobId, `publish-checkout:${input.placement ?? 1}`, 'publish_checkout', { commit: input.commit, patchBytes });
        return { patchBytes };
      });
    },
  };
}
