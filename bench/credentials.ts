/**
 * What a credential costs a request: one job whose step (Node, in the bench's node image)
 * sends 100 keep-alive HTTPS requests through the egress proxy to a host bound to a
 * credential (the proxy terminates TLS, swaps the placeholder, makes its own TLS
 * connection upstream) and 100 to a host that is not (a plain CONNECT tunnel), each
 * timed in the step. The two servers are alike: Node HTTPS on the host's loopback, one
 * certificate of their own CA (the operator's bundle and an operator exception).
 */
import fs from 'node:fs';
import https from 'node:https';
import type net from 'node:net';
import path from 'node:path';
import { GIT_HOST, startGitFixture } from '../testing/git-fixture';
import { fixtureCert } from '../testing/tls';
import { sleep } from '../testing/helpers';
import type { Measure } from './guarantees';
import { type BenchStack, benchWorker } from './harness';
import { summarize } from './stats';
import { NODE_IMAGE } from './warm';

export interface CredentialFixture {
  /** The stack's configuration for it: the secret, the operator's CA bundle. */
  env: Record<string, string>;
  /** The servers' host:port, for the stack's egress exceptions. */
  exceptions: string[];
  bound: string;
  plain: string;
  ca: string;
  stop(): Promise<void>;
}

const SECRET = 'bench-model-key-value-0123456789abcdef';

export async function credentialFixture(dir: string): Promise<CredentialFixture> {
  fs.mkdirSync(path.join(dir, 'secrets'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'secrets', 'bench-key'), SECRET);
  const tlsFiles = fixtureCert(dir, GIT_HOST);
  let wrong = 0;
  const servers = [0, 1].map((i) =>
    https.createServer({ key: tlsFiles.key, cert: tlsFiles.cert }, (req, res) => {
      // The bound server checks that the value arrived: a run that did not swap it is not measured as if it did.
      if (i === 0 && req.headers.authorization !== `Bearer ${SECRET}`) wrong++;
      res.end('ok');
    }),
  );
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.listen(0, GIT_HOST, r))));
  const [bound, plain] = servers.map((s) => `${GIT_HOST}:${(s.address() as net.AddressInfo).port}`) as [string, string];
  return {
    env: { DRAFTSMAN_SECRETS_DIR: path.join(dir, 'secrets'), DRAFTSMAN_EGRESS_CA_BUNDLE: tlsFiles.certPath },
    exceptions: [bound, plain],
    bound,
    plain,
    ca: tlsFiles.cert.toString(),
    async stop() {
      if (wrong > 0) console.error(`[bench] the bound server got ${wrong} requests without the credential's value`);
      for (const s of servers) s.closeAllConnections();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The step's client: one tunnel per host, then `n` requests on it, one after another,
 * each timed from its write to its response's end. Prints one JSON line per host.
 */
const CLIENT = `
const http = require('http'), https = require('https'), tls = require('tls'), fs = require('fs');
const ca = [process.env.FIXTURE_CA, fs.readFileSync(process.env.NODE_EXTRA_CA_CERTS, 'utf8')];
const run = (target, auth) => new Promise((resolve, reject) => {
  const [host, port] = target.split(':');
  http.request({ host: '127.0.0.1', port: 3128, method: 'CONNECT', path: target }).on('connect', (res, socket) => {
    if (res.statusCode !== 200) return reject(new Error('CONNECT ' + res.statusCode));
    const conn = tls.connect({ socket, ca, servername: undefined, host });
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    agent.createConnection = () => conn;
    const times = [];
    const next = (i) => {
      if (i === Number(process.env.N)) { conn.destroy(); return resolve(times); }
      const t = process.hrtime.bigint();
      https.get({ host, port, path: '/', agent, headers: { authorization: auth } }, (r) => {
        r.resume();
        r.on('end', () => { times.push(Number(process.hrtime.bigint() - t) / 1e6); next(i + 1); });
      }).on('error', reject);
    };
    next(0);
  }).on('error', reject).end();
});
(async () => {
  for (let round = 0; round < 2; round++) {
    console.log(JSON.stringify({ bound: await run(process.env.BOUND, 'Bearer ' + process.env.KEY) }));
    console.log(JSON.stringify({ plain: await run(process.env.PLAIN, 'Bearer not-a-credential') }));
  }
})().catch((e) => { console.error(e.message); process.exit(1); });
`;

export async function credentialLatency(stack: BenchStack, fixture: CredentialFixture, n: number): Promise<Measure[]> {
  const repo = await startGitFixture(1);
  const { worker, close } = await benchWorker(stack, { DRAFTSMAN_ALLOWED_IMAGES: [NODE_IMAGE] });
  try {
    const lines = await worker.runUntil(async () => {
      const { id } = await stack.jobs.start({
        repo: repo.url,
        commit: repo.head,
        image: NODE_IMAGE,
        egress: { allow: [fixture.bound, fixture.plain] },
        credentials: [{ secret: 'bench-key', hosts: [fixture.bound], header: 'Authorization', format: 'Bearer {value}', env: 'KEY' }],
        env: { CLIENT, FIXTURE_CA: fixture.ca, BOUND: fixture.bound, PLAIN: fixture.plain, N: String(n) },
        setup: ['node -e "$CLIENT"'],
      });
      const deadline = Date.now() + 300_000;
      let job = await stack.store.getJob(id);
      while (!job?.finishedAt && Date.now() < deadline) {
        await sleep(100);
        job = await stack.store.getJob(id);
      }
      const out = (await stack.store.logs.read(id, { afterId: 0, limit: 1000 })).flatMap((c) => (c.step === 'setup-0' ? c.lines.map((l) => l.x) : []));
      if (job?.status !== 'succeeded') throw new Error(`the credential measure's job ${job?.status ?? 'did not end'} (${job?.error ?? ''}): ${out.join('\n')}`);
      return out;
    });
    // Two rounds each; the first request of a round opens its tunnel and TLS (the handshakes), the rest reuse them.
    const rounds = lines.map((l) => JSON.parse(l) as { bound?: number[]; plain?: number[] });
    const all = (k: 'bound' | 'plain') => rounds.flatMap((r) => r[k] ?? []);
    const firsts = (k: 'bound' | 'plain') => rounds.flatMap((r) => (r[k] ? [r[k][0]!] : []));
    const rest = (k: 'bound' | 'plain') => rounds.flatMap((r) => (r[k] ?? []).slice(1));
    if (all('bound').length !== 2 * n || all('plain').length !== 2 * n) throw new Error(`the credential measure's step printed ${lines.join('\n')}`);
    const plainMedian = summarize(rest('plain')).median;
    return [
      {
        name: 'credential: request to a bound host',
        how: `${n} keep-alive HTTPS requests a round, 2 rounds, timed in the step (the first of each round apart)`,
        summary: summarize(rest('bound')),
      },
      { name: 'credential: request through a plain tunnel', how: 'the same, to a host not bound (the control)', summary: summarize(rest('plain')) },
      {
        name: 'credential: added latency per request',
        how: 'each bound request less the plain median',
        target: 'p50 < 5 ms',
        summary: summarize(rest('bound').map((x) => x - plainMedian)),
      },
      {
        name: 'credential: first request (CONNECT and TLS)',
        how: 'bound (two handshakes: the step with the proxy, the proxy upstream) less plain (one), per round',
        summary: summarize(firsts('bound').map((x, i) => x - (firsts('plain')[i] ?? 0))),
      },
    ];
  } finally {
    await Promise.allSettled([close(), repo.stop()]);
  }
}
