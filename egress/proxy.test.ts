/**
 * The proxy's protocol side on a Unix socket, with a stub resolver. The only packets
 * sent go to servers these tests start on 127.0.0.1, reached through an operator
 * exception; every other refusal is decided before any dial (a recording dialer shows it).
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseAllowEntry, parseExceptions, type EgressPolicy, type Resolver } from '../common/egress-policy';
import { createEgressProxy, parseAuthority, tcpDialer, type EgressEvent } from './proxy';

let dir: string;
let echo: net.Server;
let echoPort: number;
let web: http.Server;
let webPort: number;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-egress-'));
  echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoPort = (echo.address() as net.AddressInfo).port;
  web = http.createServer((req, res) => res.end(`host=${req.headers.host} path=${req.url} proxy-auth=${req.headers['proxy-authorization'] ?? '-'}`));
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  webPort = (web.address() as net.AddressInfo).port;
});
afterAll(async () => {
  await new Promise((r) => echo.close(r));
  await new Promise((r) => web.close(r));
  fs.rmSync(dir, { recursive: true, force: true });
});

const stubResolver: Resolver = async (host) => {
  if (host === 'fixture.test') return ['127.0.0.1'];
  if (host === 'public.test') return ['93.184.215.14'];
  throw new Error(`ENOTFOUND ${host}`);
};

let n = 0;
async function startProxy(policy: EgressPolicy) {
  const events: EgressEvent[] = [];
  const dials: string[] = [];
  const socket = path.join(dir, `p${n++}.sock`);
  const server = createEgressProxy({
    policy: () => policy,
    resolve: stubResolver,
    dial: (address, port) => {
      dials.push(`${address}:${port}`);
      return tcpDialer(address, port);
    },
    onEvent: (e) => events.push(e),
  });
  await new Promise<void>((r) => server.listen(socket, r));
  return { socket, events, dials, close: () => new Promise((r) => server.close(r)) };
}

/** Sends a CONNECT over the socket; resolves with the status line and the socket for the tunnel. */
function connectVia(socket: string, authority: string): Promise<{ status: number; body: string; tunnel: net.Socket }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socket);
    let buf = '';
    s.on('error', reject);
    s.once('connect', () => s.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`));
    const onData = (c: Buffer) => {
      buf += c.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(buf)?.[1]);
      if (status === 200) {
        s.off('data', onData);
        resolve({ status, body: '', tunnel: s });
      } else {
        s.on('end', () => resolve({ status, body: buf.slice(end + 4), tunnel: s }));
      }
    };
    s.on('data', onData);
  });
}

function getVia(socket: string, url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, method: 'GET', path: url, headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const policyOf = (allow: string[], exceptions: string[]): EgressPolicy => ({
  allow: allow.flatMap((e) => parseAllowEntry(e)),
  exceptions: parseExceptions(exceptions),
});

describe('parseAuthority', () => {
  it.each([
    ['example.org:443', { host: 'example.org', port: 443 }],
    ['[::1]:8080', { host: '::1', port: 8080 }],
    ['example.org', null],
    ['example.org:0', null],
    ['user@example.org:443', null],
    ['http://example.org:443', null],
  ])('%s', (a, expected) => expect(parseAuthority(a)).toEqual(expected));
});

test('CONNECT to the allowed fixture tunnels both ways and counts the bytes; the control plane ports next to it are refused before any dial', async () => {
  const p = await startProxy(policyOf(['*.example.org', `127.0.0.1:${echoPort}`], [`127.0.0.1:${echoPort}`, `fixture.test:${webPort}`]));
  try {
    const ok = await connectVia(p.socket, `127.0.0.1:${echoPort}`);
    expect(ok.status).toBe(200);
    const echoed = await new Promise<string>((resolve) => {
      ok.tunnel.once('data', (c: Buffer) => resolve(c.toString()));
      ok.tunnel.write('ping through the tunnel');
    });
    expect(echoed).toBe('ping through the tunnel');
    ok.tunnel.end();
    await new Promise((r) => ok.tunnel.on('close', r));

    for (const port of [3000, 7233, 8233, 54329]) {
      const denied = await connectVia(p.socket, `127.0.0.1:${port}`);
      expect(denied.status).toBe(403);
      expect(denied.body).toMatch(/not in the egress allow list/);
    }
    const literal = await connectVia(p.socket, `[::ffff:127.0.0.1]:7233`);
    expect(literal.status).toBe(403);
    const bad = await connectVia(p.socket, 'no-port.example.org');
    expect(bad.status).toBe(400);

    expect(p.dials).toEqual([`127.0.0.1:${echoPort}`]);
    await new Promise((r) => setTimeout(r, 50));
    const closed = p.events.find((e) => e.type === 'closed');
    expect(closed).toMatchObject({ host: '127.0.0.1', port: echoPort, bytesOut: 23, bytesIn: 23, method: 'CONNECT' });
    expect(p.events.filter((e) => e.type === 'denied').map((e) => e.port)).toEqual([3000, 7233, 8233, 54329, 7233]);
  } finally {
    await p.close();
  }
});

test('an allowed public name is dialled at the address the policy checked, never looked up again', async () => {
  const dialled: string[] = [];
  const server = createEgressProxy({
    policy: () => policyOf(['public.test'], []),
    resolve: stubResolver,
    dial: (address, port) => {
      dialled.push(`${address}:${port}`);
      // No packet leaves: a socket that fails at once stands for the unreachable address.
      const s = new net.Socket();
      process.nextTick(() => s.emit('error', new Error('stub dialer')));
      return s;
    },
  });
  const socket = path.join(dir, 'pub.sock');
  await new Promise<void>((r) => server.listen(socket, r));
  try {
    const r = await connectVia(socket, 'public.test:443');
    expect(r.status).toBe(502);
    expect(dialled).toEqual(['93.184.215.14:443']);
  } finally {
    await new Promise((r) => server.close(r));
  }
});

test('plain HTTP is forwarded to an allowed fixture without the proxy credentials; a Host header naming another host is refused', async () => {
  const p = await startProxy(policyOf([`fixture.test:${webPort}`], [`fixture.test:${webPort}`]));
  try {
    const ok = await getVia(p.socket, `http://fixture.test:${webPort}/repo.git/info/refs?service=git-upload-pack`, {
      host: `fixture.test:${webPort}`,
      'proxy-authorization': 'Basic c2VjcmV0',
    });
    expect(ok).toEqual({ status: 200, body: `host=fixture.test:${webPort} path=/repo.git/info/refs?service=git-upload-pack proxy-auth=-` });

    const mismatch = await getVia(p.socket, `http://fixture.test:${webPort}/`, { host: 'internal.test' });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body).toMatch(/does not match/);

    const originForm = await getVia(p.socket, '/just-a-path');
    expect(originForm.status).toBe(400);

    const refused = await getVia(p.socket, `http://127.0.0.1:${echoPort}/`, { host: `127.0.0.1:${echoPort}` });
    expect(refused.status).toBe(403);
    expect(p.dials).toEqual([`127.0.0.1:${webPort}`]);
  } finally {
    await p.close();
  }
});

/** Writes raw bytes to the proxy's socket; the status of its answer (0 when it closed without one). */
function rawVia(socket: string, request: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socket);
    let buf = '';
    s.on('error', reject);
    s.once('connect', () => s.write(request));
    s.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      // One answer is all a test needs.
      if (/\r\n\r\n/.test(buf)) s.end();
    });
    s.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(buf)?.[1] ?? 0), text: buf }));
  });
}

describe('request framing two hops could read apart is refused before any dial', () => {
  const host = () => `fixture.test:${webPort}`;
  it.each([
    [
      'both Content-Length and Transfer-Encoding',
      (h: string) => `POST http://${h}/ HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    ],
    ['two Content-Length headers', (h: string) => `POST http://${h}/ HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nbody`],
    ['a GET with a body', (h: string) => `GET http://${h}/ HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 4\r\n\r\nbody`],
    ['a GET with a chunked body', (h: string) => `GET http://${h}/ HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n`],
    ['a HEAD with a body', (h: string) => `HEAD http://${h}/ HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 4\r\n\r\nbody`],
  ])('%s', async (_what, request) => {
    const p = await startProxy(policyOf([host()], [host()]));
    try {
      const r = await rawVia(p.socket, request(host()));
      expect(r.status).toBe(400);
      expect(p.dials).toEqual([]);
      // Positive control: a POST with one Content-Length and a GET without a body pass.
      expect(
        (await rawVia(p.socket, `POST http://${host()}/ok HTTP/1.1\r\nHost: ${host()}\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody`)).status,
      ).toBe(200);
      expect((await rawVia(p.socket, `GET http://${host()}/ok HTTP/1.1\r\nHost: ${host()}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)).status).toBe(
        200,
      );
    } finally {
      await p.close();
    }
  });
});

test('an operator exception lifts the address rules for its own port only: a CONNECT to the same host on another allowed port is refused', async () => {
  const p = await startProxy(policyOf([`127.0.0.1:${echoPort}`, `127.0.0.1:${webPort}`], [`127.0.0.1:${echoPort}`]));
  try {
    const other = await connectVia(p.socket, `127.0.0.1:${webPort}`);
    expect(other.status).toBe(403);
    expect(other.body).toMatch(/loopback/);
    const own = await connectVia(p.socket, `127.0.0.1:${echoPort}`);
    expect(own.status).toBe(200);
    own.tunnel.end();
    expect(p.dials).toEqual([`127.0.0.1:${echoPort}`]);
  } finally {
    await p.close();
  }
});
