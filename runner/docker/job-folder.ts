/**
 * A job's folder in the egress socket folder, on the host's filesystem: made by the
 * runner when the job's workspace is prepared, listened in by the egress service, and
 * removed with the job (which tells the service to stop listening for it).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { RunnerError } from '../../common/errors';
import { JOB_CA_FILE, JOB_FILE, jobDir, SOCKET_NAME } from '../../common/egress-layout';

/** How long a new job waits for the egress service to listen on its socket before the job fails. */
export const EGRESS_LISTEN_WAIT_MS = 10_000;

/**
 * The job's folder appears whole, job file inside, by one rename in the socket folder:
 * the egress service watches that folder (not its subfolders), so it learns of the job
 * from that one event rather than from its next periodic rescan.
 */
export async function makeJobFolder(socketDir: string, jobId: string, deployment: string): Promise<void> {
  const dir = jobDir(socketDir, jobId, deployment);
  const job = JSON.stringify({ jobId, deployment });
  if (
    await fs.stat(path.join(dir, JOB_FILE)).then(
      () => true,
      () => false,
    )
  )
    return;
  await fs.mkdir(socketDir, { recursive: true, mode: 0o755 });
  const tmp = `${socketDir}/.${path.basename(dir)}.${process.pid}.${Date.now()}`;
  await fs.mkdir(tmp, { mode: 0o755 });
  await fs.writeFile(path.join(tmp, JOB_FILE), job);
  try {
    await fs.rename(tmp, dir);
  } catch (err) {
    // Made meanwhile by another attempt (or left by an older version without its job file).
    await fs.rm(tmp, { recursive: true, force: true });
    if (!['ENOTEMPTY', 'EEXIST'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
    await fs.writeFile(path.join(dir, JOB_FILE), job);
  }
}

/** Resolves once the egress service listens for the job; a service that does not is the job's failure to start, said plainly. */
export async function waitForListener(socketDir: string, jobId: string, deployment: string): Promise<void> {
  const socket = path.join(jobDir(socketDir, jobId, deployment), SOCKET_NAME);
  const until = Date.now() + EGRESS_LISTEN_WAIT_MS;
  for (;;) {
    const found = await fs.stat(socket).then(
      (st) => st.isSocket(),
      () => false,
    );
    if (found) return;
    if (Date.now() > until) {
      throw new RunnerError(
        `the egress service does not listen for job ${jobId} (no socket at ${socket} after ${EGRESS_LISTEN_WAIT_MS / 1000} s): is it running?`,
      );
    }
    // Short: a job waits here before its first step, and a stat costs little.
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * The job CA's certificate, which the egress service writes before it listens for a
 * job with credentials. Missing: the service cannot terminate TLS for the job (an
 * older service, or one that failed to make it), and the step is not started.
 */
export async function readJobCa(socketDir: string, jobId: string, deployment: string): Promise<string> {
  await waitForListener(socketDir, jobId, deployment);
  const file = path.join(jobDir(socketDir, jobId, deployment), JOB_CA_FILE);
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new RunnerError(`the egress service made no CA for job ${jobId} (${file}), which its credentials need: is it of an older version?`, err);
  }
}

export async function removeJobFolder(socketDir: string, jobId: string, deployment: string): Promise<void> {
  await fs.rm(jobDir(socketDir, jobId, deployment), { recursive: true, force: true });
}
