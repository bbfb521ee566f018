/** Pure mapping from database rows to the job view served by the API. */
import { currentWait } from '../common/hosts';
import type { JobStatus, JobView, Ledger, StepEndReason, StepKind, StepOutcome, StepStatus, StepView } from '../common/job';

export interface JobRow {
  id: string;
  status: string;
  repo: string | null;
  commit: string | null;
  principal: string | null;
  labels?: Record<string, string> | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  loop_iterations: number | null;
  loop_converged: boolean | null;
  has_loop: boolean;
  error: string | null;
  waiting: string | null;
  /** Its place in the line for a host, when it waits for one. */
  queue_position?: number | null;
  /** The job's placement: 1, or more once it was moved after its host was lost. */
  placement?: number;
  /** The group (best-of-N) the job is an attempt of. */
  group_id?: string | null;
  patch: { bytes: number; truncated: boolean } | null;
}

export interface StepRow {
  job_id: string;
  kind: string;
  index: number;
  seq: number;
  status: string;
  exit_code: number | null;
  oom_killed: boolean | null;
  started_at: Date | null;
  finished_at: Date | null;
  log_bytes: string | number;
  log_truncated: boolean;
  reason?: string | null;
  /** What its processes used (the kernel's accounting), when measured. */
  cpu_ms?: string | number | null;
  peak_memory_bytes?: string | number | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function stepView(row: StepRow): StepView {
  return {
    kind: row.kind as StepKind,
    index: row.index,
    status: row.status as StepStatus,
    exitCode: row.exit_code,
    startedAt: iso(row.started_at),
    finishedAt: iso(row.finished_at),
    durationMs: row.started_at && row.finished_at ? row.finished_at.getTime() - row.started_at.getTime() : null,
    oomKilled: row.oom_killed ?? false,
    logBytes: Number(row.log_bytes),
    logTruncated: row.log_truncated,
    ...(row.reason ? { reason: row.reason as StepEndReason } : {}),
    ...(row.cpu_ms != null ? { cpuSeconds: Number(row.cpu_ms) / 1000 } : {}),
    ...(row.peak_memory_bytes != null ? { peakMemoryBytes: Number(row.peak_memory_bytes) } : {}),
  };
}

/** A finished step's row as its outcome. */
export function stepOutcome(row: StepRow): StepOutcome {
  return stepView(row) as StepOutcome;
}

export function jobView(row: JobRow, steps: StepRow[]): JobView {
  const view: JobView = {
    id: row.id,
    status: row.status as JobStatus,
    repo: row.repo,
    commit: row.commit,
    createdAt: row.created_at.toISOString(),
    startedAt: iso(row.started_at),
    finishedAt: iso(row.finished_at),
    steps: [...steps].sort((a, b) => a.seq - b.seq).map(stepView),
    loop: row.has_loop ? { iterations: row.loop_iterations ?? 0, converged: row.loop_converged ?? false } : null,
  };
  if (row.principal) view.principal = row.principal;
  if (row.labels && Object.keys(row.labels).length) view.labels = row.labels;
  if (row.error) view.error = row.error;
  if (row.waiting && row.status === 'queued') view.waiting = currentWait(row.waiting, row.queue_position ?? null);
  if (row.queue_position && row.status === 'queued') view.queuePosition = row.queue_position;
  if (row.patch) view.patch = row.patch;
  if (row.placement && row.placement > 1) view.placement = row.placement;
  if (row.group_id) view.group = row.group_id;
  return view;
}

/** A job's steps summed (every placement), and its largest workspace measured. */
export interface StepTotals {
  steps: string | number;
  cpu_ms: string | number | null;
  peak: string | number | null;
  workspace: string | number | null;
}

const num = (v: string | number | null) => (v === null ? null : Number(v));

/** The job's ledger from its view (times, egress) and its steps' totals. Pure. */
export function ledgerOf(view: Pick<JobView, 'startedAt' | 'finishedAt' | 'egress'>, t: StepTotals, now = Date.now()): Ledger {
  const cpuMs = num(t.cpu_ms);
  return {
    wallSeconds: view.startedAt ? Math.max(0, (view.finishedAt ? Date.parse(view.finishedAt) : now) - Date.parse(view.startedAt)) / 1000 : null,
    cpuSeconds: cpuMs === null ? null : cpuMs / 1000,
    peakMemoryBytes: num(t.peak),
    steps: Number(t.steps),
    egressBytesIn: view.egress?.bytesIn ?? 0,
    egressBytesOut: view.egress?.bytesOut ?? 0,
    egressConnections: view.egress?.connections ?? 0,
    workspaceBytes: num(t.workspace),
  };
}
