/**
 * Where a job's way out lives, agreed between the runner (which creates the job's
 * directory and its holder container) and the egress service (which listens on the
 * socket in it). Pure: names and paths only.
 *
 *   <socket dir>/<key>/job.json     which job the directory is for
 *   <socket dir>/<key>/proxy.sock   the service's listener for that job
 *   <socket dir>/<key>/ca.pem       the job CA's certificate, for jobs with credentials
 *   <socket dir>/.ca/<key>.key      that CA's private key (root only; the holder does not see it)
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
/** The job CA's certificate (public): the egress service writes it before it listens, steps that hold a credential trust it. */
export const JOB_CA_FILE = 'ca.pem';
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

/** Where a job CA's private key is kept: outside every folder a container mounts. */
export function jobCaKeyPath(socketDir: string, key: string): string {
  return path.join(socketDir, '.ca', `${key}.key`);
}

/** Where a step that holds a credential finds the job's CA, and the bundle of its image's CAs and the job's. */
export const STEP_TRUST_DIR = '/tmp/draftsman';
export const STEP_JOB_CA = `${STEP_TRUST_DIR}/job-ca.pem`;
export const STEP_CA_BUNDLE = `${STEP_TRUST_DIR}/ca-bundle.pem`;
/** Where common images keep their system CAs (Debian and Alpine, then RHEL, then others). */
const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

/**
 * What a step that holds a credential's placeholder sees: the variables common clients
 * read their trust from (OpenSSL, Python requests, curl, git, Node, pip), all naming the
 * bundle of the image's own CAs and the job's, which the step writes into its /tmp
 * before its command (`jobTrustScript`). The job's variables set after the spec's.
 */
export function jobTrustEnv(caPem: string): Record<string, string> {
  return {
    DRAFTSMAN_JOB_CA_PEM: caPem,
    DRAFTSMAN_CA_BUNDLE: STEP_CA_BUNDLE,
    SSL_CERT_FILE: STEP_CA_BUNDLE,
    REQUESTS_CA_BUNDLE: STEP_CA_BUNDLE,
    CURL_CA_BUNDLE: STEP_CA_BUNDLE,
    GIT_SSL_CAINFO: STEP_CA_BUNDLE,
    PIP_CERT: STEP_CA_BUNDLE,
    NODE_EXTRA_CA_CERTS: STEP_JOB_CA,
  };
}

/** Writes the job's CA and the bundle into the step's /tmp (a tmpfs of its own), from DRAFTSMAN_JOB_CA_PEM. */
export function jobTrustScript(): string {
  const system = SYSTEM_BUNDLES.map((f) => `'${f}'`).join(' ');
  return (
    `mkdir -p ${STEP_TRUST_DIR} && printf '%s\n' "$DRAFTSMAN_JOB_CA_PEM" > ${STEP_JOB_CA} && ` +
    `{ for f in ${system}; do if [ -r "$f" ]; then cat "$f"; break; fi; done; cat ${STEP_JOB_CA}; } > ${STEP_CA_BUNDLE}`
  );
}
