/**
 * Warm starts: dependency caches and kept workspaces (setup snapshots). What a cache
 * key means, where a cache lives in a step and which tools are pointed at it, whose
 * caches a job may read, and which kept volumes the budget evicts. Pure.
 */
import { createHash } from 'node:crypto';

/** Where the job's caches are mounted in its setup steps: one folder per cache name. */
export const CACHE_ROOT = '/cache';
export const CACHE_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;
export const MAX_CACHES = 8;
export const MAX_KEY_LENGTH = 256;
/** A rendered key: printable ASCII without spaces (it names nothing on disk; kept volumes have ids). */
export const KEY_TEXT = /^[\x21-\x7e]*$/;

/**
 * The variables that point a tool at a cache, by the cache's name. A cache of another
 * name is reached through DRAFTSMAN_CACHE_<NAME> only.
 */
const TOOL_ENV: Record<string, (dir: string) => Record<string, string>> = {
  npm: (dir) => ({ npm_config_cache: dir }),
  yarn: (dir) => ({ YARN_CACHE_FOLDER: dir }),
  pip: (dir) => ({ PIP_CACHE_DIR: dir }),
  go: (dir) => ({ GOMODCACHE: `${dir}/mod`, GOCACHE: `${dir}/build` }),
  xdg: (dir) => ({ XDG_CACHE_HOME: dir }),
};

export const cacheDir = (name: string) => `${CACHE_ROOT}/${name}`;

const envName = (name: string) => `DRAFTSMAN_CACHE_${name.toUpperCase().replace(/-/g, '_')}`;

/**
 * The environment of a step that mounts these caches: a cache outside the workspace at
 * /cache/<name> (with the tool variables of its name), one with a path at that path in
 * the workspace (a tool finds it there by itself: node_modules, .venv, vendor).
 */
export function cacheEnv(names: readonly string[], inWorkspace: readonly { name: string; path: string }[] = []): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of names) Object.assign(env, { [envName(name)]: cacheDir(name) }, TOOL_ENV[name]?.(cacheDir(name)));
  for (const c of inWorkspace) env[envName(c.name)] = `/workspace/${c.path}`;
  return env;
}

export const KEEP_POINT_PATTERN = /^(setup|loop-[1-9][0-9]{0,3})$/;

export { loopIteration } from './job';

/** The name a kept workspace is recorded under: empty after setup (as before there were others), else the point. */
export const keptName = (point: string) => (point === 'setup' ? '' : point);

export type CacheLookup = 'exact' | 'partial' | 'miss';

/**
 * What setup learns of each cache's restore: `exact` when the entry of its own key was
 * restored (its contents are what setup would make, so setup may skip the install),
 * `partial` for a restore key's entry, `miss` for none.
 */
export const cacheHitEnv = (name: string, lookup: CacheLookup) => ({ [`${envName(name)}_HIT`]: lookup });

/**
 * Why a cache's `path` is refused, or null: a directory of the workspace, relative,
 * without . or .. segments, outside .git.
 */
export function cachePathProblem(path: string): string | null {
  if (!/^[A-Za-z0-9._@+-]+(\/[A-Za-z0-9._@+-]+)*$/.test(path)) return 'must be a relative path of letters, digits and ._@+- separated by single slashes';
  const segments = path.split('/');
  if (segments.some((s) => s === '.' || s === '..')) return 'must not have . or .. segments';
  if (segments[0] === '.git') return 'must be outside .git';
  if (path.length > 200) return 'must be at most 200 characters';
  return null;
}

/** Whether one cache's path holds another's (two mounts, one inside the other, would hide files). */
export const pathsOverlap = (a: string, b: string) => a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);

/** One piece of a key template: literal text, or the hash of the files the patterns match. */
export type KeyPart = { text: string } | { hashFiles: string[] };

export class KeyTemplateError extends Error {}

const EXPRESSION = /\{\{(.*?)\}\}/gs;
const HASH_FILES = /^\s*hashFiles\(\s*('[^']*'(?:\s*,\s*'[^']*')*)\s*\)\s*$/;
/** A pattern is relative to the workspace; `!` in front excludes what it matches. */
// A NUL cannot be in a path: the pattern refuses it.
// eslint-disable-next-line no-control-regex
const PATTERN = /^!?[^/!\u0000'][^\u0000']*$/;

/**
 * A cache key's template: text with `{{ hashFiles('pattern', ...) }}` expressions.
 * Patterns are git pathspec globs over the files of the job's commit (`*` stays within
 * a folder, `**` crosses folders, `!pattern` excludes); see docs/warm-starts.md.
 */
export function parseKeyTemplate(template: string): KeyPart[] {
  const parts: KeyPart[] = [];
  let at = 0;
  for (const m of template.matchAll(EXPRESSION)) {
    if (m.index > at) parts.push({ text: template.slice(at, m.index) });
    const call = HASH_FILES.exec(m[1]!);
    if (!call) throw new KeyTemplateError(`{{${m[1]}}} is not an expression a key may hold (only hashFiles('pattern', ...))`);
    const patterns = [...call[1]!.matchAll(/'([^']*)'/g)].map((p) => p[1]!);
    const bad = patterns.find((p) => !PATTERN.test(p) || p.split('/').includes('..'));
    if (bad !== undefined) throw new KeyTemplateError(`hashFiles: pattern '${bad}' must be a relative path or glob inside the workspace`);
    if (!patterns.some((p) => !p.startsWith('!'))) throw new KeyTemplateError('hashFiles: at least one pattern must include files (not only ! exclusions)');
    parts.push({ hashFiles: patterns });
    at = m.index + m[0].length;
  }
  if (at < template.length) parts.push({ text: template.slice(at) });
  const text = parts.map((p) => ('text' in p ? p.text : '')).join('');
  if (text.includes('{{') || text.includes('}}')) throw new KeyTemplateError('an unclosed {{ or a stray }}');
  if (!KEY_TEXT.test(text)) throw new KeyTemplateError('keys are printable ASCII without spaces');
  return parts;
}

/** The pattern lists of a template's hashFiles expressions, in order. */
export const hashedPatterns = (parts: readonly KeyPart[]) => parts.flatMap((p) => ('hashFiles' in p ? [p.hashFiles] : []));

/** The key with each hashFiles expression replaced by its hash (in order; an empty hash where nothing matched). */
export function renderKey(parts: readonly KeyPart[], hashes: readonly string[]): string {
  let i = 0;
  return parts.map((p) => ('text' in p ? p.text : (hashes[i++] ?? ''))).join('');
}

/** `git ls-files` pathspecs for hashFiles patterns: globs, exclusions with `!`. */
export const pathspecs = (patterns: readonly string[]) => patterns.map((p) => (p.startsWith('!') ? `:(glob,exclude)${p.slice(1)}` : `:(glob)${p}`));

/**
 * Whose caches and kept workspaces a job reads and writes: its repository and its
 * principal (`principal`, the default), or its repository alone (`repo`, where the
 * operator trusts every principal of a repository alike).
 */
export type CacheScopeMode = 'principal' | 'repo';
export const warmScope = (mode: CacheScopeMode, repo: string, principal: string) => (mode === 'repo' ? `repo=${repo}` : `repo=${repo} principal=${principal}`);

/**
 * The key of a kept workspace after setup: everything that decides what setup made.
 * The image by its id (a tag can move), the clone procedure by its version.
 */
export function snapshotKey(k: {
  repo: string;
  commit: string;
  imageId: string;
  setup: readonly string[];
  env: Record<string, string>;
  secretRefs: Record<string, string>;
  cloneVersion: string;
}): string {
  const sorted = (r: Record<string, string>) => Object.fromEntries(Object.entries(r).sort(([a], [b]) => a.localeCompare(b)));
  const canonical = JSON.stringify([k.repo, k.commit, k.imageId, k.setup, sorted(k.env), sorted(k.secretRefs), k.cloneVersion]);
  return `setup-${createHash('sha256').update(canonical).digest('hex')}`;
}

/** A kept volume as the budget sees it. */
export interface KeptUse {
  id: string;
  scope: string;
  bytes: number;
  lastUsedAt: Date;
}

/**
 * What to evict so that every scope keeps within `scopeBytes` and the host within
 * `totalBytes` (0: no limit): least recently used first, within the scope over its
 * budget, then across the host.
 */
export function evictions(entries: readonly KeptUse[], budget: { scopeBytes: number; totalBytes: number }): KeptUse[] {
  const lru = [...entries].sort((a, b) => a.lastUsedAt.getTime() - b.lastUsedAt.getTime() || a.id.localeCompare(b.id));
  const out = new Set<KeptUse>();
  if (budget.scopeBytes > 0) {
    const byScope = new Map<string, number>();
    for (const e of lru) byScope.set(e.scope, (byScope.get(e.scope) ?? 0) + e.bytes);
    for (const e of lru) {
      if ((byScope.get(e.scope) ?? 0) <= budget.scopeBytes) continue;
      out.add(e);
      byScope.set(e.scope, byScope.get(e.scope)! - e.bytes);
    }
  }
  if (budget.totalBytes > 0) {
    let total = lru.filter((e) => !out.has(e)).reduce((s, e) => s + e.bytes, 0);
    for (const e of lru) {
      if (total <= budget.totalBytes) break;
      if (out.has(e)) continue;
      out.add(e);
      total -= e.bytes;
    }
  }
  return lru.filter((e) => out.has(e));
}
