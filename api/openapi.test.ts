import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../common/paths';
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
  // Signing in and reading the session are public, and answer 401 for a token or a session that is not one.
  expect('401' in op.responses).toBe(secured || ['openSession', 'getSession', 'submitLoginForm'].includes(op.operationId ?? ''));
  // Signing in answers 429 past the per-address rate of attempts.
  expect('429' in op.responses).toBe(secured || ['openSession', 'submitLoginForm'].includes(op.operationId ?? ''));
});

test('the committed document passes Redocly lint (recommended rules, the exceptions in .redocly.lint-ignore.yaml)', () => {
  const cli = path.join(projectRoot(), 'node_modules', '@redocly', 'cli', 'bin', 'cli.js');
  const run = spawnSync(process.execPath, [cli, 'lint', committedOpenApiPath(projectRoot()), '--format=stylish'], {
    cwd: projectRoot(),
    encoding: 'utf8',
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
    timeout: 60_000,
  });
  const out = `${run.stdout}${run.stderr}`;
  // The counts, for the test log.
  console.log(
    out
      .split('\n')
      .filter((l) => /valid|ignored|error|warning/i.test(l) && !l.includes('║'))
      .join('\n'),
  );
  expect(out).not.toMatch(/\b(error|warning)\b\s+[a-z0-9-]+\s/);
  expect(run.status).toBe(0);
});

test('client/api-types.ts is generated from the committed document (else: npm run openapi)', () => {
  const out = path.join(os.tmpdir(), `api-types-${process.pid}.ts`);
  const cli = path.join(projectRoot(), 'node_modules', 'openapi-typescript', 'bin', 'cli.js');
  try {
    const run = spawnSync(process.execPath, [cli, committedOpenApiPath(projectRoot()), '-o', out], { cwd: projectRoot(), encoding: 'utf8', timeout: 60_000 });
    expect(run.status).toBe(0);
    expect(fs.readFileSync(path.join(projectRoot(), 'client', 'api-types.ts'), 'utf8')).toBe(fs.readFileSync(out, 'utf8'));
  } finally {
    fs.rmSync(out, { force: true });
  }
});
