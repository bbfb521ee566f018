/** A job spec as the CLI reads it: JSON, or YAML (by a .yaml/.yml name, or text that is not JSON). Pure. */
import { parse as parseYaml } from 'yaml';

export class SpecFileError extends Error {}

export function parseSpec(text: string, name: string): unknown {
  const yaml = /\.ya?ml$/i.test(name);
  if (!yaml) {
    try {
      return JSON.parse(text);
    } catch (err) {
      // Not JSON: YAML is tried next, unless the name says JSON.
      if (/\.json$/i.test(name)) throw new SpecFileError(`cannot read a JSON spec from ${name}: ${(err as Error).message}`);
    }
  }
  let value: unknown;
  try {
    value = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    throw new SpecFileError(`cannot read a ${yaml ? 'YAML' : 'JSON or YAML'} spec from ${name}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new SpecFileError(`cannot read a ${yaml ? 'YAML' : 'JSON or YAML'} spec from ${name}: it is not a mapping of fields`);
  }
  return value;
}
