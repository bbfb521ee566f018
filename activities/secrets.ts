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

/** Shortest secret (or secret line) that is masked; shorter ones would mask ordinary text. */
const MIN_MASKED = 4;

/**
 * A function that replaces every secret value in a line of output with ***,
 * also in base64, base64url and URL-encoded form, and line by line for
 * multi-line secrets (logs are stored line by line).
 */
export function secretMasker(values: readonly string[]): (text: string) => string {
  const forms = new Set<string>();
  for (const v of values) {
    for (const line of [v, ...v.split(/\r?\n/).map((l) => l.trim())]) {
      if (line.length < MIN_MASKED) continue;
      const b64 = Buffer.from(line).toString('base64');
      for (const f of [line, b64, b64.replace(/=+$/, ''), Buffer.from(line).toString('base64url'), encodeURIComponent(line)]) {
        if (f.length >= MIN_MASKED) forms.add(f);
      }
    }
  }
  const ordered = [...forms].sort((a, b) => b.length - a.length);
  if (ordered.length === 0) return (t) => t;
  return (text) => {
    let out = text;
    for (const f of ordered) if (out.includes(f)) out = out.split(f).join('***');
    return out;
  };
}
