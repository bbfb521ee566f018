/** The dashboard's routes, read from the address; links change it without a reload. */
import { useEffect, useState } from 'preact/hooks';

export const BASE = '/ui';

export type Route =
  { page: 'jobs'; search: string } | { page: 'job'; id: string } | { page: 'group'; id: string } | { page: 'health' } | { page: 'missing'; path: string };

export function routeOf(pathname: string, search: string): Route {
  const rest = pathname.startsWith(BASE) ? pathname.slice(BASE.length) : pathname;
  if (rest === '' || rest === '/') return { page: 'jobs', search };
  const job = /^\/jobs\/([^/]+)\/?$/.exec(rest);
  if (job) return { page: 'job', id: decodeURIComponent(job[1]!) };
  const group = /^\/groups\/([^/]+)\/?$/.exec(rest);
  if (group) return { page: 'group', id: decodeURIComponent(group[1]!) };
  if (rest === '/health' || rest === '/health/') return { page: 'health' };
  return { page: 'missing', path: pathname };
}

const listeners = new Set<() => void>();

export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  if (opts.replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  for (const l of listeners) l();
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => routeOf(location.pathname, location.search));
  useEffect(() => {
    const update = () => setRoute(routeOf(location.pathname, location.search));
    listeners.add(update);
    addEventListener('popstate', update);
    return () => {
      listeners.delete(update);
      removeEventListener('popstate', update);
    };
  }, []);
  return route;
}

/** A click on a link of the dashboard: handled here unless the person asked for a new tab or window. */
export function onLinkClick(e: MouseEvent): void {
  const a = (e.currentTarget as HTMLAnchorElement | null) ?? null;
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(a.getAttribute('href') ?? BASE);
  scrollTo(0, 0);
}
