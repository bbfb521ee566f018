/**
 * Draftsman's own git: the shell every Draftsman step and helper that reads a workspace
 * runs git through (the patch, the publish checkout, the cache key's hash).
 *
 * The workspace's `.git` is the agent's: its config can name programs (hooks,
 * `core.fsmonitor`, `diff.external`, textconv and filter drivers, `include.path`, the
 * pager), its index and refs can say anything. So Draftsman never runs git in it.
 * Instead each such step makes a git directory of its own, from nothing but the job's
 * commit id (from the spec) and objects of the workspace's store read as data: each
 * object it needs is packed from there and indexed anew, which computes every object's
 * id from its contents, so an object the agent altered is not the one its id names and
 * the step fails rather than read it. Only the objects a step reads are imported: the
 * commit's trees, and the blobs of the files the patch changes (all of them for the
 * publish checkout). Its config is the one `git init` writes; no system or global config
 * is read; nothing in it names a program.
 */

/** The fixed environment every script starts with, $W (the workspace), $S (scratch) and `fail`. */
const ENVIRONMENT = [
  'set -eu',
  'unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_CONFIG GIT_CONFIG_PARAMETERS GIT_CONFIG_COUNT GIT_EXEC_PATH GIT_TEMPLATE_DIR GIT_CEILING_DIRECTORIES',
  'export HOME=/nonexistent XDG_CONFIG_HOME=/nonexistent GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_ATTR_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0 GIT_OPTIONAL_LOCKS=0 GIT_NO_REPLACE_OBJECTS=1 GIT_PAGER=cat PAGER=cat',
  'W="${DRAFTSMAN_WORKSPACE:-/workspace}" S="${DRAFTSMAN_SCRATCH:-/tmp}"',
  'fail() { echo "draftsman: $*" >&2; exit 3; }',
  'case "${DRAFTSMAN_COMMIT:-}" in *[!0-9a-f]*|"") fail "no commit to read";; esac',
];

/**
 * `verified IDS_FILE`: the objects listed (one id a line) copied from the agent's store
 * ($src) into $GIT_DIR by a pack indexed anew, then each looked up there alone: present
 * only if its contents hash to its id. The pack goes straight from one to the other.
 */
const VERIFIED = [
  'verified() {',
  '  [ -s "$1" ] || return 0',
  '  { GIT_ALTERNATE_OBJECT_DIRECTORIES="$src" git pack-objects -q --stdout < "$1" 2>"$S/err" || echo failed > "$S/pack-failed"; } | git index-pack --stdin > /dev/null 2>>"$S/err" || true',
  '  [ ! -e "$S/pack-failed" ] || fail "reading commit $DRAFTSMAN_COMMIT from the workspace\'s objects failed: $(head -c 300 "$S/err")"',
  '  cut -d" " -f1 "$1" | git cat-file --batch-check > "$S/checked"',
  '  ! grep -q " missing$" "$S/checked" || fail "the workspace\'s objects of commit $DRAFTSMAN_COMMIT do not match their ids (altered or missing)"',
  '}',
];

/**
 * A git directory at $GIT_DIR made anew (`--bare`, no template) with the commit and its
 * trees, verified, read from the agent's store at $src; the commit marked shallow (its
 * parents are not there).
 */
const COMMIT_AND_TREES = [
  ...VERIFIED,
  'git init -q --bare --template= "$GIT_DIR"',
  '[ -d "$src" ] || fail "the workspace has no .git/objects to read commit $DRAFTSMAN_COMMIT from"',
  'GIT_ALTERNATE_OBJECT_DIRECTORIES="$src" git rev-list --objects --no-walk --filter=blob:none "$DRAFTSMAN_COMMIT" > "$S/trees" 2>"$S/err" || fail "the workspace\'s .git no longer holds commit $DRAFTSMAN_COMMIT: $(head -c 300 "$S/err")"',
  'verified "$S/trees"',
  'echo "$DRAFTSMAN_COMMIT" > "$GIT_DIR/shallow"',
];

/**
 * The start of a script that reads the work tree against the commit: Draftsman's git
 * directory in scratch space with the commit and its trees, and an index in scratch
 * space holding the commit, the workspace as its work tree.
 */
const COMMIT_IN_SCRATCH_INDEX = [
  ...ENVIRONMENT,
  'export GIT_DIR="$S/draftsman-git"',
  'src="$W/.git/objects"',
  ...COMMIT_AND_TREES,
  'export GIT_WORK_TREE="$W" GIT_INDEX_FILE="$S/index"',
  'cd "$W"',
  'git read-tree "$DRAFTSMAN_COMMIT"',
];

/** Options on every git command of a script: no program a work tree's attributes or submodules could name. */
const SAFE = '-c core.fsmonitor=false -c core.untrackedCache=false -c core.hooksPath=/dev/null -c submodule.recurse=false -c diff.external= -c core.pager=cat';

/**
 * Prints the workspace's changes against the job's commit (tracked and untracked files,
 * binary-safe), as `git diff --binary`. The work tree is read as data: git's add stores
 * what it finds (a symlink as a link, a nested repository as a gitlink); no filter,
 * textconv or external diff can run, as no config names one. The add looks up the
 * agent's store only to skip writing blobs it has (so a large unchanged tree costs no
 * scratch space); the blobs the diff reads, both sides of every changed file, are then
 * imported verified, and the diff runs on Draftsman's objects alone.
 */
export const PATCH_SCRIPT = [
  ...COMMIT_IN_SCRATCH_INDEX,
  `GIT_ALTERNATE_OBJECT_DIRECTORIES="$src" git ${SAFE} add -A -- .`,
  // Both sides of each change (not of a gitlink, whose id is a commit of another repository).
  // One line a change (a path with a line break in it is quoted): ":oldmode newmode oldid newid status<TAB>path".
  `git ${SAFE} diff --cached --raw --no-renames --no-abbrev "$DRAFTSMAN_COMMIT" | awk '{ if ($1 != ":160000" && $3 !~ /^0+$/) print $3; if ($2 != "160000" && $4 !~ /^0+$/) print $4 }' | sort -u > "$S/blobs"`,
  'verified "$S/blobs"',
  `git ${SAFE} diff --cached --binary --no-ext-diff --no-textconv --no-color --ignore-submodules=none "$DRAFTSMAN_COMMIT"`,
].join('\n');

/**
 * Makes the workspace a clean checkout of the commit with the stored patch applied, for
 * publish steps: nothing the loop wrote is left (its files, its `.git`), and the `.git`
 * publish gets is Draftsman's (the commit, its objects, the patch in the index). The
 * patch arrives as a file in the workspace ($DRAFTSMAN_PATCH_FILE, a name no step could
 * guess), read before the workspace is emptied. The agent's `.git` is moved aside and
 * read as a store of objects only, then removed.
 */
export const CHECKOUT_SCRIPT = [
  ...ENVIRONMENT,
  ...VERIFIED,
  'p="$S/approved.patch"',
  'if [ -n "${DRAFTSMAN_PATCH_FILE:-}" ]; then cp "$W/$DRAFTSMAN_PATCH_FILE" "$p"; else : > "$p"; fi',
  // What the loop made unwritable to keep it is its own: made writable, then removed (neither follows a symlink).
  'chmod -R u+rwX "$W" 2>/dev/null || true',
  'aside=".draftsman-agent-git-$(date +%s%N)"',
  'if [ -e "$W/.git" ] || [ -L "$W/.git" ]; then mv "$W/.git" "$W/$aside"; fi',
  'find "$W" -mindepth 1 -maxdepth 1 ! -name "$aside" -exec rm -rf {} +',
  'src="$W/$aside/objects"',
  'export GIT_DIR="$W/.git"',
  'git init -q --template= "$W"',
  'git config core.bare false',
  '[ -d "$src" ] || fail "the workspace has no .git/objects to read commit $DRAFTSMAN_COMMIT from"',
  'GIT_ALTERNATE_OBJECT_DIRECTORIES="$src" git rev-list --objects --no-walk "$DRAFTSMAN_COMMIT" > "$S/objects" 2>"$S/err" || fail "the workspace\'s .git no longer holds commit $DRAFTSMAN_COMMIT: $(head -c 300 "$S/err")"',
  'verified "$S/objects"',
  'rm -rf "$W/$aside"',
  'echo "$DRAFTSMAN_COMMIT" > "$GIT_DIR/shallow"',
  'export GIT_WORK_TREE="$W"',
  'cd "$W"',
  `git ${SAFE} -c advice.detachedHead=false checkout -q -f --detach "$DRAFTSMAN_COMMIT" --`,
  `if [ -s "$p" ]; then git ${SAFE} apply --index --binary --whitespace=nowarn "$p" || fail "the stored patch does not apply to commit $DRAFTSMAN_COMMIT"; fi`,
].join('\n');

/**
 * The cache key's hash: the commit's files that the pathspecs ($@) match, by path, mode
 * and blob id (the blob id is the hash of the contents), sorted and hashed; nothing
 * printed when none matches. Reads only the commit's trees.
 */
export const HASH_FILES_SCRIPT = [
  ...COMMIT_IN_SCRATCH_INDEX,
  `git ${SAFE} ls-files -s -z -- "$@" > "$S/files"`,
  '[ -s "$S/files" ] || exit 0',
  'sort -z "$S/files" | sha256sum | cut -d" " -f1',
].join('\n');
