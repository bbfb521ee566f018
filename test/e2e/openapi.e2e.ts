import type { Express } from 'express';
import { createApp } from '../../api/app';
import { Authenticator } from '../../api/auth';
import { DASHBOARD_PAGES } from '../../api/dashboard';
import { startTestStack, type TestStack } from '../../testing/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

interface Doc {
  openapi: string;
  paths: Record<string, Record<string, { responses: Record<string, unknown>; parameters?: { name: string }[] }>>;
  components: { schemas: Record<string, { properties?: Record<string, unknown>; additionalProperties?: unknown }> };
}

/** Method and path of every route the express app registers, in OpenAPI's {param} form. */
function routesOf(app: Express): string[] {
  const router = (app as unknown as { router: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] } }).router;
  return router.stack
    .filter((layer) => layer.route)
    .flatMap((layer) => Object.keys(layer.route!.methods).map((m) => `${m.toUpperCase()} ${layer.route!.path.replace(/:(\w+)/g, '{$1}')}`))
    .sort();
}

test('/openapi.json documents exactly the routes that exist', async () => {
  const res = await stack.api<Doc>('GET', '/openapi.json');
  expect(res.status).toBe(200);
  const doc = res.body;
  expect(doc.openapi).toBe('3.1.0');
  const documented = Object.entries(doc.paths)
    .flatMap(([p, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${p}`))
    .sort();
  const app = createApp({ store: stack.store, jobs: stack.jobs, auth: new Authenticator([], 1), config: stack.config });
  // The dashboard's pages are HTML for people, not API: the root leads to them.
  const pages = [`GET ${DASHBOARD_PAGES}`, 'GET /'];
  expect(routesOf(app).filter((r) => pages.includes(r))).toEqual(pages.sort());
  expect(documented).toEqual(routesOf(app).filter((r) => !pages.includes(r)));
  for (const [p, methods] of Object.entries(doc.paths)) {
    for (const op of Object.values(methods)) expect(Object.keys(op.responses).length).toBeGreaterThan(0);
    // Every documented route answers something other than "no such route".
    const concrete = p.replace('{id}', 'job-openapi-probe');
    for (const m of Object.keys(methods)) {
      if (concrete === '/v1/jobs' && m === 'post') continue; // would start a job
      const r = await fetch(`${stack.apiUrl}${concrete}`, {
        method: m.toUpperCase(),
        headers: { ...stack.authHeader, 'content-type': 'application/json' },
        body: m === 'post' ? '{}' : undefined,
      });
      const body = r.headers.get('content-type')?.includes('json') ? ((await r.json()) as { detail?: string }) : null;
      expect(body?.detail).not.toBe('no such route');
    }
  }
});

test('the documented request schemas are the ones the API validates with', async () => {
  const doc = (await stack.api<Doc>('GET', '/openapi.json')).body;
  const spec = doc.components.schemas.JobSpec!;
  expect(Object.keys(spec.properties ?? {}).sort()).toEqual(
    [
      'approval',
      'budget',
      'caches',
      'commit',
      'concurrency',
      'credentials',
      'egress',
      'env',
      'from',
      'gitTokenSecret',
      'image',
      'labels',
      'loop',
      'publish',
      'publishSecrets',
      'repo',
      'secrets',
      'setup',
      'snapshot',
      'timeouts',
      'validate',
    ].sort(),
  );
  // Strict objects: unknown fields are refused by the API and by the document alike.
  expect(spec.additionalProperties).toBe(false);
  const listParams = doc.paths['/v1/jobs']!.get!.parameters!.map((p) => p.name).sort();
  expect(listParams).toEqual(['commit', 'createdAfter', 'createdBefore', 'cursor', 'label', 'limit', 'principal', 'q', 'repo', 'status']);
  expect((await stack.api('GET', '/v1/jobs?colour=red')).status).toBe(400);
  const logParams = doc.paths['/v1/jobs/{id}/logs']!.get!.parameters!.map((p) => p.name).sort();
  expect(logParams).toEqual(['follow', 'id', 'lastEventId', 'step']);
});
