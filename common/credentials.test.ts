import { isInvalidJobSpecError } from './errors';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { applyCredentials, basicCredentials, boundTo, gitCredentialEnv, hostPort, type LiveCredential, newPlaceholder, placeholderIn } from './credentials';
import { resolveJobSpec, specInput } from './spec';

const policy = {
  image: 'draftsman-runner:latest',
  stepSeconds: 600,
  jobSeconds: 3600,
  allowedImages: ['draftsman-runner:latest'],
  allowFileRepos: false,
  egress: { defaults: [], ceiling: 'any' as const, presets: {}, exceptions: [] },
  max: { stepSeconds: 3600, jobSeconds: 7200, iterations: 1000, steps: 10 },
};
const base = {
  repo: 'https://example.com/org/repo.git',
  commit: 'a'.repeat(40),
  setup: ['true'],
  loop: { command: 'agent', maxIterations: 2 },
  egress: { allow: ['api.example.com', 'models.example.net:8443', '*.registry.example.org'] },
};
const key = { secret: 'model-key', hosts: ['api.example.com'], header: 'Authorization', format: 'Bearer {value}', env: 'MODEL_API_KEY' };

function refusal(input: unknown): { message: string; field: string } {
  try {
    resolveJobSpec(input, policy);
  } catch (err) {
    if (isInvalidJobSpecError(err)) return { message: err.message, field: err.field };
    throw err;
  }
  throw new Error('spec was accepted');
}

describe('credentials in a spec', () => {
  it('resolve with their defaults: the header lower case, hosts with their port, every phase the job has', () => {
    const spec = resolveJobSpec({ ...base, credentials: [{ ...key, hosts: ['API.example.com', 'models.example.net:8443'], format: undefined }] }, policy);
    expect(spec.credentials).toEqual([
      {
        secret: 'model-key',
        hosts: ['api.example.com:443', 'models.example.net:8443'],
        header: 'authorization',
        format: '{value}',
        env: 'MODEL_API_KEY',
        phases: ['setup', 'loop'],
      },
    ]);
  });

  it('are absent from a spec that has none, so that older specs resolve as before', () => {
    expect(resolveJobSpec(base, policy)).not.toHaveProperty('credentials');
  });

  it('resolve again from the input a rerun submits', () => {
    const spec = resolveJobSpec({ ...base, credentials: [{ ...key, phases: ['loop'] }] }, policy);
    expect(resolveJobSpec(specInput(spec, policy), policy)).toEqual(spec);
  });

  it.each([
    ['a host outside the egress list', { ...key, hosts: ['evil.example.com'] }, 'credentials.0.hosts.0', "not in the job's egress allow list"],
    ['a port the egress list does not allow', { ...key, hosts: ['api.example.com:8443'] }, 'credentials.0.hosts.0', 'api.example.com:8443 is not in'],
    ['a wildcard host', { ...key, hosts: ['*.registry.example.org'] }, 'credentials.0.hosts.0', 'not by wildcard'],
    ['a host that is not a host', { ...key, hosts: ['api.example.com/path'] }, 'credentials.0.hosts.0', 'is not a valid host name'],
    ['no host', { ...key, hosts: [] }, 'credentials.0.hosts', 'at least one host'],
    ['a format without {value}', { ...key, format: 'Bearer' }, 'credentials.0.format', '{value} exactly once'],
    ['a format with {value} twice', { ...key, format: '{value}{value}' }, 'credentials.0.format', '{value} exactly once'],
    ['a format with a line break', { ...key, format: 'Bearer {value}\r\nX-Evil: 1' }, 'credentials.0.format', 'printable ASCII'],
    ['a header the proxy owns', { ...key, header: 'Host' }, 'credentials.0.header', 'the proxy owns'],
    ['a header name with a space', { ...key, header: 'X Key' }, 'credentials.0.header', 'HTTP header name'],
    ['a reserved variable', { ...key, env: 'DRAFTSMAN_KEY' }, 'credentials.0.env', 'reserved'],
    ['a variable env already sets', { ...key, env: 'TOKEN' }, 'credentials.0.env', 'also set in env'],
    ['a phase the spec does not have', { ...key, phases: ['publish'] }, 'credentials.0.phases', 'no publish steps'],
    ['an unknown phase', { ...key, phases: ['clone'] }, 'credentials.0.phases.0', ''],
    ['an unknown field', { ...key, value: 'sk-123' }, 'credentials.0.value', 'unknown field'],
    ['a bad secret reference', { ...key, secret: '../etc/passwd' }, 'credentials.0.secret', 'secret references'],
  ])('refuse %s, naming the field', (_, credential, field, message) => {
    const r = refusal({ ...base, env: { TOKEN: 'x' }, credentials: [credential] });
    expect(r.field).toBe(field);
    expect(r.message).toContain(message);
  });

  it('refuse two credentials for one header of one host, and two for one variable', () => {
    expect(refusal({ ...base, credentials: [key, { ...key, secret: 'other', env: 'OTHER' }] }).field).toBe('credentials.1.hosts.0');
    expect(refusal({ ...base, credentials: [key, { ...key, header: 'X-Api-Key' }] }).field).toBe('credentials.1.env');
  });
});

describe('applyCredentials', () => {
  const model: LiveCredential = {
    secret: 'model-key',
    env: 'MODEL_API_KEY',
    placeholder: newPlaceholder(() => Buffer.alloc(16, 1)),
    hosts: ['api.example.com:443'],
    header: 'authorization',
    format: 'Bearer {value}',
    active: true,
  };
  const other: LiveCredential = {
    ...model,
    secret: 'npm',
    env: 'NPM_TOKEN',
    placeholder: newPlaceholder(() => Buffer.alloc(16, 2)),
    hosts: ['npm.example.org:443'],
    header: 'x-token',
    format: '{value}',
  };
  const values: Record<string, string> = { 'model-key': 'sk-real-$&-value', npm: 'npm-real' };
  const apply = (target: { host: string; port: number; tls: boolean }, url: string, headers: [string, string][], creds = [model, other]) =>
    applyCredentials(creds, target, url, headers, (c) => values[c.secret]!);
  const api = { host: 'api.example.com', port: 443, tls: true };

  it('puts the value, in its format, into the bound header of a request to its host ($& and all, literally)', () => {
    expect(
      apply(api, '/v1/chat', [
        ['Authorization', `Bearer ${model.placeholder}`],
        ['Accept', '*/*'],
      ]),
    ).toEqual({
      ok: true,
      headers: [
        ['Authorization', 'Bearer sk-real-$&-value'],
        ['Accept', '*/*'],
      ],
      used: [model],
    });
  });

  it('leaves a request without a placeholder as it is', () => {
    expect(apply(api, '/v1', [['Accept', '*/*']])).toEqual({ ok: true, headers: [['Accept', '*/*']], used: [] });
  });

  it.each([
    [
      'to a host it is not bound to',
      { host: 'evil.example.com', port: 443, tls: true },
      '/',
      [['Authorization', `Bearer ${model.placeholder}`]],
      'in the authorization header',
    ],
    ['to its host on another port', { host: 'api.example.com', port: 8443, tls: true }, '/', [['Authorization', `Bearer ${model.placeholder}`]], 'not bound'],
    [
      'to its host over plain http',
      { host: 'api.example.com', port: 443, tls: false },
      '/',
      [['Authorization', `Bearer ${model.placeholder}`]],
      'over plain http',
    ],
    ['in the URL of a request to its host', api, `/v1?key=${model.placeholder}`, [], 'in the URL'],
    ['in the URL to another host', { host: 'evil.example.com', port: 443, tls: true }, `/${model.placeholder}`, [], 'in the URL'],
    ['in another header of its host', api, '/', [['X-Forward', model.placeholder]], 'in the x-forward header'],
    ['of another credential to this host', api, '/', [['Authorization', `Bearer ${other.placeholder}`]], 'NPM_TOKEN'],
    ['as a header name, to its host', api, '/', [[`X-${model.placeholder}`, '1']], "in a header's name"],
  ])('refuses a placeholder sent %s', (_, target, url, headers, why) => {
    const r = apply(target, url, headers as [string, string][]);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.why).toContain(why);
  });

  it('refuses a placeholder sent outside its phases', () => {
    const r = apply(api, '/', [['Authorization', `Bearer ${model.placeholder}`]], [{ ...model, active: false }]);
    expect(!r.ok && r.why).toContain('outside the phases');
  });

  it('refuses to write a value with a line break into a header', () => {
    const r = applyCredentials([model], api, '/', [['Authorization', model.placeholder]], () => 'a\r\nX-Evil: 1');
    expect(!r.ok && r.why).toContain('line break');
  });

  it('finds a placeholder in a text, and none in a text without one', () => {
    expect(placeholderIn([model, other], `x ${other.placeholder} y`)).toBe(other);
    expect(placeholderIn([model, other], 'draftsman-credential-00')).toBeNull();
    expect(boundTo([model, other], 'api.example.com', 443)).toEqual([model]);
    expect(hostPort('::1', 443)).toBe('[::1]:443');
  });
});

describe('git credentials', () => {
  const ph = newPlaceholder(() => Buffer.alloc(16, 3));
  const forge: LiveCredential = {
    secret: 'push-token',
    env: 'GIT_TOKEN',
    placeholder: ph,
    hosts: ['forge.example.com:443', '127.0.0.2:8443'],
    header: 'authorization',
    format: '{value}',
    active: true,
  };
  const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;

  it("resolve with git's user name, and only in Authorization", () => {
    const spec = resolveJobSpec(
      { ...base, egress: { allow: ['forge.example.com'] }, credentials: [{ ...key, hosts: ['forge.example.com'], git: {} }] },
      policy,
    );
    expect(spec.credentials![0]!.git).toEqual({ username: 'x-access-token' });
    expect(refusal({ ...base, credentials: [{ ...key, header: 'X-Token', git: { username: 'bot' } }] }).field).toBe('credentials.0.header');
    expect(refusal({ ...base, env: { GIT_CONFIG_COUNT: '1' }, credentials: [{ ...key, git: {} }] }).field).toBe('credentials.0.git');
    expect(refusal({ ...base, credentials: [{ ...key, git: { username: "x' ; rm -rf / ; '" } }] }).field).toBe('credentials.0.git.username');
  });

  it('swap the placeholder inside the Basic authorization git sends, keeping its user name', () => {
    const r = applyCredentials(
      [forge],
      { host: 'forge.example.com', port: 443, tls: true },
      '/org/repo.git/info/refs',
      [['Authorization', basic(`bot:${ph}`)]],
      () => 'ghp_real',
    );
    expect(r).toMatchObject({ ok: true, headers: [['Authorization', basic('bot:ghp_real')]] });
  });

  it('find the placeholder inside Basic authorization sent to another host, and refuse it', () => {
    const r = applyCredentials([forge], { host: 'evil.example.com', port: 443, tls: true }, '/', [['Authorization', basic(`bot:${ph}`)]], () => 'ghp_real');
    expect(r.ok).toBe(false);
    expect(basicCredentials('Bearer abc')).toBeNull();
  });

  it("configure git's credential helper so that git itself gets the placeholder for the bound hosts only", () => {
    const env = gitCredentialEnv([{ env: 'GIT_TOKEN', git: { username: 'bot', hosts: forge.hosts } }, { env: 'MODEL_API_KEY' }]);
    expect(env.GIT_CONFIG_COUNT).toBe('4');
    const fill = (host: string) =>
      execFileSync('git', ['credential', 'fill'], {
        input: `protocol=https\nhost=${host}\n\n`,
        env: { PATH: process.env.PATH, HOME: os.tmpdir(), GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: '/bin/false', GIT_TOKEN: ph, ...env },
        stdio: ['pipe', 'pipe', 'ignore'],
      }).toString();
    expect(fill('forge.example.com')).toContain(`username=bot\npassword=${ph}\n`);
    expect(fill('127.0.0.2:8443')).toContain(`password=${ph}`);
    // Another host: git asks nobody for it (no terminal, no askpass), and fails.
    expect(() => fill('evil.example.com')).toThrow();
  });
});
