/**
 * The step store and the step log store in memory, with PostgreSQL's answers: what the
 * phases of a step are tested on without a database. Its own tests run the same table of
 * claims, records and log writes as the PostgreSQL store's (db/step-store.contract.ts).
 */
import type { StepKind, StepOutcome } from '../common/job';
import type { LogChunkWrite, LogProgress, StepLogStore } from './log-store';
import {
  placementField,
  type RecordedOutcome,
  type Spent,
  StaleAttemptError,
  type StepClaim,
  stepEventKey,
  type StepRecord,
  type StepStore,
} from './step-store';
import { type StepRow, stepOutcome } from './view';

interface Row extends StepRow {
  placement: number;
  attempt: number;
  launched: boolean;
  engineInterrupted: boolean;
}

/** An audit event as the store writes it: once per key. */
export interface MemoryEvent {
  jobId: string;
  key: string;
  type: string;
  data: Record<string, unknown>;
}

const rowKey = (jobId: string, placement: number, kind: string, index: number) => `${jobId}/${placement}/${kind}-${index}`;

export class MemoryStepStore implements StepStore, StepLogStore {
  private readonly rows = new Map<string, Row>();
  private readonly chunks = new Map<string, Map<number, LogChunkWrite>>();
  readonly events: MemoryEvent[] = [];

  private event(e: MemoryEvent): void {
    if (!this.events.some((x) => x.jobId === e.jobId && x.key === e.key)) this.events.push(e);
  }

  private row(jobId: string, kind: string, index: number, placement = 1): Row | undefined {
    return this.rows.get(rowKey(jobId, placement, kind, index));
  }

  async claim(jobId: string, step: StepRecord, attempt: number): Promise<StepClaim> {
    const placement = step.placement ?? 1;
    this.event({
      jobId,
      key: stepEventKey('started', step.kind, step.index, placement),
      type: 'step_started',
      data: { kind: step.kind, index: step.index, ...placementField(placement) },
    });
    const r = this.row(jobId, step.kind, step.index, placement);
    if (!r) {
      this.rows.set(rowKey(jobId, placement, step.kind, step.index), {
        job_id: jobId,
        kind: step.kind,
        index: step.index,
        seq: step.seq,
        status: 'running',
        exit_code: null,
        oom_killed: null,
        started_at: new Date(),
        finished_at: null,
        log_bytes: 0,
        log_truncated: false,
        placement,
        attempt,
        launched: false,
        engineInterrupted: false,
      });
      return { state: 'claimed', launched: false, engineInterrupted: false };
    }
    if (r.status === 'running' && r.attempt <= attempt) {
      r.attempt = attempt;
      return { state: 'claimed', launched: r.launched, engineInterrupted: r.engineInterrupted };
    }
    if (r.status !== 'running') return { state: 'finished', outcome: stepOutcome(r) };
    return { state: 'stale', attempt: r.attempt };
  }

  async launched(jobId: string, kind: StepKind, index: number, placement = 1): Promise<void> {
    const r = this.row(jobId, kind, index, placement);
    if (r) r.launched = true;
  }

  async engineInterrupted(jobId: string, kind: StepKind, index: number, attempt: number, interrupted: boolean, placement = 1): Promise<void> {
    const r = this.row(jobId, kind, index, placement);
    if (r && r.attempt === attempt && r.status === 'running') r.engineInterrupted = interrupted;
  }

  async record(jobId: string, o: RecordedOutcome, attempt?: number): Promise<'recorded' | 'finished' | 'stale'> {
    const placement = o.placement ?? 1;
    const r = this.row(jobId, o.kind, o.index, placement);
    if (r && !(r.status === 'running' && (attempt === undefined || r.attempt <= attempt))) return r.status === 'running' ? 'stale' : 'finished';
    const now = new Date();
    const ended = {
      status: o.status,
      exit_code: o.exitCode,
      oom_killed: o.oomKilled ?? false,
      started_at: o.startedAt ? new Date(o.startedAt) : (r?.started_at ?? now),
      finished_at: o.finishedAt ? new Date(o.finishedAt) : now,
      log_bytes: o.logBytes ?? 0,
      log_truncated: o.logTruncated ?? false,
      reason: o.reason ?? null,
      cpu_ms: o.cpuSeconds == null ? null : Math.round(o.cpuSeconds * 1000),
      peak_memory_bytes: o.peakMemoryBytes ?? null,
    };
    if (r) Object.assign(r, ended);
    else {
      const fresh = { job_id: jobId, kind: o.kind, index: o.index, seq: o.seq, placement, attempt: 0, launched: false, engineInterrupted: false, ...ended };
      this.rows.set(rowKey(jobId, placement, o.kind, o.index), fresh);
    }
    this.event({
      jobId,
      key: stepEventKey('finished', o.kind, o.index, placement),
      type: 'step_finished',
      data: {
        kind: o.kind,
        index: o.index,
        ...placementField(placement),
        status: o.status,
        exitCode: o.exitCode,
        oomKilled: o.oomKilled ?? false,
        durationMs: o.startedAt && o.finishedAt ? Date.parse(o.finishedAt) - Date.parse(o.startedAt) : null,
        ...(o.reason ? { reason: o.reason } : {}),
      },
    });
    return 'recorded';
  }

  async finished(jobId: string, kind: StepKind, index: number, placement = 1): Promise<StepOutcome | null> {
    const r = this.row(jobId, kind, index, placement);
    return r && r.status !== 'running' ? stepOutcome(r) : null;
  }

  async running(jobId: string): Promise<{ kind: StepKind; index: number; seq: number; placement: number }[]> {
    return [...this.rows.values()]
      .filter((r) => r.job_id === jobId && r.status === 'running')
      .sort((a, b) => a.seq - b.seq)
      .map((r) => ({ kind: r.kind as StepKind, index: r.index, seq: r.seq, placement: r.placement }));
  }

  private readonly credentialPlaceholders = new Map<string, string>();

  async placeholders(jobId: string, envs: readonly string[], make: () => string): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const env of envs) {
      const key = `${jobId}\0${env}`;
      if (!this.credentialPlaceholders.has(key)) this.credentialPlaceholders.set(key, make());
      out[env] = this.credentialPlaceholders.get(key)!;
    }
    return out;
  }

  /** The largest workspace size noted per job, and the egress bytes a test says a job sent. */
  readonly workspaceBytes = new Map<string, number>();
  readonly egressBytes = new Map<string, number>();
  readonly startedAt = new Map<string, string>();

  async noteWorkspaceBytes(jobId: string, bytes: number): Promise<void> {
    this.workspaceBytes.set(jobId, Math.max(this.workspaceBytes.get(jobId) ?? 0, bytes));
  }

  async spent(jobId: string): Promise<Spent> {
    let ms = 0;
    for (const r of this.rows.values()) if (r.job_id === jobId && r.status !== 'running') ms += Number(r.cpu_ms ?? 0);
    return { cpuSeconds: ms / 1000, egressBytes: this.egressBytes.get(jobId) ?? 0, startedAt: this.startedAt.get(jobId) ?? null };
  }

  /** Which attempt holds a step, and whether its command was launched: what a test asserts on. */
  holder(jobId: string, kind: StepKind, index: number, placement = 1): { attempt: number; launched: boolean; engineInterrupted: boolean } | null {
    const r = this.row(jobId, kind, index, placement);
    return r ? { attempt: r.attempt, launched: r.launched, engineInterrupted: r.engineInterrupted } : null;
  }

  async progress(jobId: string, kind: StepKind, index: number, placement = 1): Promise<LogProgress> {
    const stored = [...(this.chunks.get(rowKey(jobId, placement, kind, index))?.values() ?? [])];
    return {
      nextChunk: stored.length ? Math.max(...stored.map((c) => c.chunk)) + 1 : 0,
      lines: stored.reduce((n, c) => n + c.lines.length, 0),
      bytes: stored.reduce((n, c) => n + c.bytes, 0),
      truncated: stored.some((c) => c.truncated),
    };
  }

  async otherStepsBytes(jobId: string, except: { kind: StepKind; index: number; placement?: number }): Promise<number> {
    const own = rowKey(jobId, except.placement ?? 1, except.kind, except.index);
    let bytes = 0;
    for (const [key, chunks] of this.chunks) {
      if (key === own || !key.startsWith(`${jobId}/`)) continue;
      for (const c of chunks.values()) bytes += c.bytes;
    }
    return bytes;
  }

  async append(jobId: string, chunk: LogChunkWrite, attempt?: number): Promise<void> {
    const placement = chunk.placement ?? 1;
    const r = this.row(jobId, chunk.kind, chunk.index, placement);
    if (attempt !== undefined && r && r.attempt !== attempt) throw new StaleAttemptError(jobId, `${chunk.kind}-${chunk.index}`, attempt);
    if (attempt !== undefined && !r) return;
    const key = rowKey(jobId, placement, chunk.kind, chunk.index);
    const chunks = this.chunks.get(key) ?? new Map<number, LogChunkWrite>();
    this.chunks.set(key, chunks);
    if (!chunks.has(chunk.chunk)) chunks.set(chunk.chunk, { ...chunk, placement });
  }

  /** A step's stored lines in order: what a test reads back. */
  lines(jobId: string, kind: StepKind, index: number, placement = 1): string[] {
    const chunks = [...(this.chunks.get(rowKey(jobId, placement, kind, index))?.values() ?? [])].sort((a, b) => a.chunk - b.chunk);
    return chunks.flatMap((c) => c.lines.map((l) => l.x));
  }
}
