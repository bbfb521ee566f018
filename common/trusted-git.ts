/**
 * Draftsman's own git: the shell every Draftsman step and helper that reads a workspace
 * runs git through (the patch, the publish checkout, the cache key's hash).
 *
 * The workspace's `.git` is the agent's: its config can name programs (hooks,
 * `core.fsmonitor`, `diff.external`, textconv and filter drivers, `include.path`, the
 * pager), its index and refs can say anything. So Draftsman never runs git in it.
 * Instead each such step builds a git directory of its own in its /tmp, from nothing but
 * the job's commit id (from the spec) and the objects of the workspace's store, read as
 * data: the commit and its trees (and blobs, when the step needs them) are packed from
 * there and indexed anew, which computes every object's id from its contents, so an
 * object the agent altered is not the one the commit names and the step fails rather
 * than read it. Its config is the one `git init` writes; no system or global config is
 * read; nothing in it names a program.
 */

/** What each script starts with: a fixed environment and the verified git directory at $GIT_DIR. */
function trustedGitPrelude(blobs: boolean): string[] {
  const filter = blobs ? '' : ' --filter=blob:none';
  return [
    'set -eu',
    'unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_CONFIG GIT_CONFIG_PARAMETERS GIT_CONFIG_COUNT GIT_EXEC_PATH GIT_TEMPLATE_DIR GIT_CEILING_DIRECTORIES',
    'export HOME=/nonexistent XDG_CONFIG_HOME=/nonexistent GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_ATTR_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0 GIT_OPTIONAL_LOCKS=0 GIT_NO_REPLACE_OBJECTS=1 GIT_PAGER=cat PAGER=cat',
    'W="${DRAFTSMAN_WORKSPACE:-/workspace}" S="${DRAFTSMAN_SCRATCH:-/tmp}"',
    'export GIT_DIR="$S/draftsman-git"',
    'fail() { echo "draftsman: $*" >&2; exit 3; }',
    'case "${DRAFTSMAN_COMMIT:-}" in *[!0-9a-f]*|"") fail "no commit to read";; esac',
    'git init -q --bare --template= "$GIT_DIR"',
    'src="$W/.git/objects"',
    '[ -d "$src" ] || fail "the workspace has no .git/objects to read commit $DRAFTSMAN_COMMIT from"',
    `GIT_ALTERNATE_OBJECT_DIRECTORIES="$src" git rev-list --objects --no-walk${filter} "$DRAFTSMAN_COMMIT" > "$S/objects" 2>"$S/err" || fail "the workspace's .git no longer holds commit $DRAFTSMAN_COMMIT: $(head -c 300 "$S/err")"`,
    'GIT_ALTERNATE_OBJECT_DIRECTORIES="$src" git pack-objects -q --stdout < "$S/objects" > "$S/pack" 2>"$S/err" || fail "reading commit $DRAFTSMAN_COMMIT from the workspace failed: $(head -c 300 "$S/err")"',
    'git index-pack --stdin < "$S/pack" > /dev/null 2>"$S/err" || fail "the objects of commit $DRAFTSMAN_COMMIT in the workspace are not valid: $(head -c 300 "$S/err")"',
    'rm -f "$S/pack"',
    // Indexed anew, each object is named by its contents: the commit the spec names, with every tree (and blob) it needs, or nothing.
    `git rev-list --objects --no-walk${filter} "$DRAFTSMAN_COMMIT" > /dev/null 2>&1 || fail "the workspace's objects of commit $DRAFTSMAN_COMMIT do not match it (altered or missing)"`,
    'echo "$DRAFTSMAN_COMMIT" > "$GIT_DIR/shallow"',
  ];
}

/** Options on every git command of a script: no program a work tree's attributes or submodules could name. */
const SAFE = '-c core.fsmonitor=false -c core.untrackedCache=false -c core.hooksPath=/dev/null -c submodule.recurse=false -c diff.external= -c core.pager=cat';

/**
 * Prints the workspace's changes against the job's commit (tracked and untracked files,
 * binary-safe), as `git diff --binary`. The work tree is read as data: git's add stores
 * what it finds (a symlink as a link, a nested repository as a gitlink); no filter,
 * textconv or external diff can run, as no config names one.
 */
export const PATCH_SCRIPT = [
  ...trustedGitPrelude(true),
  'export GIT_WORK_TREE="$W" GIT_INDEX_FILE="$S/index"',
  'cd "$W"',
  'git read-tree "$DRAFTSMAN_COMMIT"',
  `git ${SAFE} add -A -- .`,
  `git ${SAFE} diff --cached --binary --no-ext-diff --no-textconv --no-color --ignore-submodules=none "$DRAFTSMAN_COMMIT"`,
].join('\n');

/**
 * Makes the workspace a clean checkout of the commit with the stored patch applied, for
 * publish steps: nothing the loop wrote is left (its files, its `.git`), and the `.git`
 * publish gets is Draftsman's (the commit, its objects, the patch in the index). The
 * patch arrives as a file in the workspace ($DRAFTSMAN_PATCH_FILE, a name no step could
 * guess), read before the workspace is emptied.
 */
export const CHECKOUT_SCRIPT = [
  ...trustedGitPrelude(true),
  'p="$S/approved.patch"',
  'if [ -n "${DRAFTSMAN_PATCH_FILE:-}" ]; then cp "$W/$DRAFTSMAN_PATCH_FILE" "$p"; else : > "$p"; fi',
  // What the loop made unwritable to keep it is its own: made writable, then removed (find never follows a symlink).
  'chmod -R u+rwX "$W" 2>/dev/null || true',
  'find "$W" -mindepth 1 -delete',
  'mkdir "$W/.git"',
  'cp -R "$GIT_DIR/." "$W/.git/"',
  'export GIT_DIR="$W/.git" GIT_WORK_TREE="$W"',
  'cd "$W"',
  'git config core.bare false',
  `git ${SAFE} -c advice.detachedHead=false checkout -q -f --detach "$DRAFTSMAN_COMMIT" --`,
  `if [ -s "$p" ]; then git ${SAFE} apply --index --binary --whitespace=nowarn "$p" || fail "the stored patch does not apply to commit $DRAFTSMAN_COMMIT"; fi`,
].join('\n');

/**
 * The cache key's hash: the commit's files that the pathspecs ($@) match, by path, mode
 * and blob id (the blob id is the hash of the contents), sorted and hashed; nothing
 * printed when none matches. Reads only the commit's trees.
 */
export const HASH_FILES_SCRIPT = [
  ...trustedGitPrelude(false),
  'export GIT_WORK_TREE="$W" GIT_INDEX_FILE="$S/index"',
  'cd "$W"',
  'git read-tree "$DRAFTSMAN_COMMIT"',
  `git ${SAFE} ls-files -s -z -- "$@" > "$S/files"`,
  '[ -s "$S/files" ] || exit 0',
  'sort -z "$S/files" | sha256sum | cut -d" " -f1',
].join('\n');
