/** The CLI's exit codes (../shared contract): what a script tells from `draftsman`'s status alone. Pure. */
import type { JobStatus } from '../common/job';

export const EXIT = {
  succeeded: 0,
  failed: 1,
  usage: 2,
  cancelled: 3,
  timedOut: 4,
  rejected: 5,
  unreachable: 6,
  refused: 7,
  apiError: 8,
} as const;

/** The exit code of a job that ended with `status` (a job still running is not an end). */
export function exitForJob(status: JobStatus): number {
  switch (status) {
    case 'succeeded':
      return EXIT.succeeded;
    case 'cancelled':
      return EXIT.cancelled;
    case 'timed_out':
      return EXIT.timedOut;
    case 'rejected':
      return EXIT.rejected;
    default:
      return EXIT.failed;
  }
}

/** The exit code of an API answer that was not a success (status 0: no answer at all). */
export function exitForApiError(status: number): number {
  if (status === 0) return EXIT.unreachable;
  if (status === 401 || status === 403) return EXIT.refused;
  return EXIT.apiError;
}
