/**
 * A private Docker engine for faults that restart the engine: its own socket, data
 * root, exec root and pidfile (../shared/CONTRACTS.md, Test infrastructure), so that a
 * restart never touches the engine every other test shares. Images come from the
 * machine's engine with `docker save | docker load` (no registry).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';

export interface PrivateEngine {
  /** `unix://...`, for DOCKER_HOST. */
  host: string;
  docker: Docker;
  /**
   * SIGTERM: the engine stops its containers (SIGTERM, their grace, SIGKILL). SIGKILL:
   * the engine crashes with its own containerd (a containerd left behind without
   * the engine that read its output hangs the next one's start); the containers' shims
   * live on, and the engine stops the containers when it is back.
   */
  restart(how: 'SIGTERM' | 'SIGKILL', downMs: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startPrivateEngine(opts: {
  dataRoot: string;
  images: string[];
  log: (l: string) => void;
  /** OCI runtimes to register, as in daemon.json's "runtimes" (gVisor's runsc). */
  runtimes?: Record<string, { path: string; runtimeArgs?: string[] }>;
}): Promise<PrivateEngine> {
  // Unix socket paths are short (108 bytes): the exec root, which holds the sockets, lives in the temp folder.
  const execRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-engine-'));
  const socket = path.join(execRoot, 'docker.sock');
  const host = `unix://${socket}`;
  const docker = new Docker({ socketPath: socket });
  fs.mkdirSync(opts.dataRoot, { recursive: true });
  const logFile = path.join(opts.dataRoot, '..', 'dockerd.log');
  const configFile = path.join(execRoot, 'daemon.json');
  fs.writeFileSync(configFile, JSON.stringify({ runtimes: opts.runtimes ?? {} }));

  let engine: ChildProcess;
  const launch = async () => {
    const out = fs.openSync(logFile, 'a');
    engine = spawn(
      'dockerd',
      [
        '--host',
        host,
        '--data-root',
        opts.dataRoot,
        '--exec-root',
        execRoot,
        '--pidfile',
        path.join(execRoot, 'docker.pid'),
        '--config-file',
        configFile,
        // Like the engine `npm start` brings up: no bridge, steps on network none or host.
        '--bridge=none',
        '--iptables=false',
        '--ip-masq=false',
      ],
      { stdio: ['ignore', out, out], detached: true },
    );
    fs.closeSync(out);
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await docker.ping();
        return;
      } catch (err) {
        if (Date.now() > deadline || engine.exitCode !== null) {
          throw new Error(`the private engine did not come up: ${String(err)}\n${tail(logFile)}`, { cause: err });
        }
        await sleep(200);
      }
    }
  };
  const exited = () => new Promise<void>((r) => (engine.exitCode !== null || engine.signalCode !== null ? r() : engine.once('exit', () => r())));

  const stop = async () => {
    // Whatever still runs goes with the engine; its data root is removed by the caller's folder.
    engine.kill('SIGTERM');
    await Promise.race([exited(), sleep(30_000)]);
    engine.kill('SIGKILL');
    await exited();
    // The engine's own containerd and shims end with it; a shim left over holds the mounts.
    try {
      execFileSync('pkill', ['-KILL', '-f', execRoot]);
    } catch {
      // none left
    }
    for (const m of [...mountsUnder(opts.dataRoot), ...mountsUnder(execRoot)]) unmount(m);
    fs.rmSync(execRoot, { recursive: true, force: true });
  };

  await launch();
  try {
    const have = new Set((await docker.listImages()).flatMap((i) => i.RepoTags ?? []));
    for (const image of opts.images.filter((i) => !have.has(i))) {
      opts.log(`loading ${image} into the private engine`);
      execFileSync('sh', ['-c', `docker save "$1" | DOCKER_HOST="$2" docker load -q`, 'sh', image, host], { stdio: ['ignore', 'ignore', 'inherit'] });
    }
  } catch (err) {
    // An image that cannot be copied (the machine's engine down): no engine is left behind.
    await stop().catch(() => undefined);
    throw err;
  }

  return {
    host,
    docker,
    async restart(how, downMs) {
      const containerd = how === 'SIGKILL' ? childrenOf(engine.pid!) : [];
      for (const pid of containerd) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // a short-lived child (the engine runs a few) that has ended meanwhile
        }
      }
      engine.kill(how);
      // A graceful stop waits for the containers' grace periods; a stuck one is killed.
      await Promise.race([exited(), sleep(30_000)]);
      engine.kill('SIGKILL');
      await exited();
      // Where no init reaps orphans, the killed containerd stays a zombie, which the next
      // engine takes for a containerd still running and waits on: its pidfile goes.
      if (containerd.length) fs.rmSync(path.join(execRoot, 'containerd', 'containerd.pid'), { force: true });
      await sleep(downMs);
      await launch();
    },
    stop,
  };
}

/** Mount points the engine left at or under a folder (its own bind mount of the data root, overlay layers, shm, its network namespace), deepest first. */
function mountsUnder(root: string): string[] {
  const mounts = fs
    .readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '');
  return mounts.filter((m) => m === root || m.startsWith(`${root}/`)).sort((a, b) => b.length - a.length);
}

/**
 * Removes a folder that held an engine's data: a mount the engine left (an overlay layer of
 * a container whose shim outlived a kill) makes rmdir fail with EBUSY, so whatever is
 * still mounted under it is unmounted, lazily, and the removal tried again a few times.
 */
export async function removeEngineFolder(dir: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EBUSY' || attempt >= 5) throw err;
      // A shim or container process still running keeps its mounts in its own namespace.
      try {
        execFileSync('pkill', ['-KILL', '-f', dir]);
      } catch {
        // none left
      }
      for (const m of mountsUnder(dir)) unmount(m);
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
}

function unmount(mount: string): void {
  try {
    execFileSync('umount', ['-l', mount]);
  } catch {
    // already gone
  }
}

function childrenOf(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** The engine's last words, for an error that says why it did not come up. */
function tail(file: string): string {
  const lines = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => !l.includes('level=debug') && !l.includes('[core]'));
  return lines.slice(-8).join('\n');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
