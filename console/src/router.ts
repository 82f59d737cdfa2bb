import { useEffect, useState } from 'preact/hooks';

/**
 * Routes live in the address's fragment (`#/apps/wx…`), so the gateway serves one page for the
 * console and a reload lands where the operator was. Only appids and periods go there: never an
 * openid, a hash of one, or a token.
 */
export type Route =
  | { name: 'overview' }
  | { name: 'app'; appid: string }
  | { name: 'reconciliation'; appid: string | null }
  | { name: 'exchanges' }
  | { name: 'audit' }
  | { name: 'unknown' };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#\/?/, '').split('?')[0] ?? '';
  const [head, arg] = path.split('/');
  switch (head) {
    case '':
    case 'overview':
      return { name: 'overview' };
    case 'apps':
      return arg ? { name: 'app', appid: decodeURIComponent(arg) } : { name: 'overview' };
    case 'reconciliation':
      return { name: 'reconciliation', appid: arg ? decodeURIComponent(arg) : null };
    case 'exchanges':
      return { name: 'exchanges' };
    case 'audit':
      return { name: 'audit' };
    default:
      return { name: 'unknown' };
  }
}

export function hrefOf(route: Route): string {
  switch (route.name) {
    case 'app':
      return `#/apps/${encodeURIComponent(route.appid)}`;
    case 'reconciliation':
      return route.appid ? `#/reconciliation/${encodeURIComponent(route.appid)}` : '#/reconciliation';
    case 'unknown':
      return '#/';
    default:
      return `#/${route.name}`;
  }
}

export function navigate(route: Route): void {
  location.hash = hrefOf(route);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
