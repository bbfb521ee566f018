import {
  cacheEnv,
  cacheHitEnv,
  cachePathProblem,
  evictions,
  KEEP_POINT_PATTERN,
  keptName,
  loopIteration,
  pathsOverlap,
  hashedPatterns,
  type KeptUse,
  parseKeyTemplate,
  pathspecs,
  renderKey,
  snapshotKey,
  warmScope,
} from './warm';

describe('cache key templates', () => {
  it.each([
    ['npm-v1', [{ text: 'npm-v1' }]],
    ["npm-{{ hashFiles('package-lock.json') }}", [{ text: 'npm-' }, { hashFiles: ['package-lock.json'] }]],
    ["{{hashFiles('**/go.sum', '!vendor/**')}}-go", [{ hashFiles: ['**/go.sum', '!vendor/**'] }, { text: '-go' }]],
    ["a{{ hashFiles('x') }}b{{ hashFiles('y') }}", [{ text: 'a' }, { hashFiles: ['x'] }, { text: 'b' }, { hashFiles: ['y'] }]],
  ])('%s parses', (template, parts) => {
    expect(parseKeyTemplate(template)).toEqual(parts);
  });

  it.each([
    ['npm-{{ env.HOME }}', 'is not an expression a key may hold'],
    ["npm-{{ hashFiles('/etc/passwd') }}", "pattern '/etc/passwd' must be a relative path"],
    ["npm-{{ hashFiles('../other/lock') }}", "pattern '../other/lock' must be a relative path"],
    ["npm-{{ hashFiles('!a') }}", 'at least one pattern must include files'],
    ['npm-{{ hashFiles() }}', 'is not an expression'],
    ['npm-{{ hashFiles(', 'an unclosed {{'],
    ['npm key', 'printable ASCII without spaces'],
  ])('%s is refused: %s', (template, message) => {
    expect(() => parseKeyTemplate(template)).toThrow(message);
  });

  it.each([
    [["npm-{{ hashFiles('a') }}"], ['abc'], 'npm-abc'],
    // No file matched: the hash is empty, and the key is its text alone.
    [["npm-{{ hashFiles('a') }}"], [''], 'npm-'],
    [["{{ hashFiles('a') }}-{{ hashFiles('b') }}"], ['1', '2'], '1-2'],
  ])('%j with hashes %j renders %s', ([template], hashes, key) => {
    const parts = parseKeyTemplate(template!);
    expect(hashedPatterns(parts)).toHaveLength(hashes.length);
    expect(renderKey(parts, hashes)).toBe(key);
  });

  it('hashFiles patterns become git glob pathspecs, ! an exclusion', () => {
    expect(pathspecs(['**/package-lock.json', '!node_modules/**'])).toEqual([':(glob)**/package-lock.json', ':(glob,exclude)node_modules/**']);
  });
});

describe('where a cache lives in a step', () => {
  it.each([
    ['npm', { DRAFTSMAN_CACHE_NPM: '/cache/npm', npm_config_cache: '/cache/npm' }],
    ['pip', { DRAFTSMAN_CACHE_PIP: '/cache/pip', PIP_CACHE_DIR: '/cache/pip' }],
    ['go', { DRAFTSMAN_CACHE_GO: '/cache/go', GOMODCACHE: '/cache/go/mod', GOCACHE: '/cache/go/build' }],
    ['xdg', { DRAFTSMAN_CACHE_XDG: '/cache/xdg', XDG_CACHE_HOME: '/cache/xdg' }],
    ['my-tool', { DRAFTSMAN_CACHE_MY_TOOL: '/cache/my-tool' }],
  ])('%s', (name, env) => {
    expect(cacheEnv([name])).toEqual(env);
  });

  it('a cache with a path is found there, without the tool variables of its name', () => {
    expect(cacheEnv(['pip'], [{ name: 'npm', path: 'node_modules' }])).toEqual({
      DRAFTSMAN_CACHE_PIP: '/cache/pip',
      PIP_CACHE_DIR: '/cache/pip',
      DRAFTSMAN_CACHE_NPM: '/workspace/node_modules',
    });
  });

  it.each([
    ['npm', 'exact', { DRAFTSMAN_CACHE_NPM_HIT: 'exact' }],
    ['my-tool', 'miss', { DRAFTSMAN_CACHE_MY_TOOL_HIT: 'miss' }],
  ] as const)('setup learns how %s was restored', (name, lookup, env) => {
    expect(cacheHitEnv(name, lookup)).toEqual(env);
  });
});

describe('keep points', () => {
  it.each([
    ['setup', null, ''],
    ['loop-1', 1, 'loop-1'],
    ['loop-250', 250, 'loop-250'],
  ])('%s: iteration %p, recorded as %j', (point, iteration, name) => {
    expect(KEEP_POINT_PATTERN.test(point)).toBe(true);
    expect(loopIteration(point)).toBe(iteration);
    expect(keptName(point)).toBe(name);
  });
  it.each(['loop', 'loop-0', 'loop-01', 'until-1', 'validate-0', 'setup-0', 'loop-10000'])('%s is no keep point', (point) => {
    expect(KEEP_POINT_PATTERN.test(point)).toBe(false);
  });
});

describe('a cache path in the workspace', () => {
  it.each([
    ['node_modules', null],
    ['web/node_modules', null],
    ['.venv', null],
    ['@scope/pkg+1', null],
    ['', 'must be a relative path of letters, digits and ._@+- separated by single slashes'],
    ['/abs', 'must be a relative path of letters, digits and ._@+- separated by single slashes'],
    ['a//b', 'must be a relative path of letters, digits and ._@+- separated by single slashes'],
    ['a/', 'must be a relative path of letters, digits and ._@+- separated by single slashes'],
    ['a b', 'must be a relative path of letters, digits and ._@+- separated by single slashes'],
    ['.', 'must not have . or .. segments'],
    ['a/../b', 'must not have . or .. segments'],
    ['.git', 'must be outside .git'],
    ['.git/x', 'must be outside .git'],
    ['.github', null],
    ['x'.repeat(201), 'must be at most 200 characters'],
  ])('%j: %p', (path, problem) => {
    expect(cachePathProblem(path)).toBe(problem);
  });

  it.each([
    ['a', 'a', true],
    ['a', 'a/b', true],
    ['a/b', 'a', true],
    ['a', 'ab', false],
    ['a/b', 'a/c', false],
  ])('%s and %s overlap: %p', (a, b, overlap) => {
    expect(pathsOverlap(a, b)).toBe(overlap);
  });
});

describe('scopes', () => {
  it.each([
    ['principal', 'r', 'alice', 'repo=r principal=alice'],
    ['repo', 'r', 'alice', 'repo=r'],
  ] as const)('%s: %s by %s is %s', (mode, repo, principal, scope) => {
    expect(warmScope(mode, repo, principal)).toBe(scope);
  });
  it('two principals of one repository have different scopes unless the operator shares them', () => {
    expect(warmScope('principal', 'r', 'a')).not.toBe(warmScope('principal', 'r', 'b'));
    expect(warmScope('repo', 'r', 'a')).toBe(warmScope('repo', 'r', 'b'));
  });
});

describe('snapshot keys', () => {
  const base = { repo: 'r', commit: 'c', imageId: 'sha256:1', setup: ['npm ci'], env: { A: '1', B: '2' }, secretRefs: { T: 'tok' }, cloneVersion: 'v1' };
  it('do not depend on the order of env entries', () => {
    expect(snapshotKey({ ...base, env: { B: '2', A: '1' } })).toBe(snapshotKey(base));
  });
  it.each([
    ['repo', { repo: 'r2' }],
    ['commit', { commit: 'c2' }],
    ['image id', { imageId: 'sha256:2' }],
    ['setup', { setup: ['npm install'] }],
    ['env', { env: { A: '1', B: '3' } }],
    ['secret refs', { secretRefs: { T: 'other' } }],
    ['clone version', { cloneVersion: 'v2' }],
  ])('change with the %s', (_what, change) => {
    expect(snapshotKey({ ...base, ...change })).not.toBe(snapshotKey(base));
  });
});

describe('evictions', () => {
  const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute));
  const e = (id: string, scope: string, bytes: number, minute: number): KeptUse => ({ id, scope, bytes, lastUsedAt: at(minute) });
  it.each([
    ['within both budgets: nothing', [e('a', 's', 10, 1), e('b', 's', 10, 2)], { scopeBytes: 30, totalBytes: 30 }, []],
    [
      'a scope over its budget: its least recently used first',
      [e('a', 's', 10, 3), e('b', 's', 10, 1), e('c', 's', 10, 2)],
      { scopeBytes: 20, totalBytes: 0 },
      ['b'],
    ],
    ['only the scope over its budget loses entries', [e('a', 's', 30, 1), e('b', 't', 5, 0)], { scopeBytes: 20, totalBytes: 0 }, ['a']],
    [
      'the host over its total: least recently used across scopes',
      [e('a', 's', 10, 2), e('b', 't', 10, 1), e('c', 'u', 10, 3)],
      { scopeBytes: 0, totalBytes: 20 },
      ['b'],
    ],
    [
      'both: each scope within its own, then the host within its total',
      [e('a', 's', 10, 1), e('b', 's', 10, 2), e('c', 't', 10, 3), e('d', 't', 10, 4)],
      { scopeBytes: 15, totalBytes: 15 },
      ['a', 'b', 'c'],
    ],
    ['no limits', [e('a', 's', 1e12, 1)], { scopeBytes: 0, totalBytes: 0 }, []],
  ])('%s', (_what, entries, budget, evicted) => {
    expect(evictions(entries, budget).map((x) => x.id)).toEqual(evicted);
  });
});
