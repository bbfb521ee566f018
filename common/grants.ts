/**
 * Which secret references each principal may name (DRAFTSMAN_SECRET_GRANTS). Pure:
 * the API checks a spec with it before anything starts, and the worker again when it
 * accepts a job (jobs started with the Temporal SDK never pass the API).
 *
 * Grammar: entries separated by commas or newlines, each `PRINCIPAL=REF+REF...`. A
 * principal ending in `*` matches every principal with that prefix (`sdk:*`, `*`); a
 * reference `*` is every reference. A principal's grants are the union of the entries
 * that match it. Lines starting with # are comments.
 */
/** A secret reference: a file name in the secrets folder, or the suffix of DRAFTSMAN_SECRET_<REF>. */
export const SECRET_REF = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

export interface SecretGrant {
  /** An exact principal, or a prefix when `prefix` is set. */
  principal: string;
  prefix: boolean;
  /** References granted; `*` grants all. */
  refs: readonly string[];
}

/** `null`: no grants configured, every principal may name every reference (one team's deployment). */
export type SecretGrants = readonly SecretGrant[] | null;

const PRINCIPAL = /^[A-Za-z0-9._:@-]*\*?$/;
const isRef = (r: string) => r === '*' || SECRET_REF.test(r);

export function parseGrants(text: string | undefined, source = 'DRAFTSMAN_SECRET_GRANTS'): SecretGrants {
  if (text === undefined || text.trim() === '') return null;
  return text
    .split(/[\n,]/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((entry, i) => {
      const eq = entry.lastIndexOf('=');
      const principal = eq > 0 ? entry.slice(0, eq).trim() : '';
      const refs =
        eq > 0
          ? entry
              .slice(eq + 1)
              .split('+')
              .map((r) => r.trim())
          : [];
      if (!principal || !PRINCIPAL.test(principal)) {
        throw new Error(`${source}: entry ${i + 1} must be PRINCIPAL=REF+REF (a principal is a token name or sdk:IDENTITY, * only at its end)`);
      }
      const bad = refs.find((r) => !isRef(r));
      if (bad !== undefined || refs.length === 0) {
        throw new Error(`${source}: entry ${i + 1} (${principal}): ${JSON.stringify(bad ?? '')} is not a secret reference or *`);
      }
      const prefix = principal.endsWith('*');
      return { principal: prefix ? principal.slice(0, -1) : principal, prefix, refs };
    });
}

/** Whether `principal` may name `ref`. */
export function isGranted(grants: SecretGrants, principal: string, ref: string): boolean {
  if (grants === null) return true;
  return grants.some((g) => (g.prefix ? principal.startsWith(g.principal) : principal === g.principal) && (g.refs.includes('*') || g.refs.includes(ref)));
}

/**
 * The first of a spec's references (`[field, ref]` pairs, the field being the spec's
 * JSON path) that `principal` may not name, or null when every one is granted.
 */
export function firstUngranted(
  grants: SecretGrants,
  principal: string,
  refs: readonly (readonly [field: string, ref: string])[],
): { field: string; ref: string } | null {
  for (const [field, ref] of refs) if (!isGranted(grants, principal, ref)) return { field, ref };
  return null;
}

/** The secret references of a spec, with the field that names each. */
export function specSecretRefs(spec: {
  secrets: Record<string, string>;
  publishSecrets?: Record<string, string>;
  gitTokenSecret: string | null;
  credentials?: { secret: string }[];
}): [field: string, ref: string][] {
  const refs: [string, string][] = [
    ...Object.entries(spec.secrets).map(([name, ref]): [string, string] => [`secrets.${name}`, ref]),
    ...Object.entries(spec.publishSecrets ?? {}).map(([name, ref]): [string, string] => [`publishSecrets.${name}`, ref]),
    ...(spec.credentials ?? []).map((c, i): [string, string] => [`credentials.${i}.secret`, c.secret]),
  ];
  if (spec.gitTokenSecret) refs.push(['gitTokenSecret', spec.gitTokenSecret]);
  return refs;
}

/** The refusal's message: names the reference, the principal and where grants are set. */
export const ungrantedMessage = (u: { field: string; ref: string }, principal: string) =>
  `${u.field}: the secret ${JSON.stringify(u.ref)} is not granted to ${principal} (DRAFTSMAN_SECRET_GRANTS)`;
