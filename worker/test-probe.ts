/**
 * The test-only probe the chaos campaign drives (DRAFTSMAN_TEST_PROBE=1): a job whose
 * id ends in `-at-<boundary>` pauses the first time it reaches that boundary, prints
 * `[chaos-probe] <boundary> <job> <step>` so the campaign can inject its fault (a
 * cancel) in that window, and heartbeats meanwhile so that the cancel is delivered.
 */
import { Context } from '@temporalio/activity';
import { BOUNDARIES, type Boundary, type Probe } from '../activities/deps';

/** Long enough for a cancel sent on the announcement to reach the activity (heartbeats every 500 ms at most). */
const PAUSE_MS = 2_500;

export function chaosProbe(write: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Probe {
  const fired = new Set<string>();
  return async (boundary: Boundary, at) => {
    const wanted = BOUNDARIES.find((b) => at.jobId.endsWith(`-at-${b}`));
    if (wanted !== boundary || fired.has(at.jobId)) return;
    fired.add(at.jobId);
    write(`[chaos-probe] ${boundary} ${at.jobId} ${at.step ?? '-'}`);
    const ctx = Context.current();
    const until = Date.now() + PAUSE_MS;
    while (Date.now() < until) {
      ctx.heartbeat({ probe: boundary });
      await new Promise((r) => setTimeout(r, 100));
    }
  };
}
