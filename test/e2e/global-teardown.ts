import fs from 'node:fs';
import type { DevServer } from '../../stack/temporal';
import type { EmbeddedPg } from '../../stack/postgres';
import { TEST_DATA_DIR } from '../../testing/env';
import type { GitServer } from '../../testing/git-fixture';

export default async function globalTeardown(): Promise<void> {
  const stack = (globalThis as Record<string, unknown>).__draftsmanStack as { temporal: DevServer; pg: EmbeddedPg; gitServer: GitServer } | undefined;
  await Promise.allSettled([stack?.temporal.stop(), stack?.pg.stop(), stack?.gitServer.stop()]);
  fs.rmSync(TEST_DATA_DIR, { recursive: true, force: true });
}
