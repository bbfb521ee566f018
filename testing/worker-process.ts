import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { projectRoot } from '../common/paths';
import { killOnExit } from '../stack/temporal';
import { TEST_DATA_DIR, TEST_PAYLOAD_KEYS } from './env';

const ROOT = projectRoot();

/** Compiles the sources once so that a worker can run as its own process (dist/worker/main.js), and builds the dashboard. */
export function buildDist(): void {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  execFileSync(process.execPath, ['web/build.mjs'], { cwd: ROOT, stdio: 'inherit' });
}

export interface WorkerProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code or signal. */
  exited: Promise<number | string | null>;
}

/** Starts `node dist/worker/main.js` (or another checkout's entry) and resolves once it polls its task queue. */
export async function startWorkerProcess(env: Record<string, string>, entry = 'dist/worker/main.js'): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [entry], {
    cwd: ROOT,
    env: {
      ...process.env,
      DRAFTSMAN_WORKFLOW_BUNDLE: path.join(TEST_DATA_DIR, 'workflow-bundle.js'),
      DRAFTSMAN_JANITOR_INTERVAL_SECONDS: '0',
      DRAFTSMAN_WORKER_METRICS_PORT: '0',
      DRAFTSMAN_PAYLOAD_KEYS: TEST_PAYLOAD_KEYS,
      // The same deployment as the tests' in-process stacks, which take over its jobs.
      DRAFTSMAN_DEPLOYMENT_ID: 'test',
      DRAFTSMAN_LOG_LEVEL: 'INFO',
      // A worker a test kills would leave its ready holders until the next start on the host: the tests' in-process stacks keep them.
      DRAFTSMAN_READY_HOLDERS: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killOnExit(child, 'SIGKILL');
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Never leave a worker behind that did not come up.
      child.kill('SIGKILL');
      reject(new Error(`worker not ready:\n${output}`));
    }, 60_000);
    child.stdout!.on('data', () => {
      if (output.includes('polling task queue')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited (${code}):\n${output}`));
    });
  });
  return { child, output: () => output, exited };
}
