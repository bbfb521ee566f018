/** The methods each documented path has, from the route table (routes.ts). */
import { ROUTES } from './routes';

const MATCHERS = ROUTES.map((r) => ({
  method: r.method.toUpperCase(),
  pattern: new RegExp(`^${r.path.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+')}$`),
}));

/** The methods a documented path has (HEAD with GET), or none for a path the API does not have. */
export function allowedMethods(path: string): string[] {
  const methods = MATCHERS.filter((r) => r.pattern.test(path)).map((r) => r.method);
  if (methods.includes('GET')) methods.push('HEAD');
  return [...new Set(methods)].sort();
}
