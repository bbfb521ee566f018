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
 * Shortest secret whose encoded forms (base64 inside a longer string, hex) are masked:
 * the part of such a form that depends on the secret alone is about 4/3 of it long, and
 * a shorter one turns up in ordinary output by chance.
 */
export const MIN_ENCODED = 8;

/**
 * The base64 of `value` wherever it sits in a longer text: a text's base64 holds the
 * value's bytes at one of three alignments, and at each the characters that depend on
 * the value alone are the same whatever surrounds it.
 */
function base64Cores(value: Buffer): string[] {
  const cores: string[] = [];
  for (let shift = 0; shift < 3; shift++) {
    const b64 = Buffer.concat([Buffer.alloc(shift), value]).toString('base64');
    const first = Math.ceil((8 * shift) / 6);
    const end = Math.floor((8 * (shift + value.length)) / 6);
    const core = b64.slice(first, end);
    cores.push(core, core.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return cores;
}

/** The forms of one secret (or one line of it) that are masked. */
export function maskedForms(line: string): string[] {
  if (line.length < MIN_MASKED) return [];
  const bytes = Buffer.from(line);
  const b64 = bytes.toString('base64');
  const forms = [line, b64, b64.replace(/=+$/, ''), bytes.toString('base64url'), encodeURIComponent(line)];
  // Percent-encoding in lower case, and form encoding (space as +), are the same bytes.
  forms.push(encodeURIComponent(line).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()), encodeURIComponent(line).replace(/%20/g, '+'));
  if (line.length >= MIN_ENCODED) {
    forms.push(...base64Cores(bytes), bytes.toString('hex'), bytes.toString('hex').toUpperCase());
  }
  return forms.filter((f) => f.length >= MIN_MASKED);
}

/**
 * A function that replaces every secret value in a text with ***: plain, base64 (also
 * inside a longer base64 string, at any alignment), base64url, URL-encoded and hex, and
 * line by line for multi-line secrets (logs are stored line by line).
 */
export function secretMasker(values: readonly string[]): (text: string) => string {
  const forms = new Set<string>();
  for (const v of values) {
    for (const line of [v, ...v.split(/\r?\n/).map((l) => l.trim())]) for (const f of maskedForms(line)) forms.add(f);
  }
  const ordered = [...forms].sort((a, b) => b.length - a.length);
  if (ordered.length === 0) return (t) => t;
  return (text) => {
    let out = text;
    for (const f of ordered) if (out.includes(f)) out = out.split(f).join('***');
    return out;
  };
}

/** Whether a text holds a secret in any masked form (a file that does is withheld from the patch). */
export function secretFinder(values: readonly string[]): (text: string) => boolean {
  const mask = secretMasker(values);
  return (text) => mask(text) !== text;
}
