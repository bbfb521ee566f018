/**
 * The raw side of the comparisons: what a job's containers cost with dockerode alone,
 * with the same image and options as Draftsman's (one mapping: containerOptions and
 * stepPolicy), one after another on the job's workspace volume, in its network holder.
 */
import type Docker from 'dockerode';
import { CLONE_SCRIPT, cloneEnv } from '../activities/clone';
import type { Config } from '../common/config';
import { resolveJobSpec, specPolicy } from '../common/spec';
import type { JobStore } from '../db/store';
import { containerOptions } from '../runner/docker/convert';
import { DockerRunner } from '../runner/docker/docker-runner';
import { stepPolicy } from '../worker/worker';

export async function rawJob(
  docker: Docker,
  config: Config,
  store: JobStore,
  jobId: string,
  repo: { url: string; head: string; egressException: string },
  commands: readonly string[],
): Promise<void> {
  const policy = stepPolicy(config);
  // The egress proxy decides by the job's row: one that lets every container reach the fixture.
  await store.recordAccepted(jobId, `raw-${jobId}`, {
    ...resolveJobSpec({ repo: repo.url, commit: repo.head, egress: { allow: [repo.egressException] } }, specPolicy(config)),
  });
  const image = config.DRAFTSMAN_DEFAULT_IMAGE;
  // The job's workspace and network holder as Draftsman makes them: the steps below join
  // the holder, and reach the git fixture through the egress proxy.
  const runner = new DockerRunner(docker, policy);
  await runner.prepareWorkspace(jobId);
  const run = async (kind: 'clone' | 'setup', index: number, command: string, env: Record<string, string>) => {
    const c = await docker.createContainer(containerOptions({ jobId, kind, index, image, command, env, timeoutSeconds: 600 }, policy, new Date()));
    await c.start();
    const { StatusCode } = (await c.wait()) as { StatusCode: number };
    await c.remove({ force: true });
    if (StatusCode !== 0) throw new Error(`raw ${kind}-${index} exited ${StatusCode}`);
  };
  await run('clone', 0, CLONE_SCRIPT, cloneEnv(repo.url, repo.head));
  for (const [i, command] of commands.entries()) await run('setup', i, command, {});
  await runner.removeJob(jobId);
}
