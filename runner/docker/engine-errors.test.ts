import { isEngineUnreachable, isWedged } from './engine-errors';

const sysErr = (code: string, message = code) => Object.assign(new Error(message), { code });

describe('isEngineUnreachable', () => {
  it.each([
    ['socket file missing (engine not running)', sysErr('ENOENT', 'connect ENOENT /run/docker.sock'), true],
    ['connection refused', sysErr('ECONNREFUSED', 'connect ECONNREFUSED /run/docker.sock'), true],
    ['connection reset while waiting', sysErr('ECONNRESET', 'read ECONNRESET'), true],
    ['server closed the connection', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), true],
    ['socket hang up without a code', new Error('socket hang up'), true],
    ['an HTTP 500 from the engine', Object.assign(new Error('(HTTP code 500) server error'), { statusCode: 500 }), false],
    ['an HTTP 404 (container gone)', Object.assign(new Error('no such container'), { statusCode: 404 }), false],
    ['our own abort', Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR' }), false],
    [
      'a bounded request the engine left unanswered',
      Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR', cause: new DOMException('timed out', 'TimeoutError') }),
      true,
    ],
    [
      'an abort for another reason',
      Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR', cause: new DOMException('stop', 'AbortError') }),
      false,
    ],
    ['not an error at all', 'ECONNRESET', false],
    ['null', null, false],
  ])('%s', (_name, err, expected) => {
    expect(isEngineUnreachable(err)).toBe(expected);
  });
});

describe('isWedged', () => {
  const http = (statusCode: number, message: string) => Object.assign(new Error(message), { statusCode });
  it.each([
    [
      'the runtime holds the task (seen after an engine SIGKILL)',
      http(500, '(HTTP code 500) server error - task c1636f1c47346f2c905640c563035c6651684c529b2b6d39e2f8636c37eb0505: already exists '),
      true,
    ],
    ['the runtime holds the container (seen after an engine SIGKILL during a start)', http(500, '(HTTP code 500) server error - id already in use '), true],
    [
      "the runtime's task folder is left (seen after an engine SIGKILL during a start, in the chaos campaign)",
      http(
        500,
        '(HTTP code 500) server error - failed to start shim: mkdir /tmp/dm-engine-05ZZXp/containerd/daemon/io.containerd.runtime.v2.task/moby/87243db38e966939f37c3a10cdc0fea0c3db04568bfeeb97e3cc047f8487d430: file exists: unknown ',
      ),
      true,
    ],
    [
      'a shim that fails for another reason',
      http(500, '(HTTP code 500) server error - failed to start shim: exec: "containerd-shim-runc-v2": executable file not found in $PATH: unknown '),
      false,
    ],
    ['another server error', http(500, '(HTTP code 500) server error - OCI runtime create failed'), false],
    ['a name conflict on create', http(409, 'Conflict. The container name "/x" is already in use'), false],
    [
      'the engine has the record but not the container (a start after an engine SIGKILL)',
      http(404, '(HTTP code 404) no such container - No such container: add9e308fc038002783d7afc23ec10d39faf3b3287f0a96d788df69446683520 '),
      true,
    ],
    ['no such image', http(404, '(HTTP code 404) no such image - No such image: x:1'), false],
    [
      'a start whose network is missing (dockerode words it as a missing container)',
      http(404, '(HTTP code 404) no such container - failed to set up container networking: network draftsman-no-such-network not found '),
      false,
    ],
    ['a connection error', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), false],
  ])('%s', (_name, err, expected) => {
    expect(isWedged(err)).toBe(expected);
  });
});
