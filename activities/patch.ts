import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { ContainerLostError } from '../common/errors';
import type { StepRef } from '../runner/runner';
import { PATCH_SCRIPT } from './clone';
import { withholdFiles } from './patch-filter';
import { secretFinder } from './secrets';
import type { Shared } from './deps';

/** Runs of the patch script before a non-zero exit is the job's failure. */
const PATCH_ATTEMPTS = 3;

/** The activity that keeps the workspace's changes after the loop. */
export function createPatchActivities(sh: Shared) {
  return {
    /**
     * Stores `git diff` of the workspace against the checked-out commit (after
     * the loop), capped in size, before the workspace is removed.
     */
    async capturePatch(input: { jobId: string; image: string; timeoutSeconds: number; maskRefs?: string[] }): Promise<{ bytes: number; truncated: boolean }> {
      const ref: StepRef = { jobId: input.jobId, kind: 'patch', index: 0 };
      // Stored by an attempt that was lost before it reported: not read again.
      const stored = await sh.store.getPatch(input.jobId);
      if (stored) return { bytes: stored.data.length, truncated: stored.truncated };
      try {
        await sh.runner.start({ ...ref, image: input.image, command: PATCH_SCRIPT, env: {}, timeoutSeconds: input.timeoutSeconds });
      } catch (err) {
        // Reading the diff changes nothing, so a container the engine lost is replaced.
        if (err instanceof ContainerLostError) await sh.runner.remove(ref);
        throw err;
      }
      const ctx = Context.current();
      const beat = setInterval(() => ctx.heartbeat(), sh.heartbeatMs);
      try {
        const exit = await sh.runner.wait(ref, ctx.cancellationSignal);
        if (exit.exitCode !== 0) {
          await sh.runner.remove(ref);
          // An engine restarted under it stops it too: read again, a few times, before
          // taking the failure for the workspace's.
          const message = `reading the patch failed with exit code ${exit.exitCode}`;
          if (ctx.info.attempt < PATCH_ATTEMPTS) throw ApplicationFailure.retryable(message, 'PatchError');
          throw ApplicationFailure.nonRetryable(message, 'PatchError');
        }
        const out = await sh.runner.stdout(ref, sh.config.DRAFTSMAN_PATCH_MAX_BYTES);
        const { truncated } = out;
        // A file that holds a secret, or a new secret file, is left out whole (and said).
        const { kept: data, withheld } = withholdFiles(out.data, secretFinder((input.maskRefs ?? []).map((r) => sh.resolveSecret(r))));
        for (const w of withheld) await sh.store.event(input.jobId, `patch_withheld:${w.file}`, 'patch_file_withheld', { ...w });
        await sh.store.savePatch(input.jobId, data, truncated);
        await sh.store.event(input.jobId, 'patch', 'patch_stored', { bytes: data.length, truncated, withheld: withheld.length });
        // Removed once stored: a retry after a failure above reads the same container's
        // output rather than run it again (the job's end removes it in any case).
        await sh.runner.remove(ref);
        return { bytes: data.length, truncated };
      } finally {
        clearInterval(beat);
      }
    },
  };
}
