import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The Prometheus series of a process. One instance per process, passed to the
 * activities and the API; served at GET /metrics by both.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly jobsSubmitted = new Counter({
    name: 'draftsman_jobs_submitted_total',
    help: 'Jobs accepted by the API',
    registers: [this.registry],
  });
  readonly stepCpuSeconds = new Counter({
    name: 'draftsman_step_cpu_seconds_total',
    help: "CPU time of step containers, user and system (the engine's cgroup accounting), by step kind",
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly stepPeakMemory = new Histogram({
    name: 'draftsman_step_peak_memory_bytes',
    help: 'The memory peak of each step container',
    buckets: [16, 64, 256, 1024, 4096].map((mb) => mb * 2 ** 20),
    registers: [this.registry],
  });
  readonly budgetsExceeded = new Counter({
    name: 'draftsman_budgets_exceeded_total',
    help: "Steps stopped at their job's budget, by the budget crossed (cpuSeconds, wallSeconds, egressBytes)",
    labelNames: ['budget'] as const,
    registers: [this.registry],
  });
  readonly jobsFinished = new Counter({
    name: 'draftsman_jobs_finished_total',
    help: 'Jobs that ended, by final status',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly hostsLost = new Counter({
    name: 'draftsman_host_lost_total',
    help: 'Jobs whose host was lost under them, by whether they moved to another host (true) or failed (false)',
    labelNames: ['moved'] as const,
    registers: [this.registry],
  });
  readonly cacheLookups = new Counter({
    name: 'draftsman_cache_lookups_total',
    help: 'Dependency caches restored before setup: hit (the key), partial (a restore key), miss',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly cacheSavedBytes = new Counter({
    name: 'draftsman_cache_saved_bytes_total',
    help: 'Bytes of dependency caches saved after setup',
    registers: [this.registry],
  });
  readonly snapshotLookups = new Counter({
    name: 'draftsman_snapshot_lookups_total',
    help: 'Jobs with snapshot.after=setup that found a workspace kept after the same setup (hit) or not (miss)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly keptBytes = new Gauge({
    name: 'draftsman_kept_bytes',
    help: "Bytes of this host's saved caches and kept workspaces, as of the janitor's last sweep",
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly keptEvicted = new Counter({
    name: 'draftsman_kept_evicted_total',
    help: 'Saved caches and kept workspaces the janitor removed: over the budget (budget), no longer recorded (orphan)',
    labelNames: ['why'] as const,
    registers: [this.registry],
  });
  readonly approvals = new Counter({
    name: 'draftsman_approvals_total',
    help: 'Approval gates: jobs that began waiting (event waiting) and decisions (approved, rejected; by timeout or a person)',
    labelNames: ['event', 'by'] as const,
    registers: [this.registry],
  });
  readonly stepDuration = new Histogram({
    name: 'draftsman_step_duration_seconds',
    help: 'Run time of steps (container start to exit), by step kind',
    labelNames: ['kind'] as const,
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
    registers: [this.registry],
  });
  readonly containerStart = new Histogram({
    name: 'draftsman_container_start_seconds',
    help: 'Time to create and start a step container',
    buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5],
    registers: [this.registry],
  });
  readonly jobPickup = new Histogram({
    name: 'draftsman_job_pickup_seconds',
    help: 'Time from a job being submitted to its first container started',
    buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly logBytesStored = new Counter({
    name: 'draftsman_log_bytes_stored_total',
    help: 'Bytes of step output stored',
    registers: [this.registry],
  });
  readonly logsTruncated = new Counter({
    name: 'draftsman_log_truncated_steps_total',
    help: 'Steps whose stored output was cut at the size cap',
    registers: [this.registry],
  });
  readonly runningContainers = new Gauge({
    name: 'draftsman_running_containers',
    help: 'Step containers this worker is following now',
    registers: [this.registry],
  });
  readonly orphansReaped = new Counter({
    name: 'draftsman_orphans_reaped_total',
    help: 'Containers and volumes the janitor removed or stopped, by type and action',
    labelNames: ['type', 'action'] as const,
    registers: [this.registry],
  });
  readonly httpRequests = new Counter({
    name: 'draftsman_http_requests_total',
    help: 'API requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });

  readonly egressConnections = new Counter({
    name: 'draftsman_egress_connections_total',
    help: 'Connections steps asked the egress proxy for, by outcome (allowed, denied)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly egressBytes = new Counter({
    name: 'draftsman_egress_bytes_total',
    help: 'Bytes through the egress proxy, by direction (out: from steps, in: to steps)',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });

  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'draftsman_' });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
