/**
 * DockerRunner on a private engine (testing/private-engine.ts) restarted under a
 * running step, gracefully and by SIGKILL: the wait and the output stream fail with
 * EngineUnreachableError at once instead of hanging, and what the engine did to the
 * container is there to find when it is back. The job-level outcome (container_lost,
 * not run again) is the chaos campaign's and boundaries.e2e.ts's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../common/config';
import { EngineUnreachableError } from '../../common/errors';
import type { LogLine, StepRef } from '../../runner/runner';
import { DockerRunner } from '../../runner/docker/docker-runner';
import { stepPolicy } from '../../worker/worker';
import { TEST_DATA_DIR } from '../../testing/env';
import { waitFor } from '../../testing/helpers';
import { type PrivateEngine, startPrivateEngine } from '../../testing/private-engine';

const config = loadConfig({ DRAFTSMAN_DEPLOYMENT_ID: 'test', DRAFTSMAN_STEP_EGRESS: 'none', DRAFTSMAN_STOP_GRACE_SECONDS: '2' });
const dir = path.join(TEST_DATA_DIR, `private-engine-${process.pid}`);
let engine: PrivateEngine;
let runner: DockerRunner;

beforeAll(async () => {
  engine = await startPrivateEngine({ dataRoot: path.join(dir, 'engine'), images: [config.DRAFTSMAN_DEFAULT_IMAGE], log: () => undefined });
  runner = new DockerRunner(engine.docker, stepPolicy(config));
}, 120_000);
afterAll(async () => {
  await engine?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}, 60_000);

const trapped = 'trap "echo got-term; exit 42" TERM; echo ready; sleep 30 & wait';

async function underRestart(how: 'SIGTERM' | 'SIGKILL') {
  const ref: StepRef = { jobId: `engine-${how.toLowerCase()}-${process.pid}`, kind: 'setup', index: 0 };
  await runner.prepareWorkspace(ref.jobId);
  await runner.start({ ...ref, image: config.DRAFTSMAN_DEFAULT_IMAGE, command: trapped, env: {}, timeoutSeconds: 60 });
  const lines: LogLine[] = [];
  const following = runner
    .followLogs(ref, (l) => void lines.push(...l), { skipLines: 0 })
    .then(
      () => 'ended',
      (e: unknown) => e,
    );
  const waiting = runner.wait(ref).then(
    (exit) => exit,
    (e: unknown) => e,
  );
  await waitFor(() => lines.some((l) => l.text === 'ready'), 'the step to say ready', { timeoutMs: 10_000 });
  const stoppedAt = Date.now();
  const restarted = engine.restart(how, 500);
  const waitEnd = await waiting;
  const waitMs = Date.now() - stoppedAt;
  const followEnd = await following;
  await restarted;
  await waitFor(async () => (await runner.status(ref)).state === 'exited', 'the restarted engine to stop the step', { timeoutMs: 30_000 });
  const state = await runner.status(ref);
  await runner.removeJob(ref.jobId);
  return { waitEnd, waitMs, followEnd, state, lines };
}

test('a graceful engine stop: the wait and the follow fail as the engine going away (not as the exit it answers), and the step got its SIGTERM', async () => {
  const r = await underRestart('SIGTERM');
  // The engine answers the open wait with the exit it caused, while it refuses new connections.
  expect(r.waitEnd).toBeInstanceOf(EngineUnreachableError);
  expect((r.waitEnd as Error).message).toMatch(/the engine is stopping/);
  // It drains the output of what it stopped before it closes the stream; the check for
  // lines left after it (the engine can end a follow early) meets the stopping engine.
  expect(r.followEnd).toBeInstanceOf(EngineUnreachableError);
  expect(r.state).toMatchObject({ state: 'exited', exit: { exitCode: 42 } });
  expect(r.lines.map((l) => l.text)).toContain('got-term');
}, 90_000);

test('an engine killed with SIGKILL: the wait fails at once (it does not hang on the dead connection), and the engine stops the step when it is back', async () => {
  const r = await underRestart('SIGKILL');
  expect(r.waitEnd).toBeInstanceOf(EngineUnreachableError);
  expect(r.waitMs).toBeLessThan(5_000);
  expect(r.followEnd).toBeInstanceOf(EngineUnreachableError);
  expect(r.state.state).toBe('exited');
}, 90_000);
