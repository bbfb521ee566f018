/** Each operation of the API: its id, tag and scope, and the methods each path has. */
import type { Scope } from './auth';

/**
 * Each operation's id, tag and scope (`null`: served without a token). One table, so that
 * a route added without its line here fails the document's test.
 */
export const OPERATIONS: Record<string, { id: string; tag: string; scope: Scope | null }> = {
  'get /health': { id: 'getHealth', tag: 'service', scope: null },
  'get /metrics': { id: 'getMetrics', tag: 'service', scope: 'read' },
  'get /openapi.json': { id: 'getOpenApi', tag: 'service', scope: null },
  'get /problems': { id: 'listProblemTypes', tag: 'service', scope: null },
  'get /problems/{code}': { id: 'getProblemType', tag: 'service', scope: null },
  'get /login': { id: 'getLoginPage', tag: 'service', scope: null },
  'post /login': { id: 'submitLoginForm', tag: 'service', scope: null },
  'post /v1/session': { id: 'openSession', tag: 'service', scope: null },
  'get /v1/session': { id: 'getSession', tag: 'service', scope: null },
  'delete /v1/session': { id: 'closeSession', tag: 'service', scope: null },
  'post /v1/jobs': { id: 'startJob', tag: 'jobs', scope: 'write' },
  'get /v1/jobs': { id: 'listJobs', tag: 'jobs', scope: 'read' },
  'get /v1/jobs/{id}': { id: 'getJob', tag: 'jobs', scope: 'read' },
  'get /v1/jobs/{id}/events': { id: 'listJobEvents', tag: 'jobs', scope: 'read' },
  'get /v1/jobs/{id}/logs': { id: 'getJobLogs', tag: 'jobs', scope: 'read' },
  'get /v1/jobs/{id}/patch': { id: 'getJobPatch', tag: 'jobs', scope: 'read' },
  'post /v1/jobs/{id}/cancel': { id: 'cancelJob', tag: 'jobs', scope: 'write' },
  'post /v1/jobs/{id}/rerun': { id: 'rerunJob', tag: 'jobs', scope: 'write' },
  'post /v1/jobs/{id}/approval': { id: 'decideApproval', tag: 'jobs', scope: 'approve' },
  'get /v1/jobs/{id}/wait': { id: 'waitForJob', tag: 'jobs', scope: 'read' },
  'get /v1/jobs/{id}/logs/ws': { id: 'followJobLogsWebSocket', tag: 'jobs', scope: 'read' },
  'get /v1/hosts': { id: 'listHosts', tag: 'hosts', scope: 'read' },
  'get /v1/hosts/{hostId}': { id: 'getHost', tag: 'hosts', scope: 'read' },
  'post /v1/hosts/{hostId}/drain': { id: 'drainHost', tag: 'hosts', scope: 'admin' },
  'post /v1/hosts/{hostId}/undrain': { id: 'undrainHost', tag: 'hosts', scope: 'admin' },
  'get /v1/caches': { id: 'listCaches', tag: 'caches', scope: 'admin' },
  'delete /v1/caches/{cacheId}': { id: 'deleteCache', tag: 'caches', scope: 'admin' },
  'post /v1/webhooks': { id: 'createWebhook', tag: 'webhooks', scope: 'admin' },
  'get /v1/webhooks': { id: 'listWebhooks', tag: 'webhooks', scope: 'admin' },
  'get /v1/webhooks/{webhookId}': { id: 'getWebhook', tag: 'webhooks', scope: 'admin' },
  'delete /v1/webhooks/{webhookId}': { id: 'deleteWebhook', tag: 'webhooks', scope: 'admin' },
  'post /v1/webhooks/{webhookId}/rotate': { id: 'rotateWebhookSecret', tag: 'webhooks', scope: 'admin' },
  'get /v1/webhooks/{webhookId}/deliveries': { id: 'listWebhookDeliveries', tag: 'webhooks', scope: 'admin' },
  'post /v1/webhooks/{webhookId}/deliveries/{deliveryId}/redeliver': { id: 'redeliverWebhook', tag: 'webhooks', scope: 'admin' },
  'post /codec/encode': { id: 'encodePayloads', tag: 'codec', scope: 'read' },
  'options /codec/encode': { id: 'encodePayloadsPreflight', tag: 'codec', scope: null },
  'post /codec/decode': { id: 'decodePayloads', tag: 'codec', scope: 'read' },
  'options /codec/decode': { id: 'decodePayloadsPreflight', tag: 'codec', scope: null },
};

const ROUTES = Object.keys(OPERATIONS).map((key) => {
  const [method, template] = key.split(' ') as [string, string];
  return { method: method.toUpperCase(), pattern: new RegExp(`^${template.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+')}$`) };
});

/** The methods a documented path has (HEAD with GET), or none for a path the API does not have. */
export function allowedMethods(path: string): string[] {
  const methods = ROUTES.filter((r) => r.pattern.test(path)).map((r) => r.method);
  if (methods.includes('GET')) methods.push('HEAD');
  return [...new Set(methods)].sort();
}
