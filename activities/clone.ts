/**
 * The clone step's shell script. Repo and commit arrive as environment variables,
 * never spliced into the script, so no value can change what the shell runs.
 * Shallow fetch of the one commit first; servers that refuse a fetch by commit id
 * get a full fetch instead. HEAD is verified against the commit at the end.
 */
export const CLONE_SCRIPT = [
  'set -eu',
  // A token reaches git through a credential helper on the command line: never in the
  // remote URL, never in .git/config. The helper reads it from the environment.
  'if [ -n "${DRAFTSMAN_GIT_TOKEN:-}" ]; then',
  `  git() { command git -c credential.helper= -c 'credential.helper=!f() { test "$1" = get && printf "username=%s\\npassword=%s\\n" "\${DRAFTSMAN_GIT_USERNAME:-x-access-token}" "$DRAFTSMAN_GIT_TOKEN"; }; f' "$@"; }`,
  'fi',
  'git init -q .',
  'if ! git fetch -q --depth 1 --end-of-options "$DRAFTSMAN_REPO" "$DRAFTSMAN_COMMIT"; then',
  '  echo "draftsman: shallow fetch of $DRAFTSMAN_COMMIT refused; fetching the full history" >&2',
  '  git fetch -q --end-of-options "$DRAFTSMAN_REPO" "+refs/heads/*:refs/remotes/origin/*" "+refs/tags/*:refs/tags/*"',
  'fi',
  'git -c advice.detachedHead=false checkout -q --detach "$DRAFTSMAN_COMMIT" --',
  'head="$(git rev-parse HEAD)"',
  'if [ "$head" != "$DRAFTSMAN_COMMIT" ]; then',
  '  echo "draftsman: HEAD is $head, expected $DRAFTSMAN_COMMIT" >&2',
  '  exit 1',
  'fi',
].join('\n');

export function cloneEnv(repo: string, commit: string, gitToken?: string): Record<string, string> {
  return { DRAFTSMAN_REPO: repo, DRAFTSMAN_COMMIT: commit, GIT_TERMINAL_PROMPT: '0', ...(gitToken ? { DRAFTSMAN_GIT_TOKEN: gitToken } : {}) };
}

/**
 * Prints the workspace's changes against HEAD (tracked and untracked files,
 * binary-safe) without touching the workspace: the index and the new objects
 * live in /tmp, with the repository's objects as alternates.
 */
export const PATCH_SCRIPT = [
  'set -eu',
  'export GIT_INDEX_FILE=/tmp/draftsman-patch/index GIT_OBJECT_DIRECTORY=/tmp/draftsman-patch/objects',
  'export GIT_ALTERNATE_OBJECT_DIRECTORIES="$PWD/.git/objects"',
  'mkdir -p "$GIT_OBJECT_DIRECTORY"',
  'git read-tree HEAD',
  'git add -A .',
  'git diff --cached --binary HEAD',
].join('\n');
