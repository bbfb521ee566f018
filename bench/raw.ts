/**
 * The raw side of the comparisons: what a job's containers cost with dockerode alone,
 * with the same image and options as Draftsman's (one mapping: containerOptions and
 * stepPolicy), one after another on the job's workspace volume.
 */
import type Docker from 'dockerode';
import { CLONE_SCRIPT, cloneEnv } from '../activities/clone';
import type { Config } from '../common/config';
import { containerOptions, volumeName } from '../runner/docker/convert';
import { stepPolicy } from '../worker/worker';

export async function rawJob(
  docker: Docker,
  config: Config,
  jobId: string,
  repo: { url: string; head: string },
  commands: readonly string[],
): Promise<void> {
  const policy = stepPolicy(config);
  const image = config.DRAFTSMAN_DEFAULT_IMAGE;
  const volume = volumeName(jobId, policy.deployment);
  await docker.createVolume({ Name: volume });
  const run = async (kind: 'clone' | 'setup', index: number, command: string, env: Record<string, string>) => {
    const c = await docker.createContainer(containerOptions({ jobId, kind, index, image, command, env, timeoutSeconds: 600 }, policy, new Date()));
    await c.start();
    const { StatusCode } = (await c.wait()) as { StatusCode: number };
    await c.remove({ force: true });
    if (StatusCode !== 0) throw new Error(`raw ${kind}-${index} exited ${StatusCode}`);
  };
  await run('clone', 0, CLONE_SCRIPT, cloneEnv(repo.url, repo.head));
  for (const [i, command] of commands.entries()) await run('setup', i, command, {});
  await docker.getVolume(volume).remove();
}
