import fs from 'node:fs';
import path from 'node:path';

export class UnknownSecretError extends Error {
  override readonly name = 'UnknownSecretError';
  constructor(readonly ref: string) {
    super(`unknown secret reference ${ref}: not in the worker's secret store`);
  }
}

/**
 * The operator's secrets: files named by reference under DRAFTSMAN_SECRETS_DIR,
 * else the worker's environment as DRAFTSMAN_SECRET_<REF> (upper case, . and -
 * as _). Values are read in the activity that needs them and go nowhere else.
 */
export class SecretStore {
  constructor(
    private readonly dir: string | undefined,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  resolve(ref: string): string {
    if (this.dir) {
      const file = path.join(this.dir, ref);
      // ref is validated ([a-z0-9][a-z0-9_.-]*), so it names a file inside dir.
      if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    }
    const fromEnv = this.env[`DRAFTSMAN_SECRET_${ref.toUpperCase().replace(/[.-]/g, '_')}`];
    if (fromEnv !== undefined) return fromEnv;
    throw new UnknownSecretError(ref);
  }
}
