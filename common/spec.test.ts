import { isInvalidJobSpecError } from './errors';
import { resolveJobSpec, specInput } from './spec';

const defaults = {
  image: 'draftsman-runner:latest',
  stepSeconds: 600,
  jobSeconds: 3600,
  allowedImages: ['draftsman-runner:latest', 'registry.local:5000/team/runner:1.2@sha256:' + 'b'.repeat(64)],
  allowFileRepos: false,
  egress: { defaults: ['default.example.org'], ceiling: ['*.example.org', 'example.com'], presets: { docs: ['docs.example.org'] }, exceptions: [] },
  max: { stepSeconds: 3600, jobSeconds: 7200, iterations: 1000, steps: 4, concurrency: 10 },
};
const commit = 'a'.repeat(40);
const valid = { repo: 'https://example.com/org/repo.git', commit };

function refusal(input: unknown, policy = defaults): { message: string; field: string } {
  try {
    resolveJobSpec(input, policy);
  } catch (err) {
    if (isInvalidJobSpecError(err)) return { message: err.message, field: err.field };
    throw err;
  }
  throw new Error('spec was accepted');
}

describe('resolveJobSpec', () => {
  it('applies defaults to a minimal spec', () => {
    expect(resolveJobSpec(valid, defaults)).toEqual({
      repo: valid.repo,
      commit,
      image: 'draftsman-runner:latest',
      setup: [],
      loop: null,
      validate: [],
      env: {},
      secrets: {},
      gitTokenSecret: null,
      timeouts: { stepSeconds: 600, jobSeconds: 3600 },
      egress: { allow: ['default.example.org'] },
    });
  });

  it('keeps every given field and lower-cases the commit', () => {
    const spec = resolveJobSpec(
      {
        ...valid,
        commit: 'ABCDEF0123456789ABCDEF0123456789ABCDEF01',
        image: 'registry.local:5000/team/runner:1.2@sha256:' + 'b'.repeat(64),
        setup: ['npm ci'],
        loop: { command: 'agent', until: 'npm test', maxIterations: 1000 },
        validate: ['npm test'],
        env: { NODE_ENV: 'test', _X: '' },
        timeouts: { stepSeconds: 5 },
      },
      defaults,
    );
    expect(spec.commit).toBe('abcdef0123456789abcdef0123456789abcdef01');
    expect(spec.loop).toEqual({ command: 'agent', until: 'npm test', maxIterations: 1000 });
    expect(spec.timeouts).toEqual({ stepSeconds: 5, jobSeconds: 3600 });
    expect(spec.env).toEqual({ NODE_ENV: 'test', _X: '' });
  });

  it("takes the spec's egress entries (presets kept as written) over the operator default", () => {
    expect(resolveJobSpec({ ...valid, egress: { allow: ['a.example.org', 'docs'] } }, defaults).egress).toEqual({ allow: ['a.example.org', 'docs'] });
    expect(resolveJobSpec({ ...valid, egress: { allow: [] } }, defaults).egress).toEqual({ allow: [] });
  });

  const steps = (n: number) => Array.from({ length: n }, () => 'true');
  it.each([
    ['timeouts.stepSeconds', { timeouts: { stepSeconds: 3600 } }, { timeouts: { stepSeconds: 3601 } }, /3601 is over this server's ceiling of 3600/],
    ['timeouts.jobSeconds', { timeouts: { jobSeconds: 7200 } }, { timeouts: { jobSeconds: 7201 } }, /7201 is over this server's ceiling of 7200/],
    [
      'loop.maxIterations',
      { loop: { command: 'x', maxIterations: 50 } },
      { loop: { command: 'x', maxIterations: 51 } },
      /51 is over this server's ceiling of 50/,
    ],
    [
      'steps (setup, validate and publish together)',
      { setup: steps(2), validate: steps(2) },
      { setup: steps(2), validate: steps(3) },
      /5 is over this server's ceiling of 4/,
    ],
    [
      'steps (setup, validate and publish together)',
      { setup: steps(1), validate: steps(1), publish: steps(2) },
      { setup: steps(1), validate: steps(2), publish: steps(2) },
      /5 is over this server's ceiling of 4/,
    ],
  ])('the ceiling on %s: exactly at it passes, just over it is refused naming the field', (field, at, over, message) => {
    const tight = { ...defaults, max: { ...defaults.max, iterations: 50 } };
    expect(() => resolveJobSpec({ ...valid, ...at }, tight)).not.toThrow();
    expect(refusal({ ...valid, ...over }, tight)).toEqual({ field, message: expect.stringMatching(message) });
  });

  it.each([
    [
      'a gate before validation, with the defaults',
      { validate: ['true'], approval: { before: 'validate' } },
      { before: 'validate', timeoutSeconds: 86_400, onTimeout: 'reject' },
    ],
    [
      'a gate before the loop',
      { loop: { command: 'x', maxIterations: 1 }, approval: { before: 'loop', timeoutSeconds: 60, onTimeout: 'approve' } },
      { before: 'loop', timeoutSeconds: 60, onTimeout: 'approve' },
    ],
    [
      'a gate before publish',
      { publish: ['git push'], approval: { before: 'publish', timeoutSeconds: 604_800 } },
      { before: 'publish', timeoutSeconds: 604_800, onTimeout: 'reject' },
    ],
  ])('resolves %s', (_name, extra, approval) => {
    expect(resolveJobSpec({ ...valid, ...extra }, defaults).approval).toEqual(approval);
  });

  it.each([
    ['a gate before a phase the spec lacks', { approval: { before: 'publish' } }, 'approval.before', /no publish steps to hold back/],
    ['a gate before a missing loop', { validate: ['true'], approval: { before: 'loop' } }, 'approval.before', /no loop to hold back/],
    ['an unknown phase', { validate: ['true'], approval: { before: 'setup' } }, 'approval.before', /loop.*validate.*publish/],
    [
      'a wait past a week',
      { validate: ['true'], approval: { before: 'validate', timeoutSeconds: 604_801 } },
      'approval.timeoutSeconds',
      /between 1 and 604800/,
    ],
    ['an unknown timeout decision', { validate: ['true'], approval: { before: 'validate', onTimeout: 'retry' } }, 'approval.onTimeout', /reject.*approve/],
    ['publish secrets without publish steps', { publishSecrets: { T: 'tok' } }, 'publishSecrets', /only publish steps receive them/],
    ['a publish secret also in env', { publish: ['x'], env: { T: '1' }, publishSecrets: { T: 'tok' } }, 'publishSecrets.T', /also set in env/],
  ])('refuses %s', (_name, extra, field, message) => {
    expect(refusal({ ...valid, ...extra }, defaults)).toEqual({ field, message: expect.stringMatching(message) });
  });

  it('leaves publish, its secrets and the gate out of a spec without them', () => {
    const spec = resolveJobSpec({ ...valid, publish: [], publishSecrets: {} }, defaults);
    expect(['publish', 'publishSecrets', 'approval'].filter((k) => k in spec)).toEqual([]);
  });

  it('accepts file:// repositories only when the operator allows them', () => {
    expect(resolveJobSpec({ ...valid, repo: 'file:///srv/git/r.git' }, { ...defaults, allowFileRepos: true }).repo).toBe('file:///srv/git/r.git');
  });

  it.each(['https://example.com/org/repo.git', 'https://example.com:8443/org/repo.git', 'http://127.0.0.1:8080/repo.git'])(
    'accepts the repo URL %s',
    (repo) => {
      expect(resolveJobSpec({ ...valid, repo }, defaults).repo).toBe(repo);
    },
  );

  it.each([
    ['branch name as commit', { ...valid, commit: 'main' }, 'commit', /40-hex/],
    ['short sha', { ...valid, commit: 'abc1234' }, 'commit', /40-hex/],
    ['41 hex characters', { ...valid, commit: 'a'.repeat(41) }, 'commit', /40-hex/],
    ['non-hex commit', { ...valid, commit: 'g'.repeat(40) }, 'commit', /40-hex/],
    ['missing commit', { repo: valid.repo }, 'commit', /required/],
    ['missing repo', { commit }, 'repo', /required/],
    ['ftp scheme', { ...valid, repo: 'ftp://example.com/r.git' }, 'repo', /not allowed/],
    ['ssh URL (cannot pass the HTTP proxy)', { ...valid, repo: 'ssh://git@example.com/org/repo.git' }, 'repo', /ssh.*not supported.*HTTP proxy/],
    ['scp-like ssh', { ...valid, repo: 'git@example.com:org/repo.git' }, 'repo', /git@host:path \(ssh\) is not supported/],
    ['git:// URL', { ...valid, repo: 'git://127.0.0.1:9418/repo.git' }, 'repo', /"git" is not supported/],
    ['a token with an http:// repository', { ...valid, repo: 'http://example.com/r.git', gitTokenSecret: 'tok' }, 'gitTokenSecret', /only over https/],
    [
      'an egress entry outside the ceiling',
      { ...valid, egress: { allow: ['a.example.org', 'evil.test'] } },
      'egress.allow.1',
      /"evil.test" is outside the operator's egress ceiling/,
    ],
    ['an egress entry that is no host', { ...valid, egress: { allow: ['http://a.example.org'] } }, 'egress.allow.0', /is not host, host:port/],
    ['an unknown egress field', { ...valid, egress: { allow: [], deny: [] } }, 'egress.deny', /unknown field/],
    ['file scheme (not allowed by this policy)', { ...valid, repo: 'file:///etc/passwd' }, 'repo', /file:\/\/ repositories are not allowed/],
    ['an image outside the allowlist', { ...valid, image: 'alpine:3' }, 'image', /allowlist/],
    ['right-to-left override in the URL', { ...valid, repo: 'https://example.com/\u202egit.evil' }, 'repo', /ASCII/],
    ['zero-width space in the URL', { ...valid, repo: 'https://exa\u200bmple.com/r.git' }, 'repo', /ASCII/],
    ['a look-alike host', { ...valid, repo: 'https://ex\u0430mple.com/r.git' }, 'repo', /ASCII/],
    ['the fd:: transport helper', { ...valid, repo: 'fd::3' }, 'repo', /transport helpers/],
    ['ext transport', { ...valid, repo: 'ext::sh -c touch% /tmp/pwned' }, 'repo', /./],
    ['option injection', { ...valid, repo: '--upload-pack=touch /tmp/x' }, 'repo', /must not start with "-"/],
    ['credentials in URL', { ...valid, repo: 'https://user:token@example.com/r.git' }, 'repo', /credentials/],
    ['control character', { ...valid, repo: 'https://example.com/r\n.git' }, 'repo', /control/],
    ['not a URL', { ...valid, repo: 'not a url' }, 'repo', /./],
    ['maxIterations 0', { ...valid, loop: { command: 'x', maxIterations: 0 } }, 'loop.maxIterations', /1 and 1000/],
    ['maxIterations 1001', { ...valid, loop: { command: 'x', maxIterations: 1001 } }, 'loop.maxIterations', /1 and 1000/],
    ['maxIterations 1.5', { ...valid, loop: { command: 'x', maxIterations: 1.5 } }, 'loop.maxIterations', /integer/],
    ['loop without command', { ...valid, loop: { maxIterations: 2 } }, 'loop.command', /required/],
    ['unknown top-level field', { ...valid, privileged: true }, 'privileged', /unknown field privileged/],
    ['unknown nested field', { ...valid, loop: { command: 'x', maxIterations: 1, forever: true } }, 'loop.forever', /unknown field/],
    ['a NUL byte in a setup command', { ...valid, setup: ['echo a\u0000b'] }, 'setup.0', /NUL/],
    ['a NUL byte in the loop command', { ...valid, loop: { command: 'x\u0000', maxIterations: 1 } }, 'loop.command', /NUL/],
    ['a NUL byte in a validate command', { ...valid, validate: ['ok', '\u0000'] }, 'validate.1', /NUL/],
    ['a NUL byte in an env value', { ...valid, env: { A: 'x\u0000y' } }, 'env.A', /NUL/],
    ['empty setup command', { ...valid, setup: [''] }, 'setup.0', /empty/],
    ['setup not an array', { ...valid, setup: 'npm ci' }, 'setup', /./],
    ['reserved env name', { ...valid, env: { DRAFTSMAN_JOB_ID: 'x' } }, 'env.DRAFTSMAN_JOB_ID', /reserved/],
    ['invalid env name', { ...valid, env: { 'A-B': 'x' } }, 'env.A-B', /env names/],
    ['non-string env value', { ...valid, env: { A: 1 } }, 'env.A', /./],
    ['bad image reference', { ...valid, image: 'UPPER/Case' }, 'image', /image reference/],
    ['a secret reference with a path', { ...valid, secrets: { TOKEN: '../etc/shadow' } }, 'secrets.TOKEN', /secret references/],
    ['a secret also set in env', { ...valid, env: { TOKEN: 'x' }, secrets: { TOKEN: 'tok' } }, 'secrets.TOKEN', /also set in env/],
    ['a git token secret with spaces', { ...valid, gitTokenSecret: 'my token' }, 'gitTokenSecret', /secret references/],
    ['zero step timeout', { ...valid, timeouts: { stepSeconds: 0 } }, 'timeouts.stepSeconds', /./],
    ['body is an array', [valid], '(body)', /./],
    ['body is null', null, '(body)', /./],
  ])('refuses %s', (_name, input, field, message) => {
    const r = refusal(input);
    expect(r.field).toBe(field);
    expect(r.message).toMatch(message);
  });
});

describe('labels', () => {
  it('are kept as given, and left out when there are none', () => {
    expect(resolveJobSpec({ ...valid, labels: { pr: '123', 'team.name': 'a/b:c' } }, defaults).labels).toEqual({ pr: '123', 'team.name': 'a/b:c' });
    expect(resolveJobSpec({ ...valid, labels: {} }, defaults)).not.toHaveProperty('labels');
    expect(resolveJobSpec(valid, defaults)).not.toHaveProperty('labels');
  });

  const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v']));
  it.each([
    ['a key with capitals', { Pr: '1' }, 'labels.Pr'],
    ['a key starting with a dot', { '.pr': '1' }, 'labels..pr'],
    ['a value with a space', { pr: 'a b' }, 'labels.pr'],
    ['a value of 129 characters', { pr: 'x'.repeat(129) }, 'labels.pr'],
    ['17 labels', many, 'labels'],
    ['a value that is not a string', { pr: 123 }, 'labels.pr'],
  ])('%s is refused, naming the field', (_title, labels, field) => {
    expect(refusal({ ...valid, labels }).field).toBe(field);
  });

  it('16 labels of 128 characters each pass', () => {
    const most = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, 'v'.repeat(128)]));
    expect(resolveJobSpec({ ...valid, labels: most }, defaults).labels).toEqual(most);
  });
});

describe('specInput (what a rerun submits)', () => {
  const full = {
    ...valid,
    image: defaults.allowedImages[1]!,
    setup: ['npm ci'],
    loop: { command: 'agent', until: 'test -f done', maxIterations: 5 },
    validate: ['npm test'],
    env: { CI: '1' },
    secrets: { TOKEN: 'team-token' },
    gitTokenSecret: 'git-token',
    timeouts: { stepSeconds: 60, jobSeconds: 600 },
    egress: { allow: ['example.com'] },
    labels: { pr: '42' },
    publish: ['git push'],
    publishSecrets: { PUSH_TOKEN: 'push-token' },
    approval: { before: 'publish', timeoutSeconds: 600, onTimeout: 'approve' },
    concurrency: { key: 'repo', limit: 2 },
    caches: [{ name: 'npm', key: "npm-{{ hashFiles('package-lock.json') }}", restoreKeys: ['npm-'] }],
    snapshot: { after: 'setup' },
  };
  it.each([
    ['a minimal spec', valid],
    ['a spec with every field', full],
    ['a spec naming the default image', { ...valid, image: defaults.image }],
    ['a spec with empty lists and maps', { ...valid, setup: [], validate: [], env: {}, labels: {} }],
  ])('%s resolves to the same spec again, from the stored spec and from the input as submitted', (_name, input) => {
    const resolved = resolveJobSpec(input, defaults);
    expect(resolveJobSpec(specInput(resolved, defaults), defaults)).toEqual(resolved);
    expect(resolveJobSpec(specInput(input as never, defaults), defaults)).toEqual(resolved);
  });

  it('keeps the timeouts and egress the job ran with after the operator changed the defaults', () => {
    const resolved = resolveJobSpec(valid, defaults);
    const later = { ...defaults, stepSeconds: 30, egress: { ...defaults.egress, defaults: [] } };
    expect(resolveJobSpec(specInput(resolved, later), later)).toEqual(resolved);
  });

  it('leaves the default image out, so that a changed default is what a rerun gets', () => {
    const resolved = resolveJobSpec(valid, defaults);
    expect(specInput(resolved, defaults)).not.toHaveProperty('image');
  });
});

describe('concurrency', () => {
  it.each([
    ['the repo key', { key: 'repo', limit: 1 }],
    ['the principal key', { key: 'principal', limit: 3 }],
    ['a key of its own', { key: 'nightly-suite', limit: 10 }],
  ])('%s is kept as given', (_name, concurrency) => {
    expect(resolveJobSpec({ ...valid, concurrency }, defaults).concurrency).toEqual(concurrency);
  });
  it.each([
    ['a limit over the ceiling', { key: 'repo', limit: 11 }, 'concurrency.limit', "concurrency.limit: 11 is over this server's ceiling of 10"],
    ['a limit of 0', { key: 'repo', limit: 0 }, 'concurrency.limit', 'concurrency.limit: must be at least 1'],
    ['a fractional limit', { key: 'repo', limit: 1.5 }, 'concurrency.limit', 'concurrency.limit: must be an integer'],
    ['an empty key', { key: '', limit: 1 }, 'concurrency.key', 'concurrency.key: must not be empty'],
    ['a key with a space', { key: 'a b', limit: 1 }, 'concurrency.key', 'concurrency.key: printable ASCII without spaces'],
    ['no limit', { key: 'repo' }, 'concurrency.limit', 'concurrency.limit is required'],
    ['an unknown field', { key: 'repo', limit: 1, burst: 2 }, 'concurrency.burst', 'unknown field concurrency.burst'],
  ])('%s is refused, naming the field', (_name, concurrency, field, message) => {
    expect(refusal({ ...valid, concurrency })).toEqual({ field, message });
  });
});

describe('warm starts', () => {
  const npm = { name: 'npm', key: "npm-{{ hashFiles('package-lock.json') }}" };
  it('a snapshot kept only for a resume says so; a resumed loop keeps where it starts', () => {
    expect(resolveJobSpec({ ...valid, setup: ['x'], snapshot: { after: 'setup', when: 'failed' } }, defaults).snapshot).toEqual({
      after: 'setup',
      when: 'failed',
    });
    expect(resolveJobSpec({ ...valid, setup: ['x'], snapshot: { after: 'setup', when: 'always' } }, defaults).snapshot).toEqual({ after: 'setup' });
    expect(resolveJobSpec({ ...valid, from: { job: 'j', after: 'loop-2' }, loop: { command: 'x', maxIterations: 3, startAt: 3 } }, defaults).loop).toEqual({
      command: 'x',
      maxIterations: 3,
      startAt: 3,
    });
  });

  it('a cache without restore keys gets an empty list; snapshot and from are kept as given', () => {
    expect(resolveJobSpec({ ...valid, setup: ['npm ci'], caches: [npm], snapshot: { after: 'setup' } }, defaults)).toMatchObject({
      caches: [{ ...npm, restoreKeys: [] }],
      snapshot: { after: 'setup' },
    });
    expect(resolveJobSpec({ ...valid, from: { job: 'job-1', after: 'setup' } }, defaults).from).toEqual({ job: 'job-1', after: 'setup' });
  });
  it('a fork keeps its workspace after a loop step of its own; from names a loop step', () => {
    const fork = resolveJobSpec(
      { ...valid, from: { job: 'job-1', after: 'loop-2' }, loop: { command: 'x', maxIterations: 3 }, snapshot: { after: 'loop-3' } },
      defaults,
    );
    expect(fork.from).toEqual({ job: 'job-1', after: 'loop-2' });
    expect(fork.snapshot).toEqual({ after: 'loop-3' });
  });
  it('a cache with a path in the workspace keeps it', () => {
    const modules = { name: 'modules', key: 'm', path: 'web/node_modules' };
    expect(resolveJobSpec({ ...valid, setup: ['npm ci'], caches: [npm, modules] }, defaults).caches).toEqual([
      { ...npm, restoreKeys: [] },
      { ...modules, restoreKeys: [] },
    ]);
  });
  it('a spec without them resolves without the fields (and replays as before)', () => {
    const resolved = resolveJobSpec(valid, defaults);
    expect(Object.keys(resolved)).not.toEqual(expect.arrayContaining(['caches']));
    expect(resolved).not.toHaveProperty('snapshot');
    expect(resolved).not.toHaveProperty('from');
  });
  it.each([
    ['caches without setup steps', { caches: [npm] }, 'caches', 'caches: only setup steps mount caches, and the spec has none'],
    ['two caches of one name', { setup: ['x'], caches: [npm, npm] }, 'caches', 'caches: cache names must be unique'],
    [
      'a cache name with capitals',
      { setup: ['x'], caches: [{ ...npm, name: 'NPM' }] },
      'caches.0.name',
      'caches.0.name: cache names must match [a-z0-9][a-z0-9_-]{0,31}',
    ],
    [
      'a key with another expression',
      { setup: ['x'], caches: [{ ...npm, key: 'npm-{{ github.sha }}' }] },
      'caches.0.key',
      "caches.0.key: {{ github.sha }} is not an expression a key may hold (only hashFiles('pattern', ...))",
    ],
    [
      'a pattern outside the workspace',
      { setup: ['x'], caches: [{ ...npm, key: "{{ hashFiles('../x') }}" }] },
      'caches.0.key',
      "caches.0.key: hashFiles: pattern '../x' must be a relative path or glob inside the workspace",
    ],
    [
      'a restore key with a space',
      { setup: ['x'], caches: [{ ...npm, restoreKeys: ['npm '] }] },
      'caches.0.restoreKeys.0',
      'caches.0.restoreKeys.0: printable ASCII without spaces',
    ],
    ['a path out of the workspace', { setup: ['x'], caches: [{ ...npm, path: '../x' }] }, 'caches.0.path', 'caches.0.path: must not have . or .. segments'],
    [
      'an absolute path',
      { setup: ['x'], caches: [{ ...npm, path: '/cache' }] },
      'caches.0.path',
      'caches.0.path: must be a relative path of letters, digits and ._@+- separated by single slashes',
    ],
    ['a path in .git', { setup: ['x'], caches: [{ ...npm, path: '.git/hooks' }] }, 'caches.0.path', 'caches.0.path: must be outside .git'],
    [
      'two paths, one inside the other',
      {
        setup: ['x'],
        caches: [
          { ...npm, path: 'a' },
          { ...npm, name: 'b', path: 'a/b' },
        ],
      },
      'caches',
      'caches: cache paths must not hold one another',
    ],
    [
      'a path cache with a snapshot',
      { setup: ['x'], caches: [{ ...npm, path: 'node_modules' }], snapshot: { after: 'setup' } },
      'caches',
      'caches: npm has a path in the workspace, which a kept workspace would not hold; a job with snapshot or from keeps what setup installed with the workspace instead',
    ],
    ['nine caches', { setup: ['x'], caches: Array.from({ length: 9 }, (_, i) => ({ ...npm, name: `c${i}` })) }, 'caches', 'caches: at most 8 caches'],
    [
      'a snapshot after the loop as a whole',
      { snapshot: { after: 'loop' } },
      'snapshot.after',
      'snapshot.after: must be "setup" or "loop-<iteration>" (loop-1, loop-2, ...)',
    ],
    [
      'a snapshot after iteration 0',
      { loop: { command: 'x', maxIterations: 3 }, snapshot: { after: 'loop-0' } },
      'snapshot.after',
      'snapshot.after: must be "setup" or "loop-<iteration>" (loop-1, loop-2, ...)',
    ],
    [
      'a snapshot after a validate step',
      { snapshot: { after: 'validate-0' } },
      'snapshot.after',
      'snapshot.after: must be "setup" or "loop-<iteration>" (loop-1, loop-2, ...)',
    ],
    [
      'a snapshot after an iteration past the last',
      { loop: { command: 'x', maxIterations: 3 }, snapshot: { after: 'loop-4' } },
      'snapshot.after',
      "snapshot.after: the spec's loop has no iteration 4",
    ],
    ['a snapshot after a loop step without a loop', { snapshot: { after: 'loop-1' } }, 'snapshot.after', "snapshot.after: the spec's loop has no iteration 1"],
    ['from a bad point', { from: { job: 'j', after: 'clone-0' } }, 'from.after', 'from.after: must be "setup" or "loop-<iteration>" (loop-1, loop-2, ...)'],
    ['from with a bad job id', { from: { job: '../x', after: 'setup' } }, 'from.job', 'from.job: must be a job id'],
    [
      'from and a snapshot after setup together',
      { from: { job: 'j', after: 'setup' }, snapshot: { after: 'setup' } },
      'snapshot.after',
      "snapshot.after: a job started from another's workspace keeps none after its own setup (after a loop step it may)",
    ],
    [
      'a loop that starts past iteration 1 without from',
      { loop: { command: 'x', maxIterations: 3, startAt: 2 } },
      'loop.startAt',
      "loop.startAt: only a job started from another's kept workspace (from) goes on with a loop",
    ],
    [
      'a loop that starts past maxIterations + 1',
      { from: { job: 'j', after: 'loop-1' }, loop: { command: 'x', maxIterations: 3, startAt: 5 } },
      'loop.startAt',
      'loop.startAt: must be at most maxIterations + 1',
    ],
    ['a snapshot kept at an unknown moment', { snapshot: { after: 'setup', when: 'sometimes' } }, 'snapshot.when', expect.stringContaining('snapshot.when')],
  ])('%s is refused, naming the field', (_name, extra, field, message) => {
    expect(refusal({ ...valid, ...extra })).toEqual({ field, message });
  });
});
