/**
 * The egress service's keeping of a job's CA, with a stub store: made before it listens
 * for a job with credentials, the same after a restart, gone with the job; none for a
 * job without credentials.
 */
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JOB_CA_FILE, jobCaKeyPath, jobKey, SOCKET_NAME } from '../common/egress-layout';
import { createLogger } from '../common/logger';
import type { EgressJobView } from '../db/egress-store';
import { liveCredentials } from './credentials';
import { EgressService } from './service';

const DEPLOYMENT = 'd1';
let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-egress-svc-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const credential = { secret: 'k', hosts: ['api.example.com:443'], header: 'authorization', format: '{value}', env: 'KEY', phases: ['setup' as const] };
const views: Record<string, EgressJobView> = {
  'with-credentials': { status: 'running', spec: { credentials: [credential] }, running: null, placeholders: {} },
  plain: { status: 'running', spec: {}, running: null, placeholders: {} },
};

function service(): EgressService {
  return new EgressService({
    socketDir: dir,
    deployment: DEPLOYMENT,
    store: { view: async (id) => views[id] ?? null, denied: async () => undefined, add: async () => undefined, credentialUsed: async () => undefined },
    operator: { defaults: [], ceiling: 'any', presets: {}, exceptions: [] },
    logger: createLogger('ERROR', 'test-egress'),
    rescanMs: 60_000,
  });
}

function addJob(jobId: string): string {
  const key = jobKey(jobId, DEPLOYMENT);
  fs.mkdirSync(path.join(dir, key));
  fs.writeFileSync(path.join(dir, key, 'job.json'), JSON.stringify({ jobId, deployment: DEPLOYMENT }));
  return key;
}

test("a job with credentials gets its CA before its socket; a restart keeps it; the job's end takes its key", async () => {
  const key = addJob('with-credentials');
  const plainKey = addJob('plain');
  let s = service();
  await s.start();
  try {
    expect(s.jobs().sort()).toEqual(['plain', 'with-credentials']);
    expect(fs.existsSync(path.join(dir, key, SOCKET_NAME))).toBe(true);
    const cert = fs.readFileSync(path.join(dir, key, JOB_CA_FILE), 'utf8');
    expect(new X509Certificate(cert).ca).toBe(true);
    const keyFile = jobCaKeyPath(dir, key);
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(keyFile)).mode & 0o777).toBe(0o700);
    // The key is outside the job's folder, which containers mount.
    expect(keyFile.startsWith(path.join(dir, key))).toBe(false);
    expect(fs.existsSync(path.join(dir, plainKey, JOB_CA_FILE))).toBe(false);

    await s.stop();
    s = service();
    await s.start();
    expect(fs.readFileSync(path.join(dir, key, JOB_CA_FILE), 'utf8')).toBe(cert);

    fs.rmSync(path.join(dir, key), { recursive: true });
    await s.rescan();
    expect(s.jobs()).toEqual(['plain']);
    expect(fs.existsSync(keyFile)).toBe(false);
  } finally {
    await s.stop();
  }
});

test('a CA key whose job folder went while the service was down is removed at its start', async () => {
  const orphan = jobCaKeyPath(dir, 'a'.repeat(20));
  fs.mkdirSync(path.dirname(orphan), { recursive: true, mode: 0o700 });
  fs.writeFileSync(orphan, 'key', { mode: 0o600 });
  const s = service();
  await s.start();
  try {
    expect(fs.existsSync(orphan)).toBe(false);
  } finally {
    await s.stop();
  }
});

describe('liveCredentials', () => {
  const spec = { repo: 'https://Git.Example.com/org/r.git', gitTokenSecret: 'git-token', credentials: [credential] };
  const placeholders = { KEY: 'draftsman-credential-1', DRAFTSMAN_GIT_TOKEN: 'draftsman-credential-2' };
  it.each([
    ['the clone', 'clone', ['KEY:false', 'DRAFTSMAN_GIT_TOKEN:true:git.example.com:443']],
    ['a setup step', 'setup', ['KEY:true']],
    ['a loop step', 'loop', ['KEY:false']],
  ])('while %s runs', (_, kind, expected) => {
    const live = liveCredentials({ spec, running: { kind, index: 0 }, placeholders });
    expect(live.map((c) => [c.env, c.active, ...(c.env === 'DRAFTSMAN_GIT_TOKEN' ? c.hosts : [])].join(':'))).toEqual(expected);
  });

  it('leaves out a credential whose placeholder no step was given yet', () => {
    expect(liveCredentials({ spec, running: { kind: 'setup', index: 0 }, placeholders: {} })).toEqual([]);
  });
});

test('a job whose view cannot be read is listened for at the next scan, and the others at once', async () => {
  const down = addJob('with-credentials');
  addJob('plain');
  let failures = 1;
  const s = new EgressService({
    socketDir: dir,
    deployment: DEPLOYMENT,
    store: {
      view: async (id) => {
        if (id === 'with-credentials' && failures-- > 0) throw new Error('the database restarts');
        return views[id] ?? null;
      },
      denied: async () => undefined,
      add: async () => undefined,
      credentialUsed: async () => undefined,
    },
    operator: { defaults: [], ceiling: 'any', presets: {}, exceptions: [] },
    logger: createLogger('ERROR', 'test-egress').child({}, { level: 'silent' }),
    rescanMs: 60_000,
  });
  await s.start();
  try {
    expect(s.jobs()).toEqual(['plain']);
    expect(fs.existsSync(path.join(dir, down, SOCKET_NAME))).toBe(false);
    await s.rescan();
    expect(s.jobs().sort()).toEqual(['plain', 'with-credentials']);
    expect(fs.existsSync(path.join(dir, down, JOB_CA_FILE))).toBe(true);
  } finally {
    await s.stop();
  }
});
