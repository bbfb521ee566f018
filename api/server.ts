import type { Server } from 'node:http';
import { Client, type ConnectionLike } from '@temporalio/client';
import { JobsClient } from '../client/jobs';
import { dataConverterFor } from '../common/codec';
import { type Config, ConfigError } from '../common/config';
import { Authenticator, loadTokens } from './auth';
import type { Logger } from '../common/logger';
import type { Metrics } from '../common/metrics';
import type { JobStore } from '../db/store';
import { createApp } from './app';
import { WebhookStore } from '../db/webhook-store';
import { parseExceptions } from '../common/egress-policy';
import { WebhookDispatcher } from '../webhooks/dispatcher';

/** Builds the API on its dependencies and listens; resolves once it accepts connections. */
export async function listenApi(
  config: Config,
  store: JobStore,
  connection: ConnectionLike,
  observe: { metrics: Metrics; logger: Logger },
): Promise<{ server: Server; url: string }> {
  const dataConverter = dataConverterFor(config);
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE, dataConverter });
  const tokens = loadTokens(config);
  if (tokens.length === 0) {
    throw new ConfigError('invalid configuration:\n  DRAFTSMAN_API_TOKENS: the API needs at least one token (or DRAFTSMAN_API_TOKENS_FILE)');
  }
  const app = createApp({
    store,
    auth: new Authenticator(tokens, config.DRAFTSMAN_API_RATE_PER_MINUTE, config.DRAFTSMAN_SIGNIN_PER_MINUTE),
    codec: dataConverter?.payloadCodecs[0],
    jobs: new JobsClient(client, { taskQueue: config.DRAFTSMAN_TASK_QUEUE }),
    config,
    metrics: observe.metrics,
    logger: observe.logger,
    log: (line) => observe.logger.error(line),
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.PORT, config.DRAFTSMAN_API_HOST, () => resolve(s));
    s.once('error', reject);
  });
  if (config.DRAFTSMAN_WEBHOOK_DELIVERY === 'on') {
    const dispatcher = new WebhookDispatcher({
      store: new WebhookStore(store.pool),
      exceptions: parseExceptions(config.DRAFTSMAN_WEBHOOK_EXCEPTIONS),
      retrySeconds: config.DRAFTSMAN_WEBHOOK_RETRY_SECONDS,
      log: (line) => observe.logger.warn(line),
    }).start();
    server.on('close', () => void dispatcher.stop());
  }
  const { port } = server.address() as { port: number };
  return { server, url: `http://${config.DRAFTSMAN_API_HOST}:${port}` };
}
