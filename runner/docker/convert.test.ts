import type { StepRequest } from '../runner';
import {
  containerName,
  containerOptions,
  exitTimes,
  gvisorEgressProblem,
  holderName,
  holderOptions,
  measureOptions,
  parseDu,
  readyHolderDir,
  readyHolderName,
  readyHolderOptions,
  stepEnv,
  stepScript,
  volumeName,
  withJobTrust,
  type ContainerPolicy,
} from './convert';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const step: StepRequest = {
  jobId: 'job-1',
  kind: 'loop',
  index: 3,
  image: 'draftsman-runner:latest',
  command: 'echo hi',
  env: { FOO: 'bar' },
  timeoutSeconds: 60,
};
const proxied = { mode: 'proxy', socketDir: '/run/draftsman-egress', holderImage: 'draftsman-runner:latest' } as const;
const policy: ContainerPolicy = {
  deployment: 'd1',
  user: '1000:1000',
  memoryMb: 512,
  cpus: 1.5,
  pidsLimit: 256,
  stopGraceSeconds: 10,
  engineRequestSeconds: 60,
  toolImage: 'draftsman-runner:latest',
  logMaxBytes: 10 * 2 ** 20,
  network: proxied,
};
const now = new Date('2026-01-01T00:00:00Z');

describe('names', () => {
  it.each([
    [{ jobId: 'job-1', kind: 'clone', index: 0 }, 'd1', 'draftsman-d1-job-1-clone-0'],
    [{ jobId: 'job-1', kind: 'setup', index: 2 }, 'd1', 'draftsman-d1-job-1-setup-2'],
    [{ jobId: 'job-1', kind: 'until', index: 7 }, 'd1', 'draftsman-d1-job-1-until-7'],
    [{ jobId: 'job-1', kind: 'until', index: 7 }, 'other', 'draftsman-other-job-1-until-7'],
  ] as const)('container of %j in deployment %s is %s', (ref, deployment, name) => {
    expect(containerName(ref, deployment)).toBe(name);
  });

  it('workspace volume is per job and deployment', () => {
    expect(volumeName('job-1', 'd1')).toBe('draftsman-d1-job-1-workspace');
  });

  it('labels name the deployment and the job', () => {
    expect(containerOptions(step, policy, now).Labels).toMatchObject({
      'org.draftsman.managed': 'true',
      'org.draftsman.deployment': 'd1',
      'org.draftsman.job': 'job-1',
    });
  });
});

describe('containerOptions', () => {
  const opts = containerOptions(step, policy, now);
  const host = opts.HostConfig!;

  it.each([
    ["runs the command with sh -c, after the shell's TERM trap", opts.Cmd, ['sh', '-c', stepScript('echo hi')]],
    ['in /workspace', opts.WorkingDir, '/workspace'],
    ['as the configured non-root user', opts.User, '1000:1000'],
    ['drops every capability', host.CapDrop, ['ALL']],
    ['forbids privilege gain', host.SecurityOpt, ['no-new-privileges']],
    ['is not privileged', host.Privileged, false],
    ['has a read-only root filesystem', host.ReadonlyRootfs, true],
    ['limits memory', host.Memory, 512 * 1024 * 1024],
    ['gives no swap beyond memory', host.MemorySwap, 512 * 1024 * 1024],
    ['limits CPU', host.NanoCpus, 1.5e9],
    ['limits processes', host.PidsLimit, 256],
    ['is not removed by the engine (the runner reads its exit first)', host.AutoRemove, false],
    ['mounts only the job workspace', host.Mounts, [{ Type: 'volume', Source: 'draftsman-d1-job-1-workspace', Target: '/workspace', ReadOnly: false }]],
    ['binds no host path', host.Binds, undefined],
    ['is named deterministically', opts.name, 'draftsman-d1-job-1-loop-3'],
    ['keeps more engine log than Draftsman stores', host.LogConfig, { Type: 'json-file', Config: { 'max-size': '31m', 'max-file': '2' } }],
  ])('%s', (_name, actual, expected) => {
    expect(actual).toEqual(expected);
  });

  it('labels the container with job, placement, step and deadline', () => {
    expect(opts.Labels).toEqual({
      'org.draftsman.managed': 'true',
      'org.draftsman.deployment': 'd1',
      'org.draftsman.job': 'job-1',
      'org.draftsman.step.kind': 'loop',
      'org.draftsman.step.index': '3',
      'org.draftsman.placement': '1',
      'org.draftsman.deadline': String(now.getTime() / 1000 + 60),
    });
  });

  it('labels the container with its host once the worker knows it', () => {
    expect(containerOptions(step, { ...policy, host: 'host-a' }, now).Labels).toMatchObject({ 'org.draftsman.host': 'host-a' });
    expect(opts.Labels).not.toHaveProperty(['org.draftsman.host']);
  });

  it.each([
    ['the first placement keeps the names of versions before placements', undefined, 'draftsman-d1-job-1-loop-3'],
    ['placement 1', 1, 'draftsman-d1-job-1-loop-3'],
    ["a moved job's steps are new units", 2, 'draftsman-d1-job-1-p2-loop-3'],
    ['and again', 3, 'draftsman-d1-job-1-p3-loop-3'],
  ])('container name: %s', (_name, placement, name) => {
    expect(containerName({ jobId: 'job-1', kind: 'loop', index: 3, ...(placement ? { placement } : {}) }, 'd1')).toBe(name);
  });

  it.each([
    ["proxy: the job holder's namespace", proxied, 'container:draftsman-d1-job-1-holder'],
    ['none', { mode: 'none' } as const, 'none'],
    ['insecure: what the operator forced', { mode: 'insecure', network: 'host' } as const, 'host'],
  ])('network %s', (_name, network, mode) => {
    expect(containerOptions(step, { ...policy, network }, now).HostConfig!.NetworkMode).toBe(mode);
  });

  it('gives proxied steps every spelling of the proxy variables, and none to the others', () => {
    const env = containerOptions(step, policy, now).Env!;
    for (const name of ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY']) expect(env).toContain(`${name}=http://127.0.0.1:3128`);
    expect(env).toContain('no_proxy=localhost,127.0.0.1,::1');
    expect(containerOptions(step, { ...policy, network: { mode: 'none' } }, now).Env!.some((e) => /proxy=/i.test(e))).toBe(false);
  });

  it.each([
    ["the engine's default when none is set", undefined, undefined],
    ['gVisor when the operator asks for it', 'runsc', 'runsc'],
  ])('runtime: %s', (_name, runtime, expected) => {
    expect(containerOptions(step, { ...policy, runtime }, now).HostConfig!.Runtime).toBe(expected);
  });

  it('never mounts the Docker socket', () => {
    expect(JSON.stringify(opts)).not.toContain('docker.sock');
  });
});

describe('stepEnv', () => {
  it('passes the spec env and identifies the step; Draftsman names win', () => {
    const env = stepEnv({ ...step, env: { FOO: 'bar', HOME: '/root' } });
    expect(env).toEqual(expect.arrayContaining(['FOO=bar', 'HOME=/tmp', 'DRAFTSMAN_JOB_ID=job-1', 'DRAFTSMAN_STEP_KIND=loop', 'DRAFTSMAN_STEP_INDEX=3']));
    expect(env).not.toContain('HOME=/root');
  });

  it('has the init signal the whole process group of the step, whatever the spec sets', () => {
    const env = stepEnv({ ...step, env: { TINI_KILL_PROCESS_GROUP: '0' } });
    expect(env).toContain('TINI_KILL_PROCESS_GROUP=1');
    expect(env).not.toContain('TINI_KILL_PROCESS_GROUP=0');
  });
});

describe('exitTimes', () => {
  const t = (ms: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, 0, ms));
  test('a container that exited before the engine stamped its start started when it exited', () => {
    expect(exitTimes(t(218), t(217))).toEqual({ startedAt: t(217), finishedAt: t(217) });
  });
  test('ordinary times, and unknown ones, are kept as they are', () => {
    expect(exitTimes(t(100), t(350))).toEqual({ startedAt: t(100), finishedAt: t(350) });
    expect(exitTimes(null, t(350))).toEqual({ startedAt: null, finishedAt: t(350) });
    expect(exitTimes(t(100), null)).toEqual({ startedAt: t(100), finishedAt: null });
  });
});

describe('holderOptions', () => {
  const opts = holderOptions('job-1', { ...policy, network: proxied });
  const host = opts.HostConfig!;
  it.each([
    ['is named per job and deployment', opts.name, holderName('job-1', 'd1')],
    ['has no network but loopback', host.NetworkMode, 'none'],
    ['drops every capability', host.CapDrop, ['ALL']],
    ['cannot gain privileges', host.SecurityOpt, ['no-new-privileges']],
    ['has a read-only root', host.ReadonlyRootfs, true],
    ['runs as the step user', opts.User, '1000:1000'],
    ['is small', [host.Memory, host.PidsLimit], [64 * 2 ** 20, 256]],
    ['is restarted by the engine, so that later steps can join it', host.RestartPolicy, { Name: 'unless-stopped' }],
    ["mounts only its job's directory, read-only", host.Binds, [expect.stringMatching(/^\/run\/draftsman-egress\/[0-9a-f]{20}:\/egress:ro$/)]],
    [
      'forwards loopback 3128 to the socket',
      opts.Cmd,
      ['socat', expect.stringMatching(/^TCP-LISTEN:3128,bind=127\.0\.0\.1,fork/), 'UNIX-CONNECT:/egress/proxy.sock'],
    ],
    ['is labelled a holder', opts.Labels!['org.draftsman.role'], 'holder'],
  ])('%s', (_name, actual, expected) => {
    expect(actual).toEqual(expected);
  });

  it("mounts the sockets volume read-only when the worker runs in a container, and connects to its own job's socket in it", () => {
    const v = holderOptions('job-1', { ...policy, network: { ...proxied, socketVolume: 'draftsman-egress' } });
    expect(v.HostConfig!.Binds).toBeUndefined();
    expect(v.HostConfig!.Mounts).toEqual([{ Type: 'volume', Source: 'draftsman-egress', Target: '/egress', ReadOnly: true }]);
    expect(v.Cmd![2]).toMatch(/^UNIX-CONNECT:\/egress\/[0-9a-f]{20}\/proxy\.sock$/);
  });
});

describe('readyHolderOptions', () => {
  const ready = readyHolderOptions('0123456789ab', { ...policy, network: proxied });
  const job = holderOptions('job-1', { ...policy, network: proxied });
  it.each([
    ['is named for its slot, not for a job', ready.name, readyHolderName('0123456789ab', 'd1')],
    ['mounts its own dot-named folder, read-only', ready.HostConfig!.Binds, ['/run/draftsman-egress/.ready-0123456789ab:/egress:ro']],
    ['forwards to the socket of the folder it mounts', ready.Cmd, job.Cmd],
    ['carries the ready label and no job label', [ready.Labels!['org.draftsman.ready'], ready.Labels!['org.draftsman.job']], ['0123456789ab', undefined]],
    ['is labelled a holder of its deployment', [ready.Labels!['org.draftsman.role'], ready.Labels!['org.draftsman.deployment']], ['holder', 'd1']],
  ])('%s', (_name, actual, expected) => {
    expect(actual).toEqual(expected);
  });

  it("is as closed as a job's holder: the same image, user and limits", () => {
    const { Binds: _r, ...readyHost } = ready.HostConfig!;
    const { Binds: _j, ...jobHost } = job.HostConfig!;
    expect([ready.Image, ready.User, readyHost]).toEqual([job.Image, job.User, jobHost]);
  });

  it('has a folder the egress service does not listen in until a job takes it (a dot-name)', () => {
    expect(readyHolderDir('/run/draftsman-egress', 'ab')).toBe('/run/draftsman-egress/.ready-ab');
  });
});

describe('steps under gVisor (a forwarder in each step)', () => {
  const inStep = containerOptions(step, { ...policy, runtime: 'runsc', network: { ...proxied, forwarder: 'in-step' } }, now);
  it.each([
    ['runs under the runtime', inStep.HostConfig!.Runtime, 'runsc'],
    ['has no network but its own loopback (no holder to join)', inStep.HostConfig!.NetworkMode, 'none'],
    [
      "mounts only its job's socket folder, read-only",
      inStep.HostConfig!.Binds,
      [expect.stringMatching(/^\/run\/draftsman-egress\/[0-9a-f]{20}:\/egress:ro$/)],
    ],
    ['keeps the workspace mount', inStep.HostConfig!.Mounts!.map((m) => m.Target), ['/workspace']],
    [
      "passes the step's script as the wrapper's $0, the command unchanged in it",
      inStep.Cmd!.slice(0, 2).concat(inStep.Cmd!.slice(3)),
      ['sh', '-c', stepScript('echo hi')],
    ],
  ])('%s', (_name, actual, expected) => {
    expect(actual).toEqual(expected);
  });

  it("starts the forwarder to the job's socket and runs the command once it listens", () => {
    const wrapper = inStep.Cmd![2]!;
    expect(wrapper).toContain('socat TCP-LISTEN:3128,bind=127.0.0.1,fork,reuseaddr,backlog=128,nodelay UNIX-CONNECT:/egress/proxy.sock &');
    expect(wrapper).toContain("grep -q ':0C38 00000000:0000 0A' /proc/net/tcp");
    expect(wrapper.endsWith('exec sh -c "$0"')).toBe(true);
  });

  it("leaves steps under runc in the holder's namespace, with their command as it is", () => {
    const runc = containerOptions(step, policy, now);
    expect(runc.HostConfig!.NetworkMode).toBe('container:draftsman-d1-job-1-holder');
    expect(runc.HostConfig!.Binds).toBeUndefined();
    expect(runc.Cmd).toEqual(['sh', '-c', stepScript('echo hi')]);
  });

  it.each([
    ['host sockets allowed, a host folder', ['--network=none', '--host-uds=open'], undefined, null],
    ['every host socket use allowed', ['--host-uds=all'], undefined, null],
    ['the older spelling', ['--fsgofer-host-uds'], undefined, null],
    ['no host socket access', ['--network=none'], undefined, /--host-uds=open/],
    ['host sockets it may only create', ['--host-uds=create'], undefined, /--host-uds=open/],
    ["a sockets volume, which would show every job's socket", ['--host-uds=open'], 'draftsman-egress', /DRAFTSMAN_EGRESS_SOCKET_DIR/],
  ])('gVisor registered with %s', (_name, args, volume, problem) => {
    const found = gvisorEgressProblem(args, volume);
    if (problem === null) expect(found).toBeNull();
    else expect(found).toMatch(problem);
  });
});

describe('the workspace measurement', () => {
  const m = measureOptions('job-1', policy);
  it.each([
    ['runs du over the workspace, on one file system', m.Cmd, ['du', '-skx', '/workspace']],
    ['mounts the workspace read-only', m.HostConfig!.Mounts, [{ Type: 'volume', Source: volumeName('job-1', 'd1'), Target: '/workspace', ReadOnly: true }]],
    ['has no network', m.HostConfig!.NetworkMode, 'none'],
    [
      'may read anything and nothing more (a step can hide files from itself)',
      [m.User, m.HostConfig!.CapDrop, m.HostConfig!.CapAdd],
      ['0:0', ['ALL'], ['DAC_READ_SEARCH']],
    ],
    ["is Draftsman's own image", m.Image, 'draftsman-runner:latest'],
    ["is labelled with the job, so that the job's end removes a leftover", m.Labels!['org.draftsman.job'], 'job-1'],
  ])('%s', (_name, actual, expected) => {
    expect(actual).toEqual(expected);
  });

  it.each([
    ["du's answer", '2048\t/workspace\n', 2048 * 1024],
    ['after what it could not read', "du: cannot read directory '/workspace/x': Permission denied\n12\t/workspace\n", 12 * 1024],
    ['an empty answer', '', null],
    ['an error alone', "du: cannot access '/workspace'\n", null],
  ])('parses %s', (_name, output, bytes) => {
    expect(parseDu(output)).toBe(bytes);
  });
});

describe('stepScript', () => {
  it("keeps the command as it is, on a line of its own after the shell's TERM trap", () => {
    expect(stepScript('echo a; echo b')).toBe("trap 'exit 143' TERM\necho a; echo b");
    // A here-document or a comment on the first line still parses as the user wrote it.
    expect(stepScript('# note\ncat <<EOF\nx\nEOF').split('\n').slice(1).join('\n')).toBe('# note\ncat <<EOF\nx\nEOF');
  });
});

describe('withJobTrust', () => {
  const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----';
  const trusted = withJobTrust(step, pem);

  it("names the bundle in the variables common clients read, after the spec's own", () => {
    const env = containerOptions({ ...trusted, env: { ...trusted.env } }, policy, now).Env!;
    for (const name of ['SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO', 'PIP_CERT', 'DRAFTSMAN_CA_BUNDLE']) {
      expect(env).toContain(`${name}=/tmp/draftsman/ca-bundle.pem`);
    }
    expect(env).toContain('NODE_EXTRA_CA_CERTS=/tmp/draftsman/job-ca.pem');
    expect(env).toContain(`DRAFTSMAN_JOB_CA_PEM=${pem}`);
    expect(withJobTrust({ ...step, env: { SSL_CERT_FILE: '/mine.pem' } }, pem).env.SSL_CERT_FILE).toBe('/tmp/draftsman/ca-bundle.pem');
  });

  it("writes the image's CAs and then the job's into the bundle before the command, which runs as written", () => {
    // The script run by a real shell, with its fixed paths moved into a temporary folder.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-trust-'));
    try {
      const system = path.join(dir, 'system.pem');
      fs.writeFileSync(system, 'SYSTEM CAS\n');
      const script = trusted.command.replaceAll('/tmp/draftsman', path.join(dir, 'out')).replace("'/etc/ssl/certs/ca-certificates.crt'", `'${system}'`);
      const out = execFileSync('sh', ['-c', script], { env: { PATH: process.env.PATH, DRAFTSMAN_JOB_CA_PEM: pem } }).toString();
      expect(out).toBe('hi\n');
      expect(fs.readFileSync(path.join(dir, 'out', 'ca-bundle.pem'), 'utf8')).toBe(`SYSTEM CAS\n${pem}\n`);
      expect(fs.readFileSync(path.join(dir, 'out', 'job-ca.pem'), 'utf8')).toBe(`${pem}\n`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
