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
      const host = `${rule.host.includes(':') ? `[${rule.host}]` : rule.host}:${rule.port}`;
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
    return { secret: c.secret, hosts: [...new Set(hosts)], header, format: c.format ?? '{value}', env: c.env, phases };
  });
}
