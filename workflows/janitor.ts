import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';

const { sweep } = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: { maximumAttempts: 3 },
});

/** One janitor pass, started by the janitor schedule (or by hand to clean up now). */
export async function janitorWorkflow(): Promise<{ removed: string[]; stopped: string[] }> {
  return sweep();
}
