/**
 * The test-only probe the chaos campaign drives (testing/worker-main.ts): a job whose
 * id ends in `-at-<boundary>` (or `-at-<boundary>-<step>`) pauses the first time it
 * reaches that boundary (of that step), prints
 * `[chaos-probe] <boundary> <job> <step>` so the campaign can inject its fault (a
 * cancel) in that window, and heartbeats meanwhile so that the cancel is delivered.
 */
import { Context } from '@temporalio/activity';
import { BOUNDARIES, type Boundary, type Probe } from './faults';

/** Long enough for a cancel sent on the announcement to reach the activity (heartbeats every 500 ms at most). */
const PAUSE_MS = 2_500;

export function chaosProbe(write: (line: string) => void = (l) => process.stdout.write(`${l}\n`), pauseMs = PAUSE_MS): Probe {
  const fired = new Set<string>();
  return async (boundary: Boundary, at) => {
    // `-at-<boundary>` or `-at-<boundary>-<kind>-<index>` (that step's boundary only).
    const suffix = new RegExp(`-at-(${BOUNDARIES.join('|')})(?:-([a-z]+-\\d+))?$`).exec(at.jobId);
    if (!suffix || suffix[1] !== boundary || (suffix[2] && suffix[2] !== at.step) || fired.has(at.jobId)) return;
    fired.add(at.jobId);
    write(`[chaos-probe] ${boundary} ${at.jobId} ${at.step ?? '-'}`);
    const ctx = Context.current();
    const until = Date.now() + pauseMs;
    while (Date.now() < until) {
      ctx.heartbeat({ probe: boundary });
      await new Promise((r) => setTimeout(r, 100));
    }
  };
}
