/**
 * Credentials at the proxy, on a Unix socket with a stub resolver: an HTTPS upstream on
 * 127.0.0.1 with a CA of its own (the operator's bundle) receives the value of a request
 * whose step held only the placeholder; a placeholder sent anywhere else is refused
 * before anything is dialled (a recording dialer shows it), each refusal next to the same
 * request without the placeholder going through (the positive control).
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { type LiveCredential, newPlaceholder } from '../common/credentials';
import { parseAllowEntry, parseExceptions, type Resolver } from '../common/egress-policy';
import { createJobCa, hostCert, type JobCa } from './job-ca';
import { valueMask } from './intercept';
import { createEgressProxy, type EgressEvent, tcpDialer } from './proxy';

const VALUE = 'sk-live-the-real-value-0123456789';
let dir: string;
let operatorCa: JobCa;
let jobCa: JobCa;
let bound: { server: https.Server; port: number; seen: { url: string; auth: string | undefined; body: string }[] };
let other: { server: https.Server; port: number; seen: { url: string; auth: string | undefined; body: string }[] };
let plain: { server: http.Server; port: number; seen: string[] };

async function upstream(host: string) {
  const seen: { url: string; auth: string | undefined; body: string }[] = [];
  const server = https.createServer(await hostCert(operatorCa, host), (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      seen.push({ url: req.url ?? '', auth: req.headers.authorization, body });
      // An API that quotes the key it got back, in a header and in its body (and says how it was asked to encode).
      if (req.url === '/echo')
        return void res
          .writeHead(401, { 'x-echo': String(req.headers.authorization) })
          .end(`bad key: ${req.headers.authorization} (${req.headers['accept-encoding']})`);
      res.end(`hello from ${host}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as net.AddressInfo).port, seen };
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-intercept-'));
  [operatorCa, jobCa] = await Promise.all([createJobCa('operator'), createJobCa('job-1')]);
  [bound, other] = await Promise.all([upstream('api.test'), upstream('other.test')]);
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.url} ${req.headers.authorization ?? '-'}`);
    res.end('plain');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  plain = { server, port: (server.address() as net.AddressInfo).port, seen };
});
afterAll(async () => {
  for (const s of [bound.server, other.server, plain.server]) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

const resolver: Resolver = async (host) => {
  if (['api.test', 'other.test', 'plain.test'].includes(host)) return ['127.0.0.1'];
  throw new Error(`ENOTFOUND ${host}`);
};

let n = 0;
async function startProxy(over: Partial<LiveCredential> = {}, extra: string[] = []) {
  const events: EgressEvent[] = [];
  const dials: string[] = [];
  const credential: LiveCredential = {
    secret: 'model-key',
    env: 'MODEL_API_KEY',
    placeholder: newPlaceholder(() => Buffer.alloc(16, 7)),
    hosts: [`api.test:${bound.port}`],
    header: 'authorization',
    format: 'Bearer {value}',
    active: true,
    ...over,
  };
  const targets = [`api.test:${bound.port}`, `other.test:${other.port}`, `plain.test:${plain.port}`, ...extra];
  const socket = path.join(dir, `p${n++}.sock`);
  const server = createEgressProxy({
    policy: () => ({ allow: targets.flatMap((t) => parseAllowEntry(t)), exceptions: parseExceptions(targets), credentials: [credential] }),
    credentialTls: {
      hostCert: (host) => hostCert(jobCa, host),
      upstream: tls.createSecureContext({ ca: operatorCa.certPem }),
      valueOf: (c) => (c.secret === 'model-key' ? VALUE : ''),
    },
    resolve: resolver,
    dial: (address, port) => {
      dials.push(`${address}:${port}`);
      return tcpDialer(address, port);
    },
    onEvent: (e) => events.push(e),
  });
  await new Promise<void>((r) => server.listen(socket, r));
  return {
    socket,
    events,
    dials,
    placeholder: credential.placeholder,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** CONNECT through the proxy's socket; the status and, when 200, the tunnel. */
function connect(socket: string, authority: string): Promise<{ status: number; tunnel: net.Socket }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socket);
    let buf = '';
    s.on('error', reject);
    s.once('connect', () => s.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`));
    const onData = (c: Buffer) => {
      buf += c.toString('latin1');
      if (!buf.includes('\r\n\r\n')) return;
      s.off('data', onData);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(buf)?.[1]), tunnel: s });
    };
    s.on('data', onData);
  });
}

/** An HTTPS request through a CONNECT tunnel, trusting `ca`. */
async function httpsVia(
  socket: string,
  host: string,
  port: number,
  req: { path?: string; headers?: Record<string, string>; body?: string; ca: string },
): Promise<{ status: number; body: string } | { connect: number } | { tlsError: string }> {
  const { status, tunnel } = await connect(socket, `${host}:${port}`);
  if (status !== 200) {
    tunnel.destroy();
    return { connect: status };
  }
  return new Promise((resolve) => {
    const r = https.request(
      {
        host,
        port,
        path: req.path ?? '/',
        method: req.body === undefined ? 'GET' : 'POST',
        headers: req.headers,
        // No agent: the request goes over the connection made here.
        createConnection: () => tls.connect({ socket: tunnel, servername: host, ca: req.ca }),
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    r.on('error', (err: NodeJS.ErrnoException) => resolve({ tlsError: err.code ?? err.message }));
    r.end(req.body);
  });
}

const misuse = (events: EgressEvent[]) => events.filter((e) => e.type === 'denied' && e.reason === 'credential_misuse');

test('the bound host receives the value in its header from a step that sent the placeholder, over TLS the job CA terminates', async () => {
  const p = await startProxy();
  try {
    const r = await httpsVia(p.socket, 'api.test', bound.port, {
      path: '/v1/models',
      headers: { authorization: `Bearer ${p.placeholder}` },
      ca: jobCa.certPem,
    });
    expect(r).toEqual({ status: 200, body: 'hello from api.test' });
    expect(bound.seen.at(-1)).toEqual({ url: '/v1/models', auth: `Bearer ${VALUE}`, body: '' });
    expect(p.events.filter((e) => e.type === 'credential')).toEqual([
      expect.objectContaining({ type: 'credential', host: 'api.test', port: bound.port, credential: expect.objectContaining({ env: 'MODEL_API_KEY' }) }),
    ]);
    // A request without the placeholder goes through unchanged.
    await httpsVia(p.socket, 'api.test', bound.port, { path: '/free', ca: jobCa.certPem });
    expect(bound.seen.at(-1)).toEqual({ url: '/free', auth: undefined, body: '' });
  } finally {
    await p.close();
  }
});

test('a client that does not trust the job CA fails its handshake, and nothing reaches the bound host (no tunnel instead)', async () => {
  const p = await startProxy();
  const before = bound.seen.length;
  try {
    const untrusting = await httpsVia(p.socket, 'api.test', bound.port, { headers: { authorization: `Bearer ${p.placeholder}` }, ca: operatorCa.certPem });
    expect(untrusting).toEqual({ tlsError: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    expect(bound.seen.length).toBe(before);
    expect(p.dials).toEqual([]);
    // Positive control: trusting the job's CA, the same request arrives.
    expect(await httpsVia(p.socket, 'api.test', bound.port, { ca: jobCa.certPem })).toMatchObject({ status: 200 });
    expect(bound.seen.length).toBe(before + 1);
  } finally {
    await p.close();
  }
});

test.each([
  ['in a header, over a tunnel to another allowed host', 'other'],
  ['in the URL, to the bound host', 'url'],
  ['in another header, to the bound host', 'header'],
  ['in the body, to the bound host', 'body'],
])('the placeholder %s is refused before it is sent; the same request without it goes through', async (_, how) => {
  const p = await startProxy();
  try {
    const withIt = (ph: string) =>
      how === 'other'
        ? // A tunnel to a host not bound: the proxy sees only its CONNECT, so the placeholder rides in the authority's name.
          connect(p.socket, `${ph}.other.test:${other.port}`).then((r) => (r.tunnel.destroy(), { connect: r.status }))
        : httpsVia(p.socket, 'api.test', bound.port, {
            path: how === 'url' ? `/v1?key=${ph}` : '/v1',
            headers: how === 'header' ? { 'x-forwarded-key': ph } : {},
            body: how === 'body' ? `{"stolen":"${'x'.repeat(70_000)}${ph}"}` : undefined,
            ca: jobCa.certPem,
          });
    const refused = await withIt(p.placeholder);
    if (how === 'other') expect(refused).toEqual({ connect: 403 });
    else expect(refused).toMatchObject({ status: 403, body: expect.stringContaining('credential_misuse') });
    expect(misuse(p.events)).toHaveLength(1);
    expect([...bound.seen, ...other.seen].some((s) => s.url.includes(p.placeholder) || s.body.includes(p.placeholder))).toBe(false);
    if (how !== 'body') expect(p.dials).toEqual([]);
    const control = await withIt('not-a-placeholder');
    if (how === 'other')
      expect(control).toEqual({ connect: 403 }); // that name does not resolve: the control is the plain host below
    else expect(control).toMatchObject({ status: 200 });
    if (how === 'other') expect(await connect(p.socket, `other.test:${other.port}`).then((r) => (r.tunnel.destroy(), r.status))).toBe(200);
  } finally {
    await p.close();
  }
});

test('over plain http the placeholder goes to no host, the bound one included; the same request without it does', async () => {
  const p = await startProxy({ hosts: [`api.test:${bound.port}`, `plain.test:${plain.port}`] });
  const get = (headers: Record<string, string>) =>
    new Promise<number>((resolve, reject) => {
      http
        .request(
          { socketPath: p.socket, path: `http://plain.test:${plain.port}/x`, headers: { host: `plain.test:${plain.port}`, ...headers } },
          (res) => (res.resume(), resolve(res.statusCode ?? 0)),
        )
        .on('error', reject)
        .end();
    });
  try {
    expect(await get({ authorization: `Bearer ${p.placeholder}` })).toBe(403);
    expect(misuse(p.events)[0]).toMatchObject({ method: 'HTTP', detail: expect.stringContaining('over plain http') });
    expect(plain.seen).toEqual([]);
    expect(await get({ authorization: 'Bearer anything' })).toBe(200);
    expect(plain.seen).toEqual(['/x Bearer anything']);
  } finally {
    await p.close();
  }
});

test('outside its phases the placeholder is refused at its own host', async () => {
  const p = await startProxy({ active: false });
  try {
    const r = await httpsVia(p.socket, 'api.test', bound.port, { headers: { authorization: `Bearer ${p.placeholder}` }, ca: jobCa.certPem });
    expect(r).toMatchObject({ status: 403, body: expect.stringContaining('outside the phases') });
  } finally {
    await p.close();
  }
});

test('an upstream the proxy cannot verify gets no request: the step gets a 502, not a way around', async () => {
  // The proxy trusts the operator's CA; this server's certificate is signed by another.
  const seen: string[] = [];
  const rogue = https.createServer(await hostCert(jobCa, 'api.test'), (req, res) => (seen.push(req.url ?? ''), res.end('rogue')));
  await new Promise<void>((r) => rogue.listen(0, '127.0.0.1', r));
  const port = (rogue.address() as net.AddressInfo).port;
  const p = await startProxy({ hosts: [`api.test:${port}`] }, [`api.test:${port}`]);
  try {
    const r = await httpsVia(p.socket, 'api.test', port, { headers: { authorization: `Bearer ${p.placeholder}` }, ca: jobCa.certPem });
    expect(r).toMatchObject({ status: 502, body: expect.stringContaining('the upstream failed') });
    expect(seen).toEqual([]);
  } finally {
    await p.close();
    rogue.closeAllConnections();
    await new Promise((r) => rogue.close(r));
  }
});

test('a bound host that quotes the value back has it masked, in its headers and its body, at its length', async () => {
  const p = await startProxy();
  try {
    const r = await httpsVia(p.socket, 'api.test', bound.port, {
      path: '/echo',
      headers: { authorization: `Bearer ${p.placeholder}`, 'accept-encoding': 'gzip' },
      ca: jobCa.certPem,
    });
    // Positive control: the server did get the value, and quoted it.
    expect(bound.seen.at(-1)).toMatchObject({ url: '/echo', auth: `Bearer ${VALUE}` });
    expect(r).toEqual({ status: 401, body: `bad key: Bearer ${'*'.repeat(VALUE.length)} (identity)` });
  } finally {
    await p.close();
  }
});

test.each([[1], [3], [7], [1000]])('the mask finds a value split over chunks of %i bytes, and keeps the length', async (size) => {
  const text = `a${VALUE}b${VALUE}${VALUE}c`;
  const out: Buffer[] = [];
  const mask = valueMask([VALUE]);
  mask.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((r) => mask.on('end', r));
  for (let i = 0; i < text.length; i += size) mask.write(Buffer.from(text.slice(i, i + size)));
  mask.end();
  await done;
  const stars = '*'.repeat(VALUE.length);
  expect(Buffer.concat(out).toString()).toBe(`a${stars}b${stars}${stars}c`);
});

test('a client that sends its TLS hello with the CONNECT, before the answer, is served the same', async () => {
  const p = await startProxy();
  try {
    // The client's TLS runs over a stream of this test's: its first write is the hello.
    const toProxy: Buffer[] = [];
    const wire = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, done) {
        toProxy.push(chunk);
        done();
      },
    });
    const client = tls.connect({ socket: wire, servername: 'api.test', ca: jobCa.certPem });
    await new Promise((r) => setImmediate(r));
    const raw = net.connect(p.socket);
    await new Promise((r) => raw.once('connect', r));
    raw.write(Buffer.concat([Buffer.from(`CONNECT api.test:${bound.port} HTTP/1.1\r\nHost: api.test:${bound.port}\r\n\r\n`), ...toProxy.splice(0)]));
    // The answer to the CONNECT, then the proxy's TLS, fed to the client's.
    let answered = false;
    let buf = Buffer.alloc(0);
    raw.on('data', (c: Buffer) => {
      if (answered) return void wire.push(c);
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      answered = true;
      expect(buf.subarray(0, end).toString()).toMatch(/^HTTP\/1\.1 200/);
      if (buf.length > end + 4) wire.push(buf.subarray(end + 4));
    });
    const flush = setInterval(() => {
      for (const c of toProxy.splice(0)) raw.write(c);
    }, 5);
    try {
      await new Promise((r) => client.once('secureConnect', r));
      client.write(`GET /pipelined HTTP/1.1\r\nHost: api.test:${bound.port}\r\nConnection: close\r\n\r\n`);
      let answer = '';
      client.on('data', (c: Buffer) => (answer += c));
      await new Promise((r) => client.once('end', r));
      expect(answer).toMatch(/^HTTP\/1\.1 200/);
      expect(bound.seen.at(-1)?.url).toBe('/pipelined');
    } finally {
      clearInterval(flush);
      raw.destroy();
    }
  } finally {
    await p.close();
  }
});
