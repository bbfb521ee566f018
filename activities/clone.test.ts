import { execFileSync } from 'node:child_process';
import { cloneEnv, CREDENTIAL_HELPER } from './clone';

/**
 * Runs the helper as git would (sh, the action as $1, the request on stdin). A helper may
 * leave its input unread (git ignores the broken pipe): what it left is drained after it,
 * so that writing the request never races the helper's exit.
 */
const ask = (action: string, request: string, env: Record<string, string>) =>
  execFileSync('sh', ['-c', `${CREDENTIAL_HELPER} "$@"; status=$?; cat >/dev/null; exit $status`, 'helper', action], {
    input: request,
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
  });

describe('the git credential helper', () => {
  const env = cloneEnv('https://git.example.com:8443/org/repo.git', 'a'.repeat(40), 'tok3n');
  it.each([
    ['the repository host and port', 'get', 'protocol=https\nhost=git.example.com:8443\n', 'username=x-access-token\npassword=tok3n\n'],
    ['the same host on another port', 'get', 'protocol=https\nhost=git.example.com\n', ''],
    ['another host (a redirect, a submodule)', 'get', 'protocol=https\nhost=evil.example.org\n', ''],
    ['a request naming no host', 'get', 'protocol=https\n', ''],
    ['store, which it ignores', 'store', 'protocol=https\nhost=git.example.com:8443\nusername=u\npassword=p\n', ''],
  ])('%s', (_name, action, request, expected) => {
    expect(ask(action, request, env)).toBe(expected);
  });

  it('is given the host as git names it', () => {
    expect(cloneEnv('https://git.example.com/r.git', 'a'.repeat(40), 't').DRAFTSMAN_GIT_HOST).toBe('git.example.com');
    expect(cloneEnv('https://git.example.com/r.git', 'a'.repeat(40))).not.toHaveProperty('DRAFTSMAN_GIT_TOKEN');
  });

  it('answers with the placeholder the step is started with, when the egress proxy adds the token', () => {
    const viaProxy = cloneEnv('https://git.example.com:8443/org/repo.git', 'a'.repeat(40), { placeholder: true });
    expect(viaProxy).not.toHaveProperty('DRAFTSMAN_GIT_TOKEN');
    expect(viaProxy.DRAFTSMAN_GIT_HOST).toBe('git.example.com:8443');
    const started = { ...viaProxy, DRAFTSMAN_GIT_TOKEN: 'draftsman-credential-0123' };
    expect(ask('get', 'protocol=https\nhost=git.example.com:8443\n', started)).toBe('username=x-access-token\npassword=draftsman-credential-0123\n');
  });
});
