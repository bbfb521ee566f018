import { CLONE_TOKEN_ENV } from '../common/credentials';

/**
 * The clone step's shell script. Repo and commit arrive as environment variables,
 * never spliced into the script, so no value can change what the shell runs.
 * Shallow fetch of the one commit first; servers that refuse a fetch by commit id
 * get a full fetch instead. HEAD is verified against the commit at the end.
 */
/**
 * The credential helper (a shell function git runs with `get`, `store` or `erase`, and
 * the request on stdin): it answers `get` only for the repository's own host (and
 * port), so that a redirect or a submodule elsewhere never receives the token.
 */
export const CREDENTIAL_HELPER =
  'f() { test "$1" = get || return 0; h=; while read -r l; do case "$l" in host=*) h="${l#host=}";; esac; done; ' +
  'test -n "$h" && test "$h" = "$DRAFTSMAN_GIT_HOST" || return 0; ' +
  'printf "username=%s\\npassword=%s\\n" "${DRAFTSMAN_GIT_USERNAME:-x-access-token}" "$DRAFTSMAN_GIT_TOKEN"; }; f';

export const CLONE_SCRIPT = [
  'set -eu',
  // A token reaches git through a credential helper on the command line: never in the
  // remote URL, never in .git/config. The helper reads it from the environment.
  'if [ -n "${DRAFTSMAN_GIT_TOKEN:-}" ]; then',
  `  git() { command git -c credential.helper= -c 'credential.helper=!${CREDENTIAL_HELPER}' "$@"; }`,
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

/**
 * The clone's environment. `gitToken`: the token itself, or `placeholder` when the egress
 * proxy adds it (the step's start puts the job's placeholder in CLONE_TOKEN_ENV).
 */
export function cloneEnv(repo: string, commit: string, gitToken?: string | { placeholder: true }): Record<string, string> {
  // The host as git names it in a credential request: with the port when it is not the scheme's default.
  const host = gitToken ? new URL(repo).host : '';
  return {
    DRAFTSMAN_REPO: repo,
    DRAFTSMAN_COMMIT: commit,
    GIT_TERMINAL_PROMPT: '0',
    ...(typeof gitToken === 'string' ? { [CLONE_TOKEN_ENV]: gitToken } : {}),
    ...(gitToken ? { DRAFTSMAN_GIT_HOST: host } : {}),
  };
}
