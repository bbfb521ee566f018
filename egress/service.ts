/**
 * The egress service: one per host, beside (not inside) the workers, so that a worker
 * crash or upgrade never cuts a running step's way out. It listens on one Unix socket
 * per live job, in the directory the runner made for the job (./layout.ts), and
 * decides each connection by the job's policy read from PostgreSQL at that moment:
 * the clone step may reach only the repository's host; the other steps what the
 * job's spec allows. A directory appearing means a new job; its removal, the job's end.
 * On start it listens again for every directory there (a restart loses no job).
 */
import { promises as dns } from 'node:dns';
import fs from 'node:fs';
import type http from 'node:http';
import tls from 'node:tls';
import path from 'node:path';
import type { Pool } from 'pg';
import { type Config, operatorEgress } from '../common/config';
import { deploymentId } from '../common/deployment';
import type { Logger } from '../common/logger';
import type { Metrics } from '../common/metrics';
import { FINAL_STATUSES, jobSecretRefs } from '../common/job';
import { secretScanner } from '../common/secret-scan';
import { SecretStore } from '../common/secret-store';
import { type EgressJobView, EgressStore } from '../db/egress-store';
import { JOB_FILE, jobCaKeyPath, SOCKET_NAME } from '../common/egress-layout';
import { jobPolicy, repoRule, type EgressPolicy, type OperatorEgress, type Resolver } from '../common/egress-policy';
import { CredentialUses, jobCredentialTls, liveCredentials, upstreamTrust } from './credentials';
import { createEgressProxy, type Dialer, type EgressEvent, type JobEgress } from './proxy';

export interface EgressServiceOptions {
  socketDir: string;
  /** Only jobs of this deployment are served (the directory may be shared). */
  deployment: string;
  store: Pick<EgressStore, 'view' | 'denied' | 'add' | 'credentialUsed'>;
  /** The CAs upstream servers are verified with, where the proxy terminates TLS for a credential. */
  upstreamCa?: tls.SecureContext;
  operator: OperatorEgress;
  logger: Logger;
  /** Counts refusals and traffic for /metrics. */
  metrics?: Metrics;
  resolve?: Resolver;
  dial?: Dialer;
  /** How often the directory is listed again, in case a change was not signalled. */
  rescanMs?: number;
  /**
   * The value of a secret reference (the workers' secret store): a refused host is a
   * string a step chose, and is masked before it is recorded. Without it, or when a
   * reference cannot be read, refused hosts of jobs with secrets are not recorded by name.
   */
  resolveSecret?: (ref: string) => string;
}

/** The most refusals of one job recorded as events, each target once per step (the counter counts them all). */
export const MAX_DENIED_EVENTS = 100;

/** The system resolver, every address, in the order it gives them. */
export const systemResolver: Resolver = async (host) => (await dns.lookup(host, { all: true, verbatim: true })).map((a) => a.address);

const NOTHING: EgressPolicy = { allow: [], exceptions: [] };

/** The policy of a job at this moment: what its running step may reach, and its credentials. */
export function policyFor(view: EgressJobView | null, operator: OperatorEgress): JobEgress {
  if (!view || FINAL_STATUSES.includes(view.status) || !view.spec) return { ...NOTHING, exceptions: operator.exceptions };
  const credentials = liveCredentials(view);
  if (view.running?.kind === 'clone' && view.spec.repo) return { allow: repoRule(view.spec.repo), exceptions: operator.exceptions, credentials };
  return { ...jobPolicy(view.spec.egress?.allow, operator), credentials };
}

interface Listener {
  jobId: string;
  server: http.Server;
  /** Requests sent with a credential and not yet recorded. */
  uses: CredentialUses;
}

export class EgressService {
  private readonly listeners = new Map<string, Listener>();
  private watcher: fs.FSWatcher | null = null;
  private rescanTimer: NodeJS.Timeout | null = null;
  private scanning: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly opts: EgressServiceOptions) {}

  /** Listens for every job directory there is, then follows the directory. */
  async start(): Promise<void> {
    fs.mkdirSync(this.opts.socketDir, { recursive: true, mode: 0o755 });
    this.watcher = fs.watch(this.opts.socketDir, () => this.rescan());
    this.watcher.on('error', (err) => this.opts.logger.warn({ err: err.message }, 'watching the egress socket folder failed; rescans continue'));
    this.rescanTimer = setInterval(() => this.rescan(), this.opts.rescanMs ?? 2_000);
    void this.rescan();
    await this.scanning;
  }

  /** Jobs listened for now (their ids). */
  jobs(): string[] {
    return [...this.listeners.values()].map((l) => l.jobId);
  }

  /** Serialised, so that two signals for one change do not open two listeners. */
  rescan(): Promise<void> {
    this.scanning = this.scanning
      .then(() => this.scan())
      .catch((err: unknown) => this.opts.logger.error({ err: (err as Error).message }, 'egress rescan failed'));
    return this.scanning;
  }

  private async scan(): Promise<void> {
    if (this.stopped) return;
    const present = new Map<string, string>();
    for (const key of fs.readdirSync(this.opts.socketDir)) {
      // A folder being made (the runner renames it into place with its job file inside).
      if (key.startsWith('.')) continue;
      const jobId = this.readJob(key);
      if (jobId) present.set(key, jobId);
    }
    for (const [key, l] of this.listeners) {
      if (!present.has(key)) await this.close(key, l, true);
    }
    for (const [key, jobId] of present) {
      if (this.listeners.has(key)) continue;
      // One job's failure (its view not read while the database restarts) is tried again at the next scan, the others served now.
      await this.listen(key, jobId).catch((err: unknown) =>
        this.opts.logger.error({ jobId, err: (err as Error).message }, 'egress: listening for the job failed; tried again at the next scan'),
      );
    }
    // CA keys of jobs whose folder went while the service was down.
    const keys = path.dirname(jobCaKeyPath(this.opts.socketDir, 'x'));
    for (const file of fs.existsSync(keys) ? fs.readdirSync(keys) : []) {
      if (!present.has(file.replace(/\.key$/, ''))) fs.rmSync(path.join(keys, file), { force: true });
    }
  }

  private readJob(key: string): string | null {
    try {
      const parsed = JSON.parse(fs.readFileSync(path.join(this.opts.socketDir, key, JOB_FILE), 'utf8')) as { jobId?: unknown; deployment?: unknown };
      return typeof parsed.jobId === 'string' && parsed.deployment === this.opts.deployment ? parsed.jobId : null;
    } catch {
      return null; // not (yet) a job's directory
    }
  }

  private async listen(key: string, jobId: string): Promise<void> {
    const socket = path.join(this.opts.socketDir, key, SOCKET_NAME);
    const log = this.opts.logger.child({ jobId });
    const uses = new CredentialUses(jobId, this.opts.store, log);
    const view = await this.opts.store.view(jobId);
    const server = createEgressProxy({
      policy: async () => policyFor(await this.opts.store.view(jobId), this.opts.operator),
      // A job with credentials (or a clone token): its CA, written into its folder before the service listens there.
      credentialTls:
        view?.spec?.credentials?.length || view?.spec?.gitTokenSecret
          ? await jobCredentialTls({
              socketDir: this.opts.socketDir,
              key,
              jobId,
              upstream: this.opts.upstreamCa ?? tls.createSecureContext(),
              resolveSecret: this.opts.resolveSecret,
            })
          : undefined,
      resolve: this.opts.resolve ?? systemResolver,
      dial: this.opts.dial,
      onEvent: (e) => void this.record(jobId, e, log, uses),
    });
    // A socket left by a crashed service would make listen fail with EADDRINUSE.
    fs.rmSync(socket, { force: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socket, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // The holder runs as the step user; the directory is this job's alone.
    fs.chmodSync(socket, 0o666);
    this.listeners.set(key, { jobId, server, uses });
    log.info({ socket }, 'egress: listening for the job');
  }

  /** Stops listening for a job; at the job's end (its folder gone, not the service's stop) its CA's key goes too. */
  private async close(key: string, l: Listener, ended = false): Promise<void> {
    this.listeners.delete(key);
    l.server.closeAllConnections?.();
    await new Promise((r) => l.server.close(r));
    await l.uses.flush();
    if (ended) fs.rmSync(jobCaKeyPath(this.opts.socketDir, key), { force: true });
    this.opts.logger.info(
      { jobId: l.jobId },
      ended ? 'egress: the job ended, no longer listening' : 'egress: the service stops, no longer listening for the job',
    );
  }

  private async record(jobId: string, e: EgressEvent, log: Logger, uses: CredentialUses): Promise<void> {
    if (e.type === 'credential') return uses.count(e.credential, e.host, e.port);
    const m = this.opts.metrics;
    if (m && e.type === 'denied') m.egressConnections.inc({ outcome: 'denied' });
    if (m && e.type !== 'denied') {
      m.egressConnections.inc({ outcome: 'allowed' });
      m.egressBytes.inc({ direction: 'out' }, e.bytesOut);
      m.egressBytes.inc({ direction: 'in' }, e.bytesIn);
    }
    try {
      if (e.type === 'denied') {
        const view = await this.opts.store.view(jobId);
        const step = view?.running ? `${view.running.kind}-${view.running.index}` : null;
        const host = this.shown(view, e.host, 253);
        // The detail names a header the step chose: checked and bounded like a host.
        const detail = e.detail === undefined ? {} : { detail: this.shown(view, e.detail, 300) };
        log.warn({ host, port: e.port, step, reason: e.reason, ...detail }, 'egress refused');
        await this.opts.store.denied(jobId, { step, host, port: e.port, reason: e.reason, ...detail }, MAX_DENIED_EVENTS);
      } else {
        await this.opts.store.add(jobId, { connections: 1, denied: 0, bytesIn: e.bytesIn, bytesOut: e.bytesOut });
      }
    } catch (err) {
      log.error({ err: (err as Error).message }, 'egress: recording a connection failed');
    }
  }

  /** A text a step chose (a refused host, a header's name), as it may be recorded: bounded, with any of the job's secret values in it masked. */
  private shown(view: EgressJobView | null, text: string, max: number): string {
    const spec = view?.spec;
    const refs = jobSecretRefs(spec ?? {});
    const bounded = text.slice(0, max);
    if (refs.length === 0) return bounded;
    try {
      if (!this.opts.resolveSecret) throw new Error('no secret store');
      return secretScanner(refs.map((r) => this.opts.resolveSecret!(r))).mask(bounded);
    } catch {
      // Not checked, not shown.
      return "[not recorded: the egress service cannot read the job's secrets to check it]";
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.close();
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    await this.scanning;
    for (const [key, l] of [...this.listeners]) await this.close(key, l);
  }
}

/** The egress service of a configuration (the process's own, a test's, the chaos stack's), started. */
export async function startEgressService(config: Config, pool: Pool, logger: Logger, metrics?: Metrics): Promise<EgressService> {
  const secrets = new SecretStore(config.DRAFTSMAN_SECRETS_DIR);
  const service = new EgressService({
    metrics,
    upstreamCa: upstreamTrust(config.DRAFTSMAN_EGRESS_CA_BUNDLE),
    socketDir: config.DRAFTSMAN_EGRESS_SOCKET_DIR!,
    deployment: deploymentId(config),
    store: new EgressStore(pool),
    operator: operatorEgress(config),
    logger,
    resolveSecret: (ref) => secrets.resolve(ref),
  });
  await service.start();
  return service;
}
