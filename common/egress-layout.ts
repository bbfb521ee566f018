/**
 * Where a job's way out lives, agreed between the runner (which creates the job's
 * directory and its holder container) and the egress service (which listens on the
 * socket in it). Pure: names and paths only.
 *
 *   <socket dir>/<key>/job.json     which job the directory is for
 *   <socket dir>/<key>/proxy.sock   the service's listener for that job
 *
 * The holder mounts <socket dir>/<key> at /egress and forwards 127.0.0.1:3128 in the
 * network namespace it shares with the job's steps to /egress/proxy.sock.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';

/** The port on the steps' loopback where the holder's forwarder listens. */
export const PROXY_PORT = 3128;
export const PROXY_URL = `http://127.0.0.1:${PROXY_PORT}`;
/** Where the holder sees the job's directory. */
export const HOLDER_MOUNT = '/egress';
export const SOCKET_NAME = 'proxy.sock';
export const JOB_FILE = 'job.json';
/** A Unix socket path longer than this does not fit in sockaddr_un (108 bytes with its NUL). */
export const MAX_SOCKET_PATH = 107;

/** A short, fixed name per job and deployment: job ids can be long, and socket paths cannot. */
export function jobKey(jobId: string, deployment: string): string {
  return createHash('sha256').update(`${deployment}\0${jobId}`).digest('hex').slice(0, 20);
}

export function jobDir(socketDir: string, jobId: string, deployment: string): string {
  return path.join(socketDir, jobKey(jobId, deployment));
}

export function socketPath(socketDir: string, jobId: string, deployment: string): string {
  return path.join(jobDir(socketDir, jobId, deployment), SOCKET_NAME);
}

/** Why a socket directory cannot hold the sockets (path too long), or null. */
export function socketDirProblem(socketDir: string): string | null {
  if (!path.isAbsolute(socketDir)) return `${socketDir} must be an absolute path`;
  const longest = path.join(socketDir, 'x'.repeat(20), SOCKET_NAME);
  const bytes = Buffer.byteLength(longest);
  return bytes > MAX_SOCKET_PATH
    ? `${socketDir} is too long for Unix socket paths (${bytes} bytes with a job's socket; at most ${MAX_SOCKET_PATH}): choose a shorter DRAFTSMAN_EGRESS_SOCKET_DIR`
    : null;
}

/**
 * What a step sees: every spelling of the proxy variables that common clients read
 * (libcurl, hence git over http, reads only the lower-case http_proxy), and local
 * addresses kept local so that a step's own servers stay reachable.
 */
export function proxyEnv(): Record<string, string> {
  const local = 'localhost,127.0.0.1,::1';
  return {
    http_proxy: PROXY_URL,
    https_proxy: PROXY_URL,
    HTTP_PROXY: PROXY_URL,
    HTTPS_PROXY: PROXY_URL,
    no_proxy: local,
    NO_PROXY: local,
  };
}
