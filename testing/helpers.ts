import { execFile } from 'node:child_process';
import type { Server } from 'node:http';
import { promisify } from 'node:util';
import type { Express } from 'express';
import { GIT_HOST, HANGING_REPO } from './git-fixture';
import type { JobStore } from '../db/store';
import type { Runner, StepRef } from '../runner/runner';

/**
 * Polls `check` every `everyMs` until it holds; fails naming `what` after
 * `timeoutMs`. Every wait of the tests and the benchmarks goes through here.
 */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string | (() => string | Promise<string>),
  { timeoutMs = 60_000, everyMs = 50 } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : await what()}`);
    await sleep(everyMs);
  }
}

/** Polls the audit trail until the step has a row with the given status. */
export async function waitForStep(store: JobStore, jobId: string, step: string, status = 'running'): Promise<void> {
  const reached = async () => Boolean((await store.getJob(jobId))?.steps.some((s) => `${s.kind}-${s.index}` === step && s.status === status));
  await waitFor(reached, async () => `step ${step} of ${jobId} to reach ${status}: ${JSON.stringify(await store.getJob(jobId))}`);
}

/** Polls the engine until the step's container runs (the audit row comes just before it starts). */
export async function waitForContainer(runner: Runner, ref: StepRef): Promise<void> {
  await waitFor(async () => (await runner.status(ref)).state === 'running', `the container of ${JSON.stringify(ref)} to run`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A repository on the suite's git server that accepts requests and never answers: a remote that hangs. */
export function hangingRepoUrl(): string {
  return `http://${GIT_HOST}:${process.env.DRAFTSMAN_TEST_GIT_PORT}/${HANGING_REPO}`;
}

/** An API app of a test's own (another config or token set than the stack's) on a free loopback port. */
export async function listen(app: Express): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A program's exit code and its output (stdout, then stderr), whether it succeeded or not; -1 when it could not run or was killed. */
export function runTool(
  file: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout: number },
): Promise<{ code: number; out: string }> {
  return promisify(execFile)(file, args, { ...opts, maxBuffer: 64 * 1024 * 1024 }).then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (err: { code?: number | string; stdout?: string; stderr?: string }) => ({
      code: typeof err.code === 'number' ? err.code : -1,
      out: `${typeof err.code === 'number' ? '' : `${String(err.code)}\n`}${err.stdout ?? ''}${err.stderr ?? ''}`,
    }),
  );
}
