/**
 * The egress proxy's protocol side: HTTP CONNECT (for TLS, git over https, package
 * managers) and plain HTTP with an absolute request URI. Every request is decided by
 * the job's policy (./policy.ts); an allowed one is dialled to the exact address the
 * policy checked, never to a name. Which job's policy applies is the listener's
 * business (one socket per job): this module sees one policy per server.
 */
import http from 'node:http';
import net from 'node:net';
import { applyCredentials, boundTo, type LiveCredential, placeholderIn } from '../common/credentials';
import { decide, type EgressPolicy, type Resolver } from '../common/egress-policy';
import { forwardedHeaders, framingProblem, headerObject, HOP_BY_HOP } from './http-rules';
import { bodyGuard, createInterceptor, type CredentialTls } from './intercept';

/** Opens a TCP connection to an IP address (no name lookup). */
export type Dialer = (address: string, port: number) => net.Socket;

export type EgressEvent =
  | { type: 'denied'; host: string; port: number; reason: string; method: 'CONNECT' | 'HTTP'; detail?: string }
  | { type: 'credential'; credential: LiveCredential; host: string; port: number }
  | { type: 'closed'; host: string; port: number; address: string; bytesOut: number; bytesIn: number; method: 'CONNECT' | 'HTTP' };

/** A job's policy, and its credentials when it has some (with the placeholders its steps hold). */
export type JobEgress = EgressPolicy & { credentials?: readonly LiveCredential[] };

/** Why a request is refused when it carries a placeholder where its credential does not go. */
export const CREDENTIAL_MISUSE = 'credential_misuse';

export interface EgressProxyOptions {
  /** The job's policy, read per request so that a change applies to the next connection. */
  policy: () => JobEgress | Promise<JobEgress>;
  /** What terminating TLS for hosts bound to a credential needs; without it, such hosts are refused. */
  credentialTls?: CredentialTls;
  resolve: Resolver;
  dial?: Dialer;
  onEvent?: (e: EgressEvent) => void;
  /** How long a dial may take before the client gets a 504. */
  connectTimeoutMs?: number;
}

export const tcpDialer: Dialer = (address, port) => net.connect({ host: address, port });

/** `host:port` of a CONNECT request, the host possibly a bracketed IPv6 literal. */
export function parseAuthority(authority: string): { host: string; port: number } | null {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:/@[\]]+):(\d{1,5})$/.exec(authority);
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65_535) return null;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

export function createEgressProxy(opts: EgressProxyOptions): http.Server {
  const dial = opts.dial ?? tcpDialer;
  const emit = (e: EgressEvent) => opts.onEvent?.(e);
  const connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
  const interceptor = opts.credentialTls
    ? createInterceptor({
        tls: opts.credentialTls,
        dial,
        credentials: async () => (await opts.policy()).credentials ?? [],
        onEvent: (e) =>
          e.type === 'used'
            ? emit({ type: 'credential', credential: e.credential, host: e.host, port: e.port })
            : emit({ type: 'denied', host: e.host, port: e.port, reason: CREDENTIAL_MISUSE, method: 'CONNECT', detail: e.why }),
      })
    : null;

  /**
   * Decides a connection by the job's policy, answering the client itself when refused.
   * A target that holds a placeholder is refused before its name is resolved: a lookup
   * would carry the placeholder to a DNS server.
   */
  const allow = async (host: string, port: number, method: 'CONNECT' | 'HTTP', refuse: (status: number, text: string) => void) => {
    const job = await opts.policy();
    const credentials = job.credentials ?? [];
    const held = placeholderIn(credentials, host);
    if (held) {
      const detail = `the placeholder of ${held.env} is in the host name`;
      emit({ type: 'denied', host: '[a host name holding a placeholder]', port, reason: CREDENTIAL_MISUSE, method, detail });
      refuse(403, `egress refused: ${CREDENTIAL_MISUSE}: ${detail}\n`);
      return null;
    }
    const decision = await decide(job, host, port, opts.resolve);
    if (!decision.allowed) {
      emit({ type: 'denied', host: decision.host, port, reason: decision.reason, method });
      refuse(403, `egress to ${decision.host}:${port} refused: ${decision.reason}\n`);
      return null;
    }
    return { decision, credentials };
  };

  /** Dials the checked address; settles with the open socket, or answers the client itself. */
  const connect = async (decision: { host: string; address: string }, port: number, refuse: (status: number, text: string) => void) => {
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
    return upstream;
  };

  const server = http.createServer((req, res) => {
    const refuse = (status: number, text: string) => {
      // Once: a refusal that destroys the upstream request is not answered again by its error.
      if (res.writableEnded) return;
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
      const allowed = await allow(target.hostname, port, 'HTTP', refuse);
      if (!allowed) return;
      const { decision, credentials } = allowed;
      // Plain http carries no credential: a placeholder in it goes nowhere.
      const check = applyCredentials(
        credentials,
        { host: decision.host, port, tls: false },
        `${target.pathname}${target.search}`,
        forwardedHeaders(req),
        () => '',
      );
      if (!check.ok) {
        emit({ type: 'denied', host: decision.host, port, reason: CREDENTIAL_MISUSE, method: 'HTTP', detail: check.why });
        return refuse(403, `egress to ${decision.host}:${port} refused: ${CREDENTIAL_MISUSE}: ${check.why}\n`);
      }
      const upstream = await connect(decision, port, refuse);
      if (!upstream) return;
      const headers = headerObject(check.headers);
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
      if (credentials.length === 0) req.pipe(forward);
      else {
        const guard = bodyGuard(credentials);
        guard.on('error', (err) => {
          forward.destroy();
          emit({ type: 'denied', host: decision.host, port, reason: CREDENTIAL_MISUSE, method: 'HTTP', detail: err.message });
          refuse(403, `egress to ${decision.host}:${port} refused: ${CREDENTIAL_MISUSE}: ${err.message}\n`);
        });
        req.pipe(guard).pipe(forward);
      }
      res.on('close', () => {
        upstream.destroy();
        emit({ type: 'closed', host: decision.host, port, address: decision.address, bytesOut, bytesIn, method: 'HTTP' });
      });
    })().catch(() => refuse(500, 'the egress proxy failed\n'));
  });

  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
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
      const allowed = await allow(authority.host, authority.port, 'CONNECT', refuse);
      if (!allowed) return;
      const { decision, credentials } = allowed;
      let bytesOut = head.length;
      let bytesIn = 0;
      let closed = false;
      const closedEvent = () =>
        emit({ type: 'closed', host: decision.host, port: authority.port, address: decision.address, bytesOut, bytesIn, method: 'CONNECT' });
      // A host bound to a credential is never a plain tunnel: its TLS is the proxy's, or nothing.
      if (boundTo(credentials, decision.host, authority.port).length > 0) {
        if (!interceptor) return refuse(502, `egress to ${decision.host}:${authority.port}: this proxy cannot add credentials (no job CA)\n`);
        const secure = await interceptor.accept(client, head, { host: decision.host, port: authority.port, address: decision.address });
        // Counted on the step's side of the proxy's TLS (what the step sent and received).
        secure.on('close', () => {
          bytesOut += client.bytesRead;
          bytesIn = client.bytesWritten;
          closedEvent();
        });
        return;
      }
      const upstream = await connect(decision, authority.port, refuse);
      if (!upstream) return;
      upstream.on('data', (c: Buffer) => (bytesIn += c.length));
      client.on('data', (c: Buffer) => (bytesOut += c.length));
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
      const close = () => {
        if (closed) return;
        closed = true;
        upstream.destroy();
        client.destroy();
        closedEvent();
      };
      upstream.on('close', close);
      upstream.on('error', close);
      client.on('close', close);
    })().catch(() => refuse(500, 'the egress proxy failed\n'));
  });
  server.on('close', () => interceptor?.close());
  return server;
}
