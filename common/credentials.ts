/**
 * Credentials (a secret the egress proxy adds to requests to its hosts): how a spec's
 * entries resolve, and which of a job's credentials a request to a host gets. Pure, so
 * that the API, the worker and the egress service decide alike.
 */
import type { z } from 'zod';
import { type AllowRule, EgressPolicyError, parseAllowEntry, ruleMatches } from './egress-policy';
import { InvalidJobSpecError } from './errors';
import { type Credential, CREDENTIAL_PHASES, type CredentialPhase } from './job';
import type { jobSpecSchema } from './spec-schema';

/**
 * A spec's credentials with their defaults, checked against the rest of the spec: each
 * variable is the step's own (no clash with env, secrets or another credential), each
 * host is one the job may reach, a host's header carries one credential, and each
 * phase is one the job has.
 */
export function resolveCredentials(spec: z.output<typeof jobSpecSchema>, allow: AllowRule[]): Credential[] {
  const taken = new Set([...Object.keys(spec.env ?? {}), ...Object.keys(spec.secrets ?? {}), ...Object.keys(spec.publishSecrets ?? {})]);
  const bound = new Map<string, number>();
  const has: Record<CredentialPhase, boolean> = {
    setup: !!spec.setup?.length,
    loop: !!spec.loop,
    validate: !!spec.validate?.length,
    publish: !!spec.publish?.length,
  };
  return (spec.credentials ?? []).map((c, i) => {
    const at = `credentials.${i}`;
    if (taken.has(c.env)) throw new InvalidJobSpecError(`${at}.env: ${c.env} is also set in env, secrets or another credential`, `${at}.env`);
    taken.add(c.env);
    const header = c.header.toLowerCase();
    const hosts = c.hosts.map((entry, j) => {
      let rule: AllowRule;
      try {
        [rule] = parseAllowEntry(entry) as [AllowRule];
      } catch (err) {
        if (!(err instanceof EgressPolicyError)) throw err;
        throw new InvalidJobSpecError(`${at}.hosts.${j}: ${err.message}`, `${at}.hosts.${j}`);
      }
      if (rule.wildcard) throw new InvalidJobSpecError(`${at}.hosts.${j}: a credential is bound to hosts by name, not by wildcard`, `${at}.hosts.${j}`);
      const host = hostPort(rule.host, rule.port);
      if (!allow.some((r) => ruleMatches(r, rule.host, rule.port))) {
        throw new InvalidJobSpecError(`${at}.hosts.${j}: ${host} is not in the job's egress allow list (egress.allow)`, `${at}.hosts.${j}`);
      }
      const other = bound.get(`${host} ${header}`);
      if (other !== undefined && other !== i) {
        throw new InvalidJobSpecError(`${at}.hosts.${j}: ${host} already gets credentials.${other} in its ${header} header`, `${at}.hosts.${j}`);
      }
      bound.set(`${host} ${header}`, i);
      return host;
    });
    const phases = c.phases ? [...new Set(c.phases)] : CREDENTIAL_PHASES.filter((p) => has[p]);
    const missing = phases.find((p) => !has[p]);
    if (missing) throw new InvalidJobSpecError(`${at}.phases: the spec has no ${missing} ${missing === 'loop' ? '' : 'steps '}to give it to`, `${at}.phases`);
    if (phases.length === 0) throw new InvalidJobSpecError(`${at}: the spec has no steps to give it to`, at);
    if (c.git && header !== 'authorization') throw new InvalidJobSpecError(`${at}.header: git sends its credential in Authorization`, `${at}.header`);
    if (c.git) {
      const clash = Object.keys(spec.env ?? {}).find((n) => n.startsWith('GIT_CONFIG_'));
      if (clash) throw new InvalidJobSpecError(`${at}.git: env.${clash} would be replaced by the credential helper's configuration`, `${at}.git`);
    }
    return {
      secret: c.secret,
      hosts: [...new Set(hosts)],
      header,
      format: c.format ?? '{value}',
      env: c.env,
      phases,
      ...(c.git ? { git: { username: c.git.username ?? 'x-access-token' } } : {}),
    };
  });
}

/** The variable the clone's credential helper reads its token from: the token's placeholder when the egress proxy adds it. */
export const CLONE_TOKEN_ENV = 'DRAFTSMAN_GIT_TOKEN';

/** A credential of a running job as the egress proxy applies it. */
export interface LiveCredential {
  secret: string;
  env: string;
  /** What the job's steps hold instead of the value (random, the job's own). */
  placeholder: string;
  hosts: string[];
  header: string;
  format: string;
  /** Whether the step running now is of one of its phases. */
  active: boolean;
}

/** A new placeholder: recognisable, and long enough that no text holds it by chance. */
export function newPlaceholder(random: (bytes: number) => Buffer): string {
  return `draftsman-credential-${random(16).toString('hex')}`;
}

/** `host:port` as a credential names it (an IPv6 address in brackets). */
export function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The job's credentials bound to a host (`host` canonical, as the policy decided it). */
export function boundTo(credentials: readonly LiveCredential[], host: string, port: number): LiveCredential[] {
  const hp = hostPort(host, port);
  return credentials.filter((c) => c.hosts.includes(hp));
}

/** The first of the job's placeholders a text holds, or null. */
export function placeholderIn(credentials: readonly LiveCredential[], text: string): LiveCredential | null {
  if (!text.includes('draftsman-credential-')) return null;
  return credentials.find((c) => text.includes(c.placeholder)) ?? null;
}

const BASIC = /^Basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i;

/** What an HTTP Basic authorization carries (`user:password`), or null for any other header value. */
export function basicCredentials(value: string): string | null {
  const m = BASIC.exec(value);
  return m ? Buffer.from(m[1]!, 'base64').toString('latin1') : null;
}

/** The first placeholder a header value holds, as written or inside Basic authorization (as git sends it). */
function placeholderInHeader(credentials: readonly LiveCredential[], value: string): LiveCredential | null {
  return placeholderIn(credentials, value) ?? placeholderIn(credentials, basicCredentials(value) ?? '');
}

/** The header's new value: `format` with the value, or, inside Basic authorization, the password replaced by the value. */
function withValue(c: LiveCredential, headerValue: string, secret: string): string {
  const basic = basicCredentials(headerValue);
  if (basic !== null && basic.includes(c.placeholder)) {
    return `Basic ${Buffer.from(basic.split(c.placeholder).join(secret), 'latin1').toString('base64')}`;
  }
  return c.format.replace('{value}', () => secret);
}

/**
 * What a step with git credentials gets: git's credential helper, configured through the
 * environment (GIT_CONFIG_COUNT, git 2.31 and later), answering for each bound host with
 * the user name and the placeholder, read from the credential's variable when git asks.
 */
export function gitCredentialEnv(credentials: readonly { env: string; git?: { username: string; hosts: string[] } }[]): Record<string, string> {
  const entries: [string, string][] = [];
  for (const c of credentials) {
    if (!c.git) continue;
    for (const hp of c.git.hosts) {
      const url = `https://${hp.endsWith(':443') ? hp.slice(0, -4) : hp}`;
      // An empty helper first: helpers configured before (the image's) do not answer for this host.
      entries.push([`credential.${url}.helper`, '']);
      entries.push([`credential.${url}.helper`, `!f() { test "$1" = get && printf 'username=%s\\npassword=%s\\n' '${c.git.username}' "$${c.env}"; }; f`]);
    }
  }
  const env: Record<string, string> = entries.length ? { GIT_CONFIG_COUNT: String(entries.length) } : {};
  entries.forEach(([k, v], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = k;
    env[`GIT_CONFIG_VALUE_${i}`] = v;
  });
  return env;
}

export type CredentialCheck = { ok: true; headers: [name: string, value: string][]; used: LiveCredential[] } | { ok: false; why: string };

/**
 * A request's headers as they go upstream, or why it is refused. A placeholder is
 * swapped for its value only in its own header, to a host it is bound to, over the
 * proxy's TLS and in its phases; a placeholder anywhere else (the URL, another header,
 * another host, plain http) refuses the request: the step is sending its credential
 * where it was not meant to go.
 */
export function applyCredentials(
  credentials: readonly LiveCredential[],
  target: { host: string; port: number; tls: boolean },
  url: string,
  headers: readonly (readonly [name: string, value: string])[],
  valueOf: (c: LiveCredential) => string,
): CredentialCheck {
  const where = hostPort(target.host, target.port);
  const inUrl = placeholderIn(credentials, url);
  if (inUrl) return { ok: false, why: `the placeholder of ${inUrl.env} is in the URL of a request to ${where}` };
  const bound = target.tls ? boundTo(credentials, target.host, target.port) : [];
  const used: LiveCredential[] = [];
  const out: [string, string][] = [];
  for (const [name, value] of headers) {
    const inName = placeholderIn(credentials, name);
    if (inName) return { ok: false, why: `the placeholder of ${inName.env} is in a header's name, in a request to ${where}` };
    const c = placeholderInHeader(credentials, value);
    if (!c) {
      out.push([name, value]);
      continue;
    }
    if (!bound.includes(c) || name.toLowerCase() !== c.header) {
      const why = !target.tls && c.hosts.includes(where) ? 'over plain http' : `in the ${name.toLowerCase()} header`;
      return { ok: false, why: `the placeholder of ${c.env} was sent to ${where} ${why}, where it is not bound` };
    }
    if (!c.active) return { ok: false, why: `the placeholder of ${c.env} was sent outside the phases it is given to` };
    const secret = valueOf(c);
    // A value that would break the header apart is never written into one.
    // eslint-disable-next-line no-control-regex
    if (/[\r\n\u0000]/.test(secret)) return { ok: false, why: `the value of ${c.env}'s secret holds a line break, which no header may` };
    out.push([name, withValue(c, value, secret)]);
    if (!used.includes(c)) used.push(c);
  }
  return { ok: true, headers: out, used };
}
