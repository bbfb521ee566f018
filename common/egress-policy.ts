/**
 * The egress policy: which host:port a step may reach through the proxy, and which
 * addresses it may never reach whatever its name says. Pure apart from the resolver it
 * is given, so that every refusal is shown by a unit test with a stub resolver, never
 * by a packet.
 *
 * Grammar of an allow entry: `host`, `host:port`, `*.domain`, `*.domain:port`, or a
 * preset name the operator defined. No port means 443. `*.x.org` matches subdomains of
 * x.org, not x.org itself. Names are compared lower case, without a trailing dot.
 */
import ipaddr from 'ipaddr.js';

export class EgressPolicyError extends Error {
  override readonly name = 'EgressPolicyError';
  constructor(
    message: string,
    /** The entry the message is about, for the API's `field`. */
    readonly entry: string,
  ) {
    super(message);
  }
}

/** One parsed allow entry. */
export interface AllowRule {
  /** Lower case, no trailing dot; for a wildcard, the domain after `*.`. */
  host: string;
  wildcard: boolean;
  port: number;
}

/** An exact host:port the operator allows even where the address rules refuse it (test fixtures on loopback). */
export interface OperatorException {
  host: string;
  port: number;
}

export interface EgressPolicy {
  /** What the job may reach (its spec's entries, or the operator's default list). */
  allow: AllowRule[];
  /** Operator exceptions to the address rules. */
  exceptions: OperatorException[];
}

/** Resolves a name to every address it has. Given, so that tests resolve with a stub. */
export type Resolver = (host: string) => Promise<string[]>;

export type EgressDecision =
  | { allowed: true; host: string; port: number; /** The exact address that was checked: the one to connect to. */ address: string }
  | { allowed: false; host: string; port: number; reason: string };

const DEFAULT_PORT = 443;
/** A DNS label: letters, digits, hyphens inside, at most 63 characters. */
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** `Host.` and `HOST` name the same host; brackets around an IPv6 literal are not part of it. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/**
 * The address a host string denotes when it is an IP literal in any notation a
 * resolver or URL parser accepts (`127.1`, `0x7f000001`, `2130706433`, `0177.0.0.1`,
 * `::ffff:127.0.0.1`), else null.
 */
export function ipLiteral(host: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  const h = normalizeHost(host);
  if (!ipaddr.isValid(h)) return null;
  return ipaddr.parse(h);
}

/**
 * Why an address may not be reached, or null for a public unicast address. Everything
 * that is not plain global unicast is refused: loopback, private, link-local (and the
 * cloud metadata address in it), shared address space, unique-local, NAT64, 6to4,
 * Teredo, multicast, unspecified, reserved. An IPv4-mapped IPv6 address is judged by
 * the IPv4 address it carries.
 */
export function forbiddenRange(address: string): string | null {
  const h = normalizeHost(address);
  if (!ipaddr.isValid(h)) return 'not an IP address';
  let ip = ipaddr.parse(h);
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address();
  // ::/96 (IPv4-compatible, deprecated): the library calls it unicast; a stack may still route it to IPv4.
  const range = ip.range();
  if (range === 'unicast' && ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).parts.slice(0, 6).every((p) => p === 0)) return 'ipv4Compatible';
  if (range === 'unicast') return null;
  return range === 'rfc6052' ? 'nat64' : range === 'carrierGradeNat' ? 'shared address space' : range;
}

/** Parses one allow entry; a preset name expands to the operator's hosts for it. */
export function parseAllowEntry(entry: string, presets: Record<string, string[]> = {}): AllowRule[] {
  if (typeof entry !== 'string' || entry.trim() === '') throw new EgressPolicyError('an egress entry is empty', String(entry));
  const raw = entry.trim();
  if (Object.hasOwn(presets, raw)) return presets[raw]!.flatMap((e) => parseAllowEntry(e));
  // `host:port`, where host may be a bracketed IPv6 literal.
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(raw);
  if (!m) throw new EgressPolicyError(`egress entry "${raw}" is not host, host:port, *.domain or *.domain:port (or a preset name)`, raw);
  const port = m[2] === undefined ? DEFAULT_PORT : Number(m[2]);
  if (port < 1 || port > 65_535) throw new EgressPolicyError(`egress entry "${raw}": port ${m[2]} is outside 1-65535`, raw);
  let host = normalizeHost(m[1]!);
  const wildcard = host.startsWith('*.');
  if (wildcard) host = host.slice(2);
  if (ipLiteral(host)) {
    if (wildcard) throw new EgressPolicyError(`egress entry "${raw}": a wildcard needs a domain name`, raw);
    return [{ host: ipLiteral(host)!.toNormalizedString(), wildcard: false, port }];
  }
  const labels = host.split('.');
  if (!labels.every((l) => LABEL.test(l)) || host.length > 253) {
    throw new EgressPolicyError(`egress entry "${raw}": "${host}" is not a valid host name`, raw);
  }
  if (wildcard && labels.length < 2) throw new EgressPolicyError(`egress entry "${raw}": a wildcard must name a domain with at least two labels`, raw);
  return [{ host, wildcard, port }];
}

/** Whether a rule lets `host:port` through. */
export function ruleMatches(rule: AllowRule, host: string, port: number): boolean {
  if (rule.port !== port) return false;
  const h = canonicalHost(host);
  return rule.wildcard ? h.endsWith(`.${rule.host}`) : h === rule.host;
}

/** The ceiling the operator sets covers an entry when every host:port the entry allows is also allowed by one ceiling entry. */
export function ceilingCovers(ceiling: AllowRule[] | 'any', rule: AllowRule): boolean {
  if (ceiling === 'any') return true;
  return ceiling.some((c) => {
    if (c.port !== rule.port) return false;
    if (!c.wildcard) return !rule.wildcard && c.host === rule.host;
    return rule.host === c.host ? rule.wildcard : rule.host.endsWith(`.${c.host}`);
  });
}

/** Host names in one form; an IP literal in its normalized notation. */
function canonicalHost(host: string): string {
  const ip = ipLiteral(host);
  return ip ? ip.toNormalizedString() : normalizeHost(host);
}

/**
 * Decides a connection request. The name is resolved once, here; every address it
 * resolves to is checked, and the caller connects to the returned address, never
 * resolving again, so a name that changes its answer between check and connect
 * (DNS rebinding) cannot lead anywhere unchecked.
 */
export async function decide(policy: EgressPolicy, rawHost: string, port: number, resolve: Resolver): Promise<EgressDecision> {
  const host = canonicalHost(rawHost);
  const deny = (reason: string): EgressDecision => ({ allowed: false, host, port, reason });
  if (!Number.isInteger(port) || port < 1 || port > 65_535) return deny('invalid port');
  if (host === '' || /[\s/@]/.test(host)) return deny('invalid host');

  if (!policy.allow.some((r) => ruleMatches(r, host, port))) return deny('not in the egress allow list');
  // An operator exception lifts the address rules for that exact host:port, not the job's list.
  const exception = policy.exceptions.some((e) => canonicalHost(e.host) === host && e.port === port);

  const literal = ipLiteral(host);
  let addresses: string[];
  if (literal) addresses = [literal.toString()];
  else {
    try {
      addresses = await resolve(host);
    } catch (err) {
      return deny(`name did not resolve: ${(err as Error).message}`);
    }
  }
  if (addresses.length === 0) return deny('name did not resolve');
  if (!exception) {
    // Every answer is checked, not only the one used: a name with one private answer is refused.
    for (const a of addresses) {
      const range = forbiddenRange(a);
      if (range) return deny(`resolves to ${a} (${range})`);
    }
  } else if (addresses.some((a) => !ipaddr.isValid(a))) {
    return deny('resolver returned something that is not an address');
  }
  return { allowed: true, host, port, address: normalizeHost(addresses[0]!) };
}

/** What the operator sets for every job. */
export interface OperatorEgress {
  /** The entries of a spec that names none. */
  defaults: string[];
  /** What a spec may allow at most; `any` is every public host. */
  ceiling: string[] | 'any';
  presets: Record<string, string[]>;
  exceptions: OperatorException[];
}

/** The policy for a job: its own entries, or the operator's default list when it has none. */
export function jobPolicy(entries: string[] | undefined, operator: OperatorEgress): EgressPolicy {
  const ceiling = operator.ceiling === 'any' ? 'any' : operator.ceiling.flatMap((e) => parseAllowEntry(e, operator.presets));
  const allow: AllowRule[] = [];
  for (const entry of entries ?? operator.defaults) {
    const rules = parseAllowEntry(entry, operator.presets);
    for (const rule of rules) {
      if (!ceilingCovers(ceiling, rule)) {
        throw new EgressPolicyError(`egress entry "${entry}" is outside the operator's egress ceiling`, entry);
      }
    }
    allow.push(...rules);
  }
  return { allow, exceptions: operator.exceptions };
}

/** Parses the operator's `host:port` exceptions (for example a test's git fixture on 127.0.0.1). */
export function parseExceptions(list: string[]): OperatorException[] {
  return list.map((e) => {
    const [rule] = parseAllowEntry(e);
    if (!/:\d+$/.test(e.trim())) throw new EgressPolicyError(`egress exception "${e}" needs an explicit port`, e);
    if (rule!.wildcard) throw new EgressPolicyError(`egress exception "${e}" must name one host`, e);
    return { host: rule!.host, port: rule!.port };
  });
}

/** The repository's host and port: all the clone step may reach (nothing for a repository not over http(s)). */
export function repoRule(repo: string): AllowRule[] {
  try {
    const url = new URL(repo);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return [];
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    return parseAllowEntry(`${url.hostname}:${port}`);
  } catch {
    return [];
  }
}
