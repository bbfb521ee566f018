/** Usage summed over jobs: what `GET /v1/usage` answers, from the same rows as each job's ledger. */
import type { Pool } from 'pg';

export interface UsageFilter {
  /** One principal's jobs; all when absent. */
  principal?: string;
  label?: { key: string; value: string };
  /** Jobs created in [from, to). */
  from: string;
  to: string;
}

/** The ledger's figures summed over jobs. */
export interface UsageTotals {
  jobs: number;
  wallSeconds: number;
  cpuSeconds: number;
  /** The largest memory peak of one step among them; null when none was measured. */
  peakMemoryBytes: number | null;
  steps: number;
  egressBytesIn: number;
  egressBytesOut: number;
  egressConnections: number;
}

interface Row {
  principal: string | null;
  jobs: string;
  wall: string | null;
  cpu_ms: string | null;
  peak: string | null;
  steps: string | null;
  bytes_in: string | null;
  bytes_out: string | null;
  connections: string | null;
}

const totals = (r: Row): UsageTotals => ({
  jobs: Number(r.jobs),
  wallSeconds: Number(r.wall ?? 0),
  cpuSeconds: Number(r.cpu_ms ?? 0) / 1000,
  peakMemoryBytes: r.peak === null ? null : Number(r.peak),
  steps: Number(r.steps ?? 0),
  egressBytesIn: Number(r.bytes_in ?? 0),
  egressBytesOut: Number(r.bytes_out ?? 0),
  egressConnections: Number(r.connections ?? 0),
});

/** The totals of the jobs the filter selects, each principal's and all of them together. */
export async function usage(pool: Pool, f: UsageFilter): Promise<{ total: UsageTotals; byPrincipal: (UsageTotals & { principal: string })[] }> {
  const { rows } = await pool.query<Row>(
    `WITH picked AS (
       SELECT j.id, coalesce(j.principal, '') AS principal,
              extract(epoch FROM (coalesce(j.finished_at, now()) - j.started_at)) AS wall
         FROM jobs j
        WHERE j.created_at >= $1 AND j.created_at < $2
          AND ($3::text IS NULL OR j.principal = $3)
          AND ($4::jsonb IS NULL OR j.spec -> 'labels' @> $4::jsonb)
     ), per_job AS (
       SELECT p.principal, p.wall, s.cpu_ms, s.peak, s.steps, e.bytes_in, e.bytes_out, e.connections
         FROM picked p
         LEFT JOIN (SELECT job_id, sum(cpu_ms) AS cpu_ms, max(peak_memory_bytes) AS peak, count(*) AS steps
                      FROM steps WHERE job_id IN (SELECT id FROM picked) GROUP BY job_id) s ON s.job_id = p.id
         LEFT JOIN job_egress e ON e.job_id = p.id
     )
     SELECT principal, count(*) AS jobs, sum(wall) AS wall, sum(cpu_ms) AS cpu_ms, max(peak) AS peak, sum(steps) AS steps,
            sum(bytes_in) AS bytes_in, sum(bytes_out) AS bytes_out, sum(connections) AS connections
       FROM per_job GROUP BY ROLLUP (principal) ORDER BY principal NULLS FIRST`,
    [f.from, f.to, f.principal ?? null, f.label ? JSON.stringify({ [f.label.key]: f.label.value }) : null],
  );
  // ROLLUP's grand total is the row without a principal; with no job it is the only one, counting none.
  const all = rows.find((r) => r.principal === null);
  return {
    total: all
      ? totals(all)
      : totals({ principal: null, jobs: '0', wall: null, cpu_ms: null, peak: null, steps: null, bytes_in: null, bytes_out: null, connections: null }),
    byPrincipal: rows.filter((r) => r.principal !== null).map((r) => ({ principal: r.principal!, ...totals(r) })),
  };
}
