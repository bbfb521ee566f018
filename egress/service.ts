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
import { CLONE_TOKEN_ENV, hostPort, type LiveCredential } from '../common/credentials';
import { credentialPhase, FINAL_STATUSES, jobSecretRefs, type StepKind } from '../common/job';
import { secretScanner } from '../common/secret-scan';
import { SecretStore } from '../common/secret-store';
import { type CredentialUse, type EgressJobView, EgressStore } from '../db/egress-store';
import { JOB_CA_FILE, JOB_FILE, jobCaKeyPath, SOCKET_NAME } from '../common/egress-layout';
import { jobPolicy, parseAllowEntry, type EgressPolicy, type OperatorEgress, type Resolver } from '../common/egress-policy';
import type { CredentialTls } from './intercept';
import { createJobCa, hostCert, type HostCert, type JobCa, loadJobCa } from './job-ca';
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

/**
 * The job's credentials whose placeholders its steps hold, each active in the phases of
 * the step running now; while the clone runs, its token too, bound to the repository's
 * host (git's Basic authorization) and to nothing after the clone.
 */
export function liveCredentials(view: Pick<EgressJobView, 'spec' | 'running' | 'placeholders'>): LiveCredential[] {
  const phase = view.running ? credentialPhase(view.running.kind as StepKind) : null;
  const live: LiveCredential[] = (view.spec?.credentials ?? []).flatMap((c) => {
    const placeholder = view.placeholders[c.env];
    return placeholder ? [{ ...c, placeholder, active: phase !== null && c.phases.includes(phase) }] : [];
  });
  const token = view.spec?.gitTokenSecret;
  const placeholder = view.placeholders[CLONE_TOKEN_ENV];
  const [rule] = view.running?.kind === 'clone' && token && placeholder && view.spec?.repo ? repoRule(view.spec.repo) : [];
  if (rule) {
    live.push({
      secret: token!,
      env: CLONE_TOKEN_ENV,
      placeholder: placeholder!,
      hosts: [hostPort(rule.host, rule.port)],
      header: 'authorization',
      format: '{value}',
      active: true,
    });
  }
  return live;
}

/** The repository's host and port: all the clone step may reach. */
function repoRule(repo: string) {
  try {
    const url = new URL(repo);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return [];
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    return parseAllowEntry(`${url.hostname}:${port}`);
  } catch {
    return [];
  }
}

interface Listener {
  jobId: string;
  server: http.Server;
  /** Requests sent with a credential and not yet recorded: `env host` -> use. */
  uses: Map<string, CredentialUse>;
}

/** How often counted credential use is written (and when the job's listener closes). */
const USE_FLUSH_MS = 1_000;

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
      if (!this.listeners.has(key)) await this.listen(key, jobId);
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
    const uses = new Map<string, CredentialUse>();
    const server = createEgressProxy({
      policy: async () => policyFor(await this.opts.store.view(jobId), this.opts.operator),
      credentialTls: await this.credentialTls(key, jobId),
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

  /**
   * For a job with credentials, its CA (made, or read back after a restart) and what
   * terminating TLS with it needs. The CA's certificate is written into the job's folder
   * before the service listens there, so a step never looks for it in vain.
   */
  private async credentialTls(key: string, jobId: string): Promise<CredentialTls | undefined> {
    const view = await this.opts.store.view(jobId);
    if (!view?.spec?.credentials?.length && !view?.spec?.gitTokenSecret) return undefined;
    const keyFile = jobCaKeyPath(this.opts.socketDir, key);
    const certFile = path.join(this.opts.socketDir, key, JOB_CA_FILE);
    let ca: JobCa;
    try {
      ca = await loadJobCa(fs.readFileSync(certFile, 'utf8'), fs.readFileSync(keyFile, 'utf8'));
    } catch {
      ca = await createJobCa(jobId);
      // Root's alone, outside every folder a container mounts.
      fs.mkdirSync(path.dirname(keyFile), { recursive: true, mode: 0o700 });
      fs.writeFileSync(keyFile, ca.keyPem, { mode: 0o600 });
      fs.writeFileSync(`${certFile}.tmp`, ca.certPem, { mode: 0o644 });
      fs.renameSync(`${certFile}.tmp`, certFile);
    }
    const certs = new Map<string, Promise<HostCert>>();
    return {
      hostCert: (host) => {
        let c = certs.get(host);
        if (!c) certs.set(host, (c = hostCert(ca, host)));
        return c;
      },
      upstream: this.opts.upstreamCa ?? tls.createSecureContext(),
      valueOf: (c) => {
        if (!this.opts.resolveSecret) throw new Error('the egress service has no secret store');
        return this.opts.resolveSecret(c.secret);
      },
    };
  }

  /** Stops listening for a job; at the job's end (its folder gone, not the service's stop) its CA's key goes too. */
  private async close(key: string, l: Listener, ended = false): Promise<void> {
    this.listeners.delete(key);
    l.server.closeAllConnections?.();
    await new Promise((r) => l.server.close(r));
    await this.flushUses(l.jobId, l.uses);
    if (ended) fs.rmSync(jobCaKeyPath(this.opts.socketDir, key), { force: true });
    this.opts.logger.info(
      { jobId: l.jobId },
      ended ? 'egress: the job ended, no longer listening' : 'egress: the service stops, no longer listening for the job',
    );
  }

  private async record(jobId: string, e: EgressEvent, log: Logger, uses: Map<string, CredentialUse>): Promise<void> {
    if (e.type === 'credential') return this.countUse(jobId, e, uses, log);
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

  /** Requests sent with a credential, counted here and written at most once a second (a job of many requests writes little). */
  private countUse(jobId: string, e: Extract<EgressEvent, { type: 'credential' }>, uses: Map<string, CredentialUse>, log: Logger): void {
    const host = `${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}`;
    const k = `${e.credential.env} ${host}`;
    const had = uses.get(k);
    if (had) had.requests++;
    else uses.set(k, { env: e.credential.env, secret: e.credential.secret, host, requests: 1 });
    if (uses.size === 1 && !had) {
      setTimeout(
        () => void this.flushUses(jobId, uses).catch((err: unknown) => log.error({ err: (err as Error).message }, 'egress: recording credential use failed')),
        USE_FLUSH_MS,
      ).unref();
    }
  }

  private async flushUses(jobId: string, uses: Map<string, CredentialUse>): Promise<void> {
    if (uses.size === 0) return;
    const batch = [...uses.values()];
    uses.clear();
    await this.opts.store.credentialUsed(jobId, batch);
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

/** Where Debian-like hosts keep the system's CAs; elsewhere Node's own copy of Mozilla's list is used. */
const SYSTEM_CA_FILE = '/etc/ssl/certs/ca-certificates.crt';

/**
 * What the proxy trusts when it connects upstream for a credential: the system's CAs, and
 * the operator's bundle (DRAFTSMAN_EGRESS_CA_BUNDLE) for private hosts. A bundle that
 * cannot be read, or holds no certificate, stops the service at start, said plainly.
 */
export function upstreamTrust(bundle: string | undefined): tls.SecureContext {
  const system = fs.existsSync(SYSTEM_CA_FILE) ? [fs.readFileSync(SYSTEM_CA_FILE, 'utf8')] : [...tls.rootCertificates];
  if (!bundle) return tls.createSecureContext({ ca: system });
  let extra: string;
  try {
    extra = fs.readFileSync(bundle, 'utf8');
  } catch (err) {
    throw new Error(`DRAFTSMAN_EGRESS_CA_BUNDLE: cannot read ${bundle}: ${(err as Error).message}`, { cause: err });
  }
  if (!extra.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`DRAFTSMAN_EGRESS_CA_BUNDLE: ${bundle} holds no PEM certificate`);
  return tls.createSecureContext({ ca: [...system, extra] });
}
