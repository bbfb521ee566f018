/**
 * TLS the proxy terminates, for hosts a job binds a credential to: the step's CONNECT is
 * answered, the step's TLS is met with a certificate the job's own CA signs for that host,
 * and each request read from it is checked (common/credentials.ts), given its credential,
 * and sent upstream over the proxy's own TLS connection, verified against the system's
 * CAs and the operator's bundle. Nothing reaches the upstream before a request passed its
 * check; a request whose body holds a placeholder is cut before the placeholder is sent.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';
import tls from 'node:tls';
import { applyCredentials, type LiveCredential, placeholderIn } from '../common/credentials';
import { forwardedHeaders, framingProblem, headerObject, HOP_BY_HOP } from './http-rules';
import type { HostCert } from './job-ca';

/** What terminating TLS for a job needs. */
export interface CredentialTls {
  /** A certificate for `host`, signed by the job's CA. */
  hostCert(host: string): Promise<HostCert>;
  /** The trust the proxy verifies upstream servers with: the system's CAs and the operator's bundle. */
  upstream: tls.SecureContext;
  /** A credential's secret value (read when a request needs it, never kept by the proxy). */
  valueOf(c: LiveCredential): string;
}

/** The connection a step's TLS was terminated for: where its requests go. */
export interface InterceptTarget {
  host: string;
  port: number;
  /** The address the policy checked: the only one dialled. */
  address: string;
}

export type CredentialEvent =
  { type: 'misuse'; host: string; port: number; why: string } | { type: 'used'; credential: LiveCredential; host: string; port: number };

export class PlaceholderInBody extends Error {
  override readonly name = 'PlaceholderInBody';
}

/**
 * Passes a body through, holding back the last bytes of each chunk (one placeholder
 * long, less one) until the next arrives, so that a placeholder split over chunks is
 * still found, and fails before any placeholder has been passed on whole.
 */
export function bodyGuard(credentials: readonly LiveCredential[]): Transform {
  const keep = Math.max(0, ...credentials.map((c) => c.placeholder.length)) - 1;
  let carry = Buffer.alloc(0);
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      const all = Buffer.concat([carry, chunk]);
      const found = placeholderIn(credentials, all.toString('latin1'));
      if (found) return done(new PlaceholderInBody(`the placeholder of ${found.env} is in a request body`));
      const cut = Math.max(0, all.length - keep);
      carry = all.subarray(cut);
      done(null, all.subarray(0, cut));
    },
    flush(done: TransformCallback) {
      done(null, carry);
    },
  });
}

/**
 * Replaces each of `values` in a response body with as many `*`, so that its length and
 * framing stay as the server sent them: a bound host that echoes a credential back (an
 * error message quoting the key) does not hand the step the value. Holds back one value's
 * length, less one, between chunks, so that a value split over chunks is found too.
 */
export function valueMask(values: readonly string[]): Transform {
  const needles = values.filter((v) => v.length > 0).map((v) => Buffer.from(v));
  const keep = Math.max(0, ...needles.map((n) => n.length)) - 1;
  let carry: Buffer = Buffer.alloc(0);
  const mask = (b: Buffer) => {
    for (const n of needles) for (let at = b.indexOf(n); at >= 0; at = b.indexOf(n, at + n.length)) b.fill(0x2a, at, at + n.length);
    return b;
  };
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      const all = mask(Buffer.concat([carry, chunk]));
      const cut = Math.max(0, all.length - keep);
      carry = all.subarray(cut);
      done(null, all.subarray(0, cut));
    },
    flush(done: TransformCallback) {
      done(null, mask(carry));
    },
  });
}

/** A response header's value with each of `values` masked, as in the body. */
function maskedHeader(v: string | string[] | undefined, values: readonly string[]): string | string[] | undefined {
  if (v === undefined) return v;
  const one = (x: string) => values.reduce((acc, value) => (value ? acc.split(value).join('*'.repeat(value.length)) : acc), x);
  return Array.isArray(v) ? v.map(one) : one(v);
}

/**
 * An https.Agent that dials through the proxy's dialer (to the address the policy
 * checked, never a name), keeping connections for the requests that follow.
 */
class DialingAgent extends https.Agent {
  constructor(private readonly dial: (address: string, port: number) => net.Socket) {
    super({ keepAlive: true, maxSockets: 16, maxFreeSockets: 4, timeout: 60_000 });
  }

  override createConnection(options: tls.ConnectionOptions & { host: string; port: number }): net.Socket {
    return tls.connect({ ...options, socket: this.dial(options.host, options.port) });
  }
}

/**
 * The part of a proxy that serves terminated connections: `accept` takes a CONNECT's
 * socket, meets its TLS, and serves the requests in it.
 */
export function createInterceptor(opts: {
  tls: CredentialTls;
  dial: (address: string, port: number) => net.Socket;
  /** The job's credentials at this moment (the running step's phase decides which are active). */
  credentials: () => Promise<readonly LiveCredential[]>;
  onEvent: (e: CredentialEvent) => void;
}) {
  const targets = new WeakMap<net.Socket, InterceptTarget>();
  const open = new Set<tls.TLSSocket>();
  const agent = new DialingAgent(opts.dial);
  const contexts = new Map<string, Promise<tls.SecureContext>>();
  const contextFor = (host: string) => {
    let ctx = contexts.get(host);
    if (!ctx) {
      ctx = opts.tls.hostCert(host).then((c) => tls.createSecureContext({ cert: c.cert, key: c.key }));
      ctx.catch(() => contexts.delete(host));
      contexts.set(host, ctx);
    }
    return ctx;
  };

  const inner = http.createServer((req, res) => {
    const t = targets.get(req.socket);
    const refuse = (status: number, text: string) => {
      // Once: a refusal that destroys the upstream request is not answered again by its error.
      if (res.writableEnded) return;
      if (!res.headersSent) res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
      res.end(text);
    };
    if (!t) return refuse(500, 'the egress proxy lost this connection\n');
    void serve(t, req, res, refuse).catch(() => refuse(500, 'the egress proxy failed\n'));
  });

  async function serve(t: InterceptTarget, req: http.IncomingMessage, res: http.ServerResponse, refuse: (s: number, text: string) => void) {
    const name = t.host.includes(':') ? `[${t.host}]` : t.host;
    const host = req.headers.host?.toLowerCase();
    if (host !== undefined && host !== name && host !== `${name}:${t.port}`) {
      return refuse(400, `Host header "${req.headers.host}" does not match the host this connection was opened to (${name}:${t.port})\n`);
    }
    // Framing two hops could read apart (request smuggling) is refused here as on plain http.
    const framing = framingProblem(req);
    if (framing) return refuse(400, `${framing}\n`);
    const credentials = await opts.credentials();
    const check = applyCredentials(credentials, { ...t, tls: true }, req.url ?? '/', forwardedHeaders(req), (c) => opts.tls.valueOf(c));
    if (!check.ok) {
      opts.onEvent({ type: 'misuse', host: t.host, port: t.port, why: check.why });
      return refuse(403, `egress to ${name}:${t.port} refused: credential_misuse: ${check.why}\n`);
    }
    const headers = headerObject(check.headers);
    headers.host = t.port === 443 ? name : `${name}:${t.port}`;
    // A request that carries a value gets its answer unencoded, for the value to be masked in it.
    const sent = check.used.map((c) => opts.tls.valueOf(c));
    if (sent.length) headers['accept-encoding'] = 'identity';
    const up = https.request({
      host: t.address,
      port: t.port,
      servername: net.isIP(t.host) ? undefined : t.host,
      method: req.method,
      path: req.url,
      headers,
      agent,
      // Passed on to tls.connect (the option types of http do not list it).
      ...({ secureContext: opts.tls.upstream } as object),
    });
    up.on('response', (answer) => {
      const out: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(answer.headers)) if (!HOP_BY_HOP.has(k)) out[k] = sent.length ? maskedHeader(v, sent) : v;
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, out);
      // An encoded body (a server that compresses whatever it was asked) passes as it is: see docs/runner-contract.md.
      const encoded = (answer.headers['content-encoding'] ?? 'identity') !== 'identity';
      if (sent.length && !encoded) answer.pipe(valueMask(sent)).pipe(res);
      else answer.pipe(res);
    });
    up.on('error', (err: NodeJS.ErrnoException) => refuse(502, `egress to ${name}:${t.port}: the upstream failed (${err.code ?? err.message})\n`));
    const guard = bodyGuard(credentials);
    guard.on('error', (err) => {
      up.destroy();
      opts.onEvent({ type: 'misuse', host: t.host, port: t.port, why: err.message });
      refuse(403, `egress to ${name}:${t.port} refused: credential_misuse: ${err.message}\n`);
    });
    req.pipe(guard).pipe(up);
    for (const c of check.used) opts.onEvent({ type: 'used', credential: c, host: t.host, port: t.port });
  }

  return {
    /** Answers the CONNECT, then terminates the step's TLS with the host's certificate. */
    async accept(client: net.Socket, head: Buffer, target: InterceptTarget): Promise<tls.TLSSocket> {
      const secureContext = await contextFor(target.host);
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) client.unshift(head);
      const secure = new tls.TLSSocket(client, { isServer: true, secureContext, ALPNProtocols: ['http/1.1'] });
      targets.set(secure, target);
      open.add(secure);
      // A client that does not trust the job's CA ends here, having sent nothing anywhere.
      secure.on('error', () => secure.destroy());
      secure.on('close', () => {
        open.delete(secure);
        client.destroy();
      });
      inner.emit('connection', secure);
      return secure;
    },
    close(): void {
      for (const s of open) s.destroy();
      agent.destroy();
    },
  };
}
