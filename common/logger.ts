import { DefaultLogger, type LogEntry, type LogLevel } from '@temporalio/worker';
import pino, { type Logger } from 'pino';

export type { Logger };

/** JSON lines on stdout, one logger per process; children carry jobId and step. */
export function createLogger(level: LogLevel, name: string): Logger {
  return pino({ name, level: level.toLowerCase(), base: { service: name }, timestamp: pino.stdTimeFunctions.isoTime });
}

/**
 * The Temporal SDK's own log lines, as JSON through the same logger. The SDK's
 * workflowId is the job id, so it is added as jobId too.
 */
export function temporalLogger(logger: Logger, level: LogLevel): DefaultLogger {
  return new DefaultLogger(level, (entry: LogEntry) => {
    const meta = { ...(entry.meta ?? {}) } as Record<string, unknown>;
    if (typeof meta.workflowId === 'string') meta.jobId = meta.workflowId;
    const method = entry.level === 'TRACE' ? 'trace' : (entry.level.toLowerCase() as 'debug' | 'info' | 'warn' | 'error');
    logger[method](meta, entry.message);
  });
}
