import fs from 'node:fs';
import path from 'node:path';
import { secretScanner } from '../common/secret-scan';

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

/**
 * A function that replaces every secret value in a text with ***, in every form the
 * scanner knows (common/secret-scan.ts), and line by line for multi-line secrets.
 */
export function secretMasker(values: readonly string[]): (text: string) => string {
  const scanner = secretScanner(values);
  return scanner.empty ? (t) => t : (t) => scanner.mask(t);
}

/** Whether a text holds a secret in any form the scanner knows (a file that does is withheld from the patch, a cache is not kept). */
export function secretFinder(values: readonly string[]): (text: string) => boolean {
  const scanner = secretScanner(values);
  return (text) => scanner.holds(text);
}
