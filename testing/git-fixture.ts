/**
 * Git repositories served over smart HTTP on 127.0.0.2 (`git http-backend` behind a
 * small Node handler: dumb HTTP cannot fetch a single commit). Steps reach it only
 * through the egress proxy, with an operator exception for its address and port. Not
 * 127.0.0.1: a step's proxy settings keep 127.0.0.1 local (its own loopback), so a URL
 * naming it would never reach the proxy; the rest of 127/8 goes through it, and on the
 * host it is loopback all the same.
 *
 * The end-to-end suite starts one server for all its files (global set-up) and puts
 * its root and port in DRAFTSMAN_TEST_GIT_ROOT / DRAFTSMAN_TEST_GIT_PORT; programs
 * outside jest (benchmarks, chaos) get a server of their own per fixture.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface GitServer {
  port: number;
  root: string;
  stop(): Promise<void>;
}

export interface GitFixture {
  /** http:// URL of the repository on 127.0.0.2. */
  url: string;
  /** Commits oldest first; each writes `marker` with the text `commit-N`. */
  commits: string[];
  /** The branch head (the newest commit). */
  head: string;
  /** The operator exception that lets steps reach the server through the proxy (DRAFTSMAN_EGRESS_EXCEPTIONS). */
  egressException: string;
  /**
   * The bare repository on disk, for a test's own git commands. The suite's server runs in
   * jest's process (which runs the tests too, on 2 cores): a synchronous request to it from
   * a test would wait for an answer it blocks.
   */
  path: string;
  stop(): Promise<void>;
}

/** A request under this path is accepted and never answered: a remote that hangs. */
export const HANGING_REPO = 'hangs.git';
/** The loopback address the fixtures listen on (see above). */
export const GIT_HOST = '127.0.0.2';

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'fixture',
      GIT_AUTHOR_EMAIL: 'fixture@localhost',
      GIT_COMMITTER_NAME: 'fixture',
      GIT_COMMITTER_EMAIL: 'fixture@localhost',
    },
  }).trim();

/** Splits a CGI response's header block from its body. */
function cgiHead(buf: Buffer): { status: number; headers: Record<string, string>; rest: Buffer } | null {
  const crlf = buf.indexOf('\r\n\r\n');
  const lf = buf.indexOf('\n\n');
  const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf : lf;
  if (end < 0) return null;
  const sep = end === crlf ? 4 : 2;
  let status = 200;
  const headers: Record<string, string> = {};
  for (const line of buf.subarray(0, end).toString('latin1').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    const name = line.slice(0, i).trim();
    const value = line.slice(i + 1).trim();
    if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0]);
    else headers[name] = value;
  }
  return { status, headers, rest: buf.subarray(end + sep) };
}

/** Serves every bare repository under `root` over smart HTTP on 127.0.0.2 (port 0: any free one). */
export async function startGitServer(root: string, port = 0): Promise<GitServer> {
  const held = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fixture');
    if (url.pathname.startsWith(`/${HANGING_REPO}/`)) {
      held.add(req.socket);
      req.socket.on('close', () => held.delete(req.socket));
      return;
    }
    const child = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        ...(req.headers['content-length'] ? { CONTENT_LENGTH: req.headers['content-length'] } : {}),
        HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
        GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
        REMOTE_ADDR: '127.0.0.1',
      },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    req.pipe(child.stdin);
    child.stdin.on('error', () => undefined);
    let head = Buffer.alloc(0);
    let started = false;
    child.stdout.on('data', (chunk: Buffer) => {
      if (started) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const parsed = cgiHead(head);
      if (!parsed) return;
      started = true;
      res.writeHead(parsed.status, parsed.headers);
      if (parsed.rest.length) res.write(parsed.rest);
    });
    child.on('close', () => {
      if (!started) res.writeHead(502).end('git http-backend gave no answer\n');
      else res.end();
    });
    res.on('close', () => child.kill('SIGKILL'));
  });
  await new Promise<void>((resolve) => server.listen(port, GIT_HOST, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    root,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of held) s.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A repository with `count` commits, served over smart HTTP on 127.0.0.2. */
export async function startGitFixture(count = 3): Promise<GitFixture> {
  const sharedRoot = process.env.DRAFTSMAN_TEST_GIT_ROOT;
  const sharedPort = Number(process.env.DRAFTSMAN_TEST_GIT_PORT) || 0;
  const root = sharedRoot ?? fs.mkdtempSync(path.join(os.tmpdir(), 'draftsman-git-'));
  const name = `repo-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'draftsman-git-work-'));
  git(work, 'init', '-q', '-b', 'main');
  const commits: string[] = [];
  for (let i = 1; i <= count; i++) {
    fs.writeFileSync(path.join(work, 'marker'), `commit-${i}\n`);
    git(work, 'add', 'marker');
    git(work, 'commit', '-q', '-m', `commit ${i}`);
    commits.push(git(work, 'rev-parse', 'HEAD'));
  }
  const bare = path.join(root, `${name}.git`);
  git(root, 'clone', '-q', '--bare', work, bare);
  fs.rmSync(work, { recursive: true, force: true });
  // As the big hosts do: a fetch of one reachable commit by its id is served.
  git(bare, 'config', 'uploadpack.allowReachableSHA1InWant', 'true');

  const own = sharedRoot && sharedPort ? null : await startGitServer(root);
  const port = own?.port ?? sharedPort;
  return {
    url: `http://${GIT_HOST}:${port}/${name}.git`,
    commits,
    head: commits[commits.length - 1]!,
    egressException: `${GIT_HOST}:${port}`,
    path: bare,
    async stop() {
      await own?.stop();
      fs.rmSync(own ? root : bare, { recursive: true, force: true });
    },
  };
}
