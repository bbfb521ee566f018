/**
 * Where a webhook may be delivered: the egress rules of steps apply to it too. A target is
 * an http(s) URL without credentials whose every address is public, unless the operator
 * lists its exact host:port (DRAFTSMAN_WEBHOOK_EXCEPTIONS), as for a receiver on the LAN.
 * Registration checks the URL's form (and a literal address) without resolving it; each
 * delivery resolves the name once, checks every answer and connects to the checked one.
 */
import { decide, type EgressDecision, ipLiteral, forbiddenRange, normalizeHost, type OperatorException, type Resolver } from '../common/egress-policy';

export interface Target {
  url: URL;
  host: string;
  port: number;
}

/** The target of a URL, or why it cannot be one. */
export function parseTarget(text: string, exceptions: readonly OperatorException[]): Target | { problem: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { problem: 'must be an absolute http:// or https:// URL' };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { problem: 'must be an http:// or https:// URL' };
  if (url.username || url.password) return { problem: 'must not carry credentials (the signature authenticates the sender)' };
  if (url.hash) return { problem: 'must not have a #fragment' };
  const host = normalizeHost(url.hostname);
  if (!host) return { problem: 'must name a host' };
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const excepted = exceptions.some((e) => normalizeHost(e.host) === host && e.port === port);
  const literal = ipLiteral(host);
  if (literal && !excepted) {
    const range = forbiddenRange(literal.toString());
    if (range) return { problem: `must not be a ${range} address (DRAFTSMAN_WEBHOOK_EXCEPTIONS lists host:port targets the operator allows)` };
  }
  return { url, host, port };
}

/** Resolves a delivery's target and decides it as the egress proxy decides a step's connection. */
export function decideTarget(target: Target, exceptions: readonly OperatorException[], resolve: Resolver): Promise<EgressDecision> {
  return decide({ allow: [{ host: target.host, wildcard: false, port: target.port }], exceptions: [...exceptions] }, target.host, target.port, resolve);
}
