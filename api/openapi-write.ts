/** Writes the OpenAPI document to docs/openapi.json (`npm run openapi`); a test fails while the committed one is stale. */
import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../common/paths';
import { committedOpenApiPath, openApiDocument, packageVersion } from './openapi';

const file = committedOpenApiPath(projectRoot());
fs.writeFileSync(file, `${JSON.stringify(openApiDocument(packageVersion(projectRoot())), null, 2)}\n`);
console.log(`wrote ${path.relative(process.cwd(), file)}`);
