/**
 * The HTTP rules both of the proxy's request paths apply (plain requests, and requests in
 * TLS it terminates): which headers belong to one hop, and which framing is refused.
 */
import type http from 'node:http';

/** Headers of one hop, not forwarded (RFC 9110 7.6.1), and the proxy's own. */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** A request's end-to-end headers as name/value pairs, in order, without those of the hop. */
export function forwardedHeaders(req: Pick<http.IncomingMessage, 'rawHeaders' | 'headers'>): [string, string][] {
  const listed = new Set(
    String(req.headers.connection ?? '')
      .toLowerCase()
      .split(',')
      .map((s) => s.trim()),
  );
  const out: [string, string][] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (!HOP_BY_HOP.has(lower) && !listed.has(lower)) out.push([name, req.rawHeaders[i + 1]!]);
  }
  return out;
}

/** Pairs as the object http.request takes (a repeated name becomes a list, in order). */
export function headerObject(pairs: readonly (readonly [string, string])[]): http.OutgoingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of pairs) {
    const k = name.toLowerCase();
    const had = out[k];
    out[k] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
  }
  return out;
}

/** Methods whose requests carry no body: one that comes with one is refused. */
const NO_BODY = new Set(['GET', 'HEAD', 'TRACE']);

/**
 * Why a plain request's framing is refused, or null: both Content-Length and
 * Transfer-Encoding (the parser may take one and the next hop the other), more than one
 * Content-Length, or a body on a method that has none.
 */
export function framingProblem(req: Pick<http.IncomingMessage, 'method' | 'headers' | 'rawHeaders'>): string | null {
  const names = req.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  const lengths = names.filter((n) => n === 'content-length').length;
  const encodings = names.filter((n) => n === 'transfer-encoding').length;
  if (lengths > 0 && encodings > 0) return 'a request with both Content-Length and Transfer-Encoding is refused';
  if (lengths > 1) return 'a request with more than one Content-Length is refused';
  const hasBody = encodings > 0 || (lengths === 1 && req.headers['content-length'] !== '0');
  if (hasBody && NO_BODY.has(String(req.method).toUpperCase())) return `a ${req.method} request with a body is refused`;
  return null;
}
