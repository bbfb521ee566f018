/**
 * The egress proxy's protocol side: HTTP CONNECT (for TLS, git over https, package
 * managers) and plain HTTP with an absolute request URI. Every request is decided by
 * the job's policy (./policy.ts); an allowed one is dialled to the exact address the
 * policy checked, never to a name. Which job's policy applies is the listener's
 * business (one socket per job): this module sees one policy per server.
 */
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { decide, type EgressPolicy, type Resolver } from '../common/egress-policy';

/** Opens a TCP connection to an IP address (no name lookup). */
export type Dialer = (address: string, port: number) => net.Socket;

export type EgressEvent =
  | { type: 'denied'; host: string; port: number; reason: string; method: 'CONNECT' | 'HTTP' }
  | { type: 'closed'; host: string; port: number; address: string; bytesOut: number; bytesIn: number; method: 'CONNECT' | 'HTTP' };

export interface EgressProxyOptions {
  /** The job's policy, read per request so that a change applies to the next connection. */
  policy: () => EgressPolicy | Promise<EgressPolicy>;
  resolve: Resolver;
  dial?: Dialer;
  onEvent?: (e: EgressEvent) => void;
  /** How long a dial may take before the client gets a 504. */
  connectTimeoutMs?: number;
}

export const tcpDialer: Dialer = (address, port) => net.connect({ host: address, port });

/** Headers that belong to one hop and are not forwarded (RFC 9110 7.6.1, and the proxy's own). */
const HOP_BY_HOP = new Set([
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

/** `host:port` of a CONNECT request, the host possibly a bracketed IPv6 literal. */
export function parseAuthority(authority: string): { host: string; port: number } | null {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:/@[\]]+):(\d{1,5})$/.exec(authority);
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65_535) return null;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
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

export function createEgressProxy(opts: EgressProxyOptions): http.Server {
  const dial = opts.dial ?? tcpDialer;
  const emit = (e: EgressEvent) => opts.onEvent?.(e);
  const connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;

  /** Decides, then dials the checked address; settles with the open socket, or answers the client itself. */
  const open = async (host: string, port: number, method: 'CONNECT' | 'HTTP', refuse: (status: number, text: string) => void) => {
    const decision = await decide(await opts.policy(), host, port, opts.resolve);
    if (!decision.allowed) {
      emit({ type: 'denied', host: decision.host, port, reason: decision.reason, method });
      refuse(403, `egress to ${decision.host}:${port} refused: ${decision.reason}\n`);
      return null;
    }
    const upstream = dial(decision.address, port);
    const connected = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        upstream.destroy();
        resolve(false);
      }, connectTimeoutMs);
      upstream.once('connect', () => {
        clearTimeout(timer);
        resolve(true);
      });
      upstream.once('error', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (!connected) {
      refuse(502, `egress to ${decision.host}:${port} (${decision.address}) could not connect\n`);
      return null;
    }
    return { upstream, decision };
  };

  const server = http.createServer((req, res) => {
    const refuse = (status: number, text: string) => {
      if (!res.headersSent) res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
      res.end(text);
    };
    void (async () => {
      let target: URL;
      try {
        target = new URL(req.url ?? '');
      } catch {
        return refuse(400, 'this is an egress proxy: a request needs an absolute http:// URI\n');
      }
      if (target.protocol !== 'http:') return refuse(400, `only http:// is forwarded as a plain request; use CONNECT for ${target.protocol}\n`);
      // Framing two hops could read apart (request smuggling) is refused, not forwarded.
      const framing = framingProblem(req);
      if (framing) return refuse(400, `${framing}\n`);
      const port = target.port === '' ? 80 : Number(target.port);
      // The Host header must name what the URI names: a server behind one allowed name is not reached through another.
      if (
        req.headers.host !== undefined &&
        req.headers.host.toLowerCase() !== target.host.toLowerCase() &&
        req.headers.host.toLowerCase() !== `${target.hostname}:${port}`
      ) {
        return refuse(400, `Host header "${req.headers.host}" does not match the request URI's host "${target.host}"\n`);
      }
      const opened = await open(target.hostname, port, 'HTTP', refuse);
      if (!opened) return;
      const { upstream, decision } = opened;
      const headers: http.OutgoingHttpHeaders = {};
      const connectionListed = new Set(
        String(req.headers.connection ?? '')
          .toLowerCase()
          .split(',')
          .map((s) => s.trim()),
      );
      for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k) && !connectionListed.has(k)) headers[k] = v;
      headers.host = target.host;
      let bytesOut = 0;
      let bytesIn = 0;
      const forward = http.request({ method: req.method, path: `${target.pathname}${target.search}`, headers, createConnection: () => upstream });
      forward.on('response', (up) => {
        const out: http.OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(up.headers)) if (!HOP_BY_HOP.has(k)) out[k] = v;
        res.writeHead(up.statusCode ?? 502, up.statusMessage, out);
        up.on('data', (c: Buffer) => (bytesIn += c.length));
        up.pipe(res);
      });
      forward.on('error', () => refuse(502, 'the upstream connection failed\n'));
      req.on('data', (c: Buffer) => (bytesOut += c.length));
      req.pipe(forward);
      res.on('close', () => {
        upstream.destroy();
        emit({ type: 'closed', host: decision.host, port, address: decision.address, bytesOut, bytesIn, method: 'HTTP' });
      });
    })().catch(() => refuse(500, 'the egress proxy failed\n'));
  });

  server.on('connect', (req: http.IncomingMessage, client: Duplex, head: Buffer) => {
    const refuse = (status: number, text: string) => {
      const reason = http.STATUS_CODES[status] ?? 'Error';
      client.end(
        `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
      );
    };
    client.on('error', () => undefined);
    void (async () => {
      const authority = parseAuthority(req.url ?? '');
      if (!authority) return refuse(400, `CONNECT needs host:port, got "${req.url}"\n`);
      const opened = await open(authority.host, authority.port, 'CONNECT', refuse);
      if (!opened) return;
      const { upstream, decision } = opened;
      let bytesOut = head.length;
      let bytesIn = 0;
      upstream.on('data', (c: Buffer) => (bytesIn += c.length));
      client.on('data', (c: Buffer) => (bytesOut += c.length));
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
      let closed = false;
      const close = () => {
        if (closed) return;
        closed = true;
        upstream.destroy();
        client.destroy();
        emit({ type: 'closed', host: decision.host, port: authority.port, address: decision.address, bytesOut, bytesIn, method: 'CONNECT' });
      };
      upstream.on('close', close);
      upstream.on('error', close);
      client.on('close', close);
    })().catch(() => refuse(500, 'the egress proxy failed\n'));
  });
  return server;
}
