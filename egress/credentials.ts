/**
 * The egress service's side of credentials: which of a job's credentials apply while a
 * step runs, the job's CA and what terminating TLS with it needs, the trust upstream
 * servers are verified with, and the counting of requests sent with a value.
 */
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { repoRule } from '../common/egress-policy';
import { CLONE_TOKEN_ENV, hostPort, type LiveCredential } from '../common/credentials';
import { JOB_CA_FILE, jobCaKeyPath } from '../common/egress-layout';
import { credentialPhase, type StepKind } from '../common/job';
import type { Logger } from '../common/logger';
import type { CredentialUse, EgressJobView, EgressStore } from '../db/egress-store';
import type { CredentialTls } from './intercept';
import { createJobCa, hostCert, type HostCert, type JobCa, loadJobCa } from './job-ca';

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

/**
 * For a job with credentials, its CA (made, or read back after the service's restart) and
 * what terminating TLS with it needs. The CA's certificate goes into the job's folder
 * before the service listens there, so that a step never looks for it in vain; its key,
 * root's alone, outside every folder a container mounts.
 */
export async function jobCredentialTls(opts: {
  socketDir: string;
  key: string;
  jobId: string;
  upstream: tls.SecureContext;
  resolveSecret?: (ref: string) => string;
}): Promise<CredentialTls> {
  const keyFile = jobCaKeyPath(opts.socketDir, opts.key);
  const certFile = path.join(opts.socketDir, opts.key, JOB_CA_FILE);
  let ca: JobCa;
  try {
    ca = await loadJobCa(fs.readFileSync(certFile, 'utf8'), fs.readFileSync(keyFile, 'utf8'));
  } catch {
    ca = await createJobCa(opts.jobId);
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
    upstream: opts.upstream,
    valueOf: (c) => {
      if (!opts.resolveSecret) throw new Error('the egress service has no secret store');
      return opts.resolveSecret(c.secret);
    },
  };
}

/** How often counted credential use is written (and when the job's listener closes). */
const USE_FLUSH_MS = 1_000;

/**
 * Requests sent with a credential, counted per variable and host and written at most once
 * a second (a job of many requests writes little), and when the job's listener closes.
 */
export class CredentialUses {
  private readonly uses = new Map<string, CredentialUse>();

  constructor(
    private readonly jobId: string,
    private readonly store: Pick<EgressStore, 'credentialUsed'>,
    private readonly log: Logger,
  ) {}

  count(c: LiveCredential, host: string, port: number): void {
    const hp = hostPort(host, port);
    const k = `${c.env} ${hp}`;
    const had = this.uses.get(k);
    if (had) had.requests++;
    else this.uses.set(k, { env: c.env, secret: c.secret, host: hp, requests: 1 });
    if (this.uses.size === 1 && !had) {
      setTimeout(
        () => void this.flush().catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'egress: recording credential use failed')),
        USE_FLUSH_MS,
      ).unref();
    }
  }

  async flush(): Promise<void> {
    if (this.uses.size === 0) return;
    const batch = [...this.uses.values()];
    this.uses.clear();
    await this.store.credentialUsed(this.jobId, batch);
  }
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
