import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { killOnExit, waitForPort } from '../../stack/temporal';
import { freePort } from './env';

export interface GitFixture {
  /** git:// URL of the repository on 127.0.0.1. */
  url: string;
  /** Commits oldest first; each writes `marker` with the text `commit-N`. */
  commits: string[];
  /** The branch head (the newest commit). */
  head: string;
  stop(): Promise<void>;
}

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'fixture',
      GIT_AUTHOR_EMAIL: 'fixture@localhost',
      GIT_COMMITTER_NAME: 'fixture',
      GIT_COMMITTER_EMAIL: 'fixture@localhost',
    },
  }).trim();

/** A repository with `count` commits served by `git daemon` on 127.0.0.1. */
export async function startGitFixture(count = 3): Promise<GitFixture> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'draftsman-git-'));
  const work = path.join(root, 'work');
  fs.mkdirSync(work);
  git(work, 'init', '-q', '-b', 'main');
  const commits: string[] = [];
  for (let i = 1; i <= count; i++) {
    fs.writeFileSync(path.join(work, 'marker'), `commit-${i}\n`);
    git(work, 'add', 'marker');
    git(work, 'commit', '-q', '-m', `commit ${i}`);
    commits.push(git(work, 'rev-parse', 'HEAD'));
  }
  git(root, 'clone', '-q', '--bare', work, path.join(root, 'repo.git'));

  const port = await freePort();
  const daemon: ChildProcess = spawn(
    'git',
    ['daemon', '--reuseaddr', '--export-all', `--base-path=${root}`, '--listen=127.0.0.1', `--port=${port}`, root],
    { stdio: 'ignore' },
  );
  killOnExit(daemon, 'SIGTERM');
  await waitForPort(port, '127.0.0.1', 10_000);
  return {
    url: `git://127.0.0.1:${port}/repo.git`,
    commits,
    head: commits[commits.length - 1]!,
    async stop() {
      await new Promise<void>((resolve) => {
        if (daemon.exitCode !== null) return resolve();
        daemon.once('exit', () => resolve());
        daemon.kill('SIGTERM');
      });
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}
