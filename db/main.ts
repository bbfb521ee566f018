/**
 * Compose's one-shot database set-up: connects as the administrator (DATABASE_URL and
 * DATABASE_PASSWORD[_FILE]) and makes the application's role, whose password it keeps in
 * DRAFTSMAN_DB_APP_PASSWORD_PATH for the services (docs/deployment.md).
 */
import { ConfigError, loadConfig, requireDatabaseUrl } from '../common/config';
import { setUpApplicationRole } from './admin';

async function main(): Promise<void> {
  const config = loadConfig();
  const file = config.DRAFTSMAN_DB_APP_PASSWORD_PATH;
  if (!file) throw new ConfigError('invalid configuration:\n  DRAFTSMAN_DB_APP_PASSWORD_PATH: required');
  await setUpApplicationRole(requireDatabaseUrl(config), file, (line) => console.log(`[draftsman-db] ${line}`));
}

main().catch((err) => {
  console.error(`[draftsman-db] ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
