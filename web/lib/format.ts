/** Pure mapping for the dashboard's pages: filters to queries, times to words. */
import type { components } from '../../client/api-types';
import { FINAL_STATUSES } from '../../common/job';

export type JobView = components['schemas']['JobView'];
export type StepView = components['schemas']['StepView'];
export type AuditEvent = components['schemas']['AuditEvent'];
export type GroupView = components['schemas']['GroupView'];

/** An attempt's validation outcome in words. */
export const validationText = (validated: boolean | null): string => (validated === null ? 'not finished' : validated ? 'passed' : 'failed');

/** The jobs list's filters, as the page's address and the API's query carry them. */
export interface JobFilter {
  status?: string;
  repo?: string;
  label?: string;
  q?: string;
  cursor?: string;
}

const FILTER_KEYS = ['status', 'repo', 'label', 'q', 'cursor'] as const;

export function filterFromSearch(search: string): JobFilter {
  const params = new URLSearchParams(search);
  const filter: JobFilter = {};
  for (const k of FILTER_KEYS) {
    const v = params.get(k)?.trim();
    if (v) filter[k] = v;
  }
  return filter;
}

/** The filter as a query string (with its `?`, or empty), keys in a fixed order. */
export function filterSearch(filter: JobFilter, extra: Record<string, string> = {}): string {
  const params = new URLSearchParams();
  for (const k of FILTER_KEYS) if (filter[k]) params.set(k, filter[k]!);
  for (const [k, v] of Object.entries(extra)) params.set(k, v);
  const s = params.toString();
  return s ? `?${s}` : '';
}

export function humanDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  return `${Math.floor(h / 24)} d`;
}

/** How long ago `iso` was, in words ("12 s ago"). */
export const age = (iso: string, now: number): string => `${humanDuration(Math.max(0, now - Date.parse(iso)))} ago`;

/** A job's or step's run time: until it finished, or until now while it runs; null before it starts. */
export function runTime(item: { startedAt: string | null; finishedAt: string | null }, now: number): number | null {
  if (!item.startedAt) return null;
  return (item.finishedAt ? Date.parse(item.finishedAt) : now) - Date.parse(item.startedAt);
}

export const stepName = (s: Pick<StepView, 'kind' | 'index'>): string => `${s.kind}-${s.index}`;

/** What a step's row says of its end: its exit, or why it has none. */
export function stepOutcome(s: StepView): string {
  if (s.status === 'running') return 'running';
  if (s.oomKilled) return 'out of memory';
  if (s.reason === 'container_lost') return 'container lost';
  if (s.reason === 'workspace_full') return 'workspace full';
  if (s.status === 'timed_out') return 'timed out';
  if (s.status === 'cancelled') return 'cancelled';
  return s.exitCode === null ? s.status : `exit ${s.exitCode}`;
}

/** The phase a step belongs to, and its iteration for loop steps. */
export function stepPhase(s: Pick<StepView, 'kind' | 'index'>): string {
  return s.kind === 'loop' || s.kind === 'until' ? `${s.kind} · iteration ${s.index}` : `${s.kind} ${s.index + 1}`;
}

/** Whether a job has ended: the one list of final statuses (common/job.ts), shared with the API and the CLI. */
export const isFinal = (status: string): boolean => (FINAL_STATUSES as readonly string[]).includes(status);

/** An event's data in one line, for the events table. */
export function eventSummary(data: Record<string, unknown>): string {
  return Object.entries(data)
    .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' · ');
}
