import { secretScanner } from '../common/secret-scan';

export { SecretStore, UnknownSecretError } from '../common/secret-store';

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
