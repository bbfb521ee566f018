import fs from 'node:fs';
import { projectRoot } from '../stack/paths';
import { committedOpenApiPath, openApiDocument, packageVersion } from './openapi';

type Op = { operationId?: string; tags?: string[]; security?: unknown[]; responses: Record<string, unknown> };
const doc = openApiDocument(packageVersion(projectRoot())) as { paths: Record<string, Record<string, Op>> };
const ops = Object.entries(doc.paths).flatMap(([p, methods]) => Object.entries(methods).map(([m, op]) => [`${m.toUpperCase()} ${p}`, op] as const));

test('the committed docs/openapi.json is the document the API serves (else: npm run openapi)', () => {
  const committed: unknown = JSON.parse(fs.readFileSync(committedOpenApiPath(projectRoot()), 'utf8'));
  expect(committed).toEqual(JSON.parse(JSON.stringify(doc)));
});

test('operation ids are unique', () => {
  const ids = ops.map(([, op]) => op.operationId);
  expect(new Set(ids).size).toBe(ids.length);
});

test.each(ops)('%s has an id, a tag, its security, and 401/429 when it needs a token', (_name, op) => {
  expect(op.operationId).toMatch(/^[a-z][A-Za-z]+$/);
  expect(op.tags).toHaveLength(1);
  const secured = (op.security ?? []).length > 0;
  expect('401' in op.responses).toBe(secured);
  expect('429' in op.responses).toBe(secured);
});
