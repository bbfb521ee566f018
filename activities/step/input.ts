import type { StepKind } from '../../common/job';
import type { WorkspaceCache } from '../../runner/runner';

/** What the workflow asks of one step: its identity in the job, its container, its budget. */
export interface StepInput {
  jobId: string;
  /** Env name -> secret reference: values are resolved here, in the activity, and masked in the output. */
  secretEnv?: Record<string, string>;
  /** Every secret reference of the job, whose values are masked in this step's output. */
  maskRefs?: string[];
  /** Position of the step in the job, for ordering the audit trail. */
  seq: number;
  kind: StepKind;
  index: number;
  /** The job's placement (1 when absent: jobs placed before placements counted): part of the step's identity. */
  placement?: number;
  image: string;
  command: string;
  env: Record<string, string>;
  timeoutSeconds: number;
  /** The job's caches this step mounts writable (setup steps of a job with caches). */
  caches?: string[];
  /** The job's caches with a path in the workspace (every step after the clone). */
  workspaceCaches?: WorkspaceCache[];
}
