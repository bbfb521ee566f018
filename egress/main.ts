/**
 * `node dist/egress/main.js`: the egress service of one host. Started by `npm start`
 * as a process of its own, and as its own service in compose.
 */
import http from 'node:http';
import { loadConfig, requireDatabaseUrl } from '../common/config';
import { createLogger } from '../common/logger';
import { Metrics } from '../common/metrics';
import { JobStore } from '../db/store';
import { startEgressService } from './service';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.DRAFTSMAN_LOG_LEVEL, 'draftsman-egress');
  const jobs = JobStore.connect(requireDatabaseUrl(config), 4);
  await jobs.migrate();
  const metrics = new Metrics({ processMetrics: true });
  const service = await startEgressService(config, jobs.pool, logger, metrics);
  const metricsServer =
    config.DRAFTSMAN_EGRESS_METRICS_PORT === 0
      ? null
      : http
          .createServer((req, res) => {
            if (req.url !== '/metrics') return void res.writeHead(404).end();
            void metrics.render().then(({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body));
          })
          .listen(config.DRAFTSMAN_EGRESS_METRICS_PORT, config.DRAFTSMAN_API_HOST);
  logger.info({ socketDir: config.DRAFTSMAN_EGRESS_SOCKET_DIR, jobs: service.jobs().length }, 'draftsman egress service ready');
  // The embedded start supervises this process over an IPC channel (whatever the log level).
  process.send?.('ready');
  const stop = async () => {
    metricsServer?.close();
    await service.stop();
    await jobs.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

main().catch((err) => {
  console.error(`[draftsman-egress] ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
