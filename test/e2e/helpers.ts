import net from 'node:net';
import type { JobStore } from '../../db/store';
import type { Runner, StepRef } from '../../runner/runner';

/** Polls the audit trail until the step has a row with the given status. */
export async function waitForStep(
  store: JobStore,
  jobId: string,
  step: string,
  status = 'running',
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await store.getJob(jobId);
    if (job?.steps.some((s) => `${s.kind}-${s.index}` === step && s.status === status)) return;
    if (Date.now() > deadline) throw new Error(`step ${step} of ${jobId} never reached ${status}: ${JSON.stringify(job)}`);
    await sleep(50);
  }
}

/** Polls the engine until the step's container runs (the audit row comes just before it starts). */
export async function waitForContainer(runner: Runner, ref: StepRef, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await runner.status(ref)).state !== 'running') {
    if (Date.now() > deadline) throw new Error(`container of ${JSON.stringify(ref)} never ran`);
    await sleep(50);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TCP server on 127.0.0.1 that accepts connections and never answers: a git remote that hangs. */
export async function startSilentServer(): Promise<{ url: string; stop(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `git://127.0.0.1:${port}/hangs.git`,
    stop: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
