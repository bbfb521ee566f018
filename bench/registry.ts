/**
 * An npm registry stand-in for the warm-start benchmark: the packages of this project's
 * own node_modules, packed into tarballs on first use (kept in a folder across runs), served
 * on 127.0.0.2 with a stated latency before each answer and a bandwidth that all answers
 * share. A loopback registry with neither would make a download unrealistically free.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import { pack } from 'tar-stream';
import { GIT_HOST } from '../testing/git-fixture';

export interface RegistryOptions {
  /** Where the packages are found (every node_modules below it, nested ones included). */
  root: string;
  /** Where packed tarballs are kept across runs. */
  cacheDir: string;
  latencyMs: number;
  bytesPerSecond: number;
}

export interface Registry {
  url: string;
  hostPort: string;
  /** Requests answered and bytes sent since the start (or the last reset). */
  stats(): { requests: number; bytes: number };
  reset(): void;
  stop(): Promise<void>;
}

/** Every package under node_modules folders: name -> version -> folder. */
export function findPackages(root: string): Map<string, Map<string, string>> {
  const found = new Map<string, Map<string, string>>();
  const visit = (modules: string) => {
    if (!fs.existsSync(modules)) return;
    for (const entry of fs.readdirSync(modules)) {
      if (entry.startsWith('.')) continue;
      const dirs = entry.startsWith('@') ? fs.readdirSync(path.join(modules, entry)).map((e) => path.join(entry, e)) : [entry];
      for (const d of dirs) {
        const dir = path.join(modules, d);
        const manifest = path.join(dir, 'package.json');
        if (!fs.existsSync(manifest)) continue;
        const { name, version } = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: string; version?: string };
        if (!name || !version) continue;
        if (!found.has(name)) found.set(name, new Map());
        if (!found.get(name)!.has(version)) found.get(name)!.set(version, dir);
        visit(path.join(dir, 'node_modules'));
      }
    }
  };
  visit(path.join(root, 'node_modules'));
  return found;
}

/** A package folder as npm publishes it: every file but nested node_modules, under `package/`, gzipped. */
async function packFolder(dir: string): Promise<Buffer> {
  const tar = pack();
  const chunks: Buffer[] = [];
  tar.on('data', (c: unknown) => chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve, reject) => {
    tar.on('end', resolve);
    tar.on('error', reject);
  });
  const walk = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const p = path.join(rel, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') walk(p);
      } else if (entry.isFile()) {
        const full = path.join(dir, p);
        tar.entry({ name: `package/${p}`, mode: fs.statSync(full).mode & 0o777 }, fs.readFileSync(full));
      }
    }
  };
  walk('');
  tar.finalize();
  await ended;
  return zlib.gzipSync(Buffer.concat(chunks), { level: 6 });
}

const tarballName = (name: string, version: string) => `${name.split('/').pop()}-${version}.tgz`;

export async function startRegistry(opts: RegistryOptions): Promise<Registry> {
  const packages = findPackages(opts.root);
  fs.mkdirSync(opts.cacheDir, { recursive: true });
  const packed = new Map<string, { data: Buffer; integrity: string; shasum: string }>();
  async function tarball(name: string, version: string) {
    const key = `${name}@${version}`;
    if (packed.has(key)) return packed.get(key)!;
    const file = path.join(opts.cacheDir, `${name.replace('/', '+')}-${version}.tgz`);
    const data = fs.existsSync(file) ? fs.readFileSync(file) : await packFolder(packages.get(name)!.get(version)!);
    if (!fs.existsSync(file)) fs.writeFileSync(file, data);
    const t = { data, integrity: `sha512-${createHash('sha512').update(data).digest('base64')}`, shasum: createHash('sha1').update(data).digest('hex') };
    packed.set(key, t);
    return t;
  }

  let counts = { requests: 0, bytes: 0 };
  // One link for every answer: each chunk leaves no sooner than the bandwidth allows after the one before.
  let linkFreeAt = 0;
  const CHUNK = 16 * 1024;
  async function send(res: http.ServerResponse, status: number, type: string, body: Buffer) {
    await new Promise((r) => setTimeout(r, opts.latencyMs));
    res.writeHead(status, { 'content-type': type, 'content-length': body.length });
    for (let at = 0; at < body.length; at += CHUNK) {
      const chunk = body.subarray(at, at + CHUNK);
      const now = Date.now();
      linkFreeAt = Math.max(now, linkFreeAt) + (chunk.length / opts.bytesPerSecond) * 1000;
      if (linkFreeAt - now > 1) await new Promise((r) => setTimeout(r, linkFreeAt - now));
      if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
    }
    res.end();
    counts.requests++;
    counts.bytes += body.length;
  }

  let base = '';
  const server = http.createServer((req, res) => {
    void (async () => {
      const url = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).slice(1);
      const dash = url.indexOf('/-/');
      if (dash > 0) {
        const name = url.slice(0, dash);
        const file = url.slice(dash + 3);
        const version = [...(packages.get(name)?.keys() ?? [])].find((v) => tarballName(name, v) === file);
        if (!version) return send(res, 404, 'application/json', Buffer.from('{"error":"not found"}'));
        return send(res, 200, 'application/octet-stream', (await tarball(name, version)).data);
      }
      const versions = packages.get(url);
      if (!versions) return send(res, 404, 'application/json', Buffer.from('{"error":"not found"}'));
      const doc: Record<string, unknown> = { name: url, versions: {} as Record<string, unknown>, 'dist-tags': {} };
      let latest = '';
      for (const [version, dir] of versions) {
        const m = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
        const t = await tarball(url, version);
        const keep = [
          'name',
          'version',
          'dependencies',
          'optionalDependencies',
          'peerDependencies',
          'peerDependenciesMeta',
          'bin',
          'engines',
          'os',
          'cpu',
          'license',
        ];
        (doc.versions as Record<string, unknown>)[version] = {
          ...Object.fromEntries(keep.filter((k) => m[k] !== undefined).map((k) => [k, m[k]])),
          dist: { tarball: `${base}${url}/-/${tarballName(url, version)}`, integrity: t.integrity, shasum: t.shasum },
        };
        if (!latest || version.localeCompare(latest, undefined, { numeric: true }) > 0) latest = version;
      }
      doc['dist-tags'] = { latest };
      return send(res, 200, 'application/json', Buffer.from(JSON.stringify(doc)));
    })().catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, GIT_HOST, resolve));
  const port = (server.address() as { port: number }).port;
  base = `http://${GIT_HOST}:${port}/`;
  return {
    url: base,
    hostPort: `${GIT_HOST}:${port}`,
    stats: () => ({ ...counts }),
    reset: () => (counts = { requests: 0, bytes: 0 }),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
