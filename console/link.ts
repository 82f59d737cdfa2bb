/** The scopes an operator's console token may carry (see the README's GraphQL API section). */
export const CONSOLE_SCOPES = ['quota:read', 'billing:admin', 'audit:read', 'audit:admin'] as const;

/**
 * A link that signs the console in: the token rides in the fragment (after `#`), which browsers
 * never send to a server, so it reaches no access log, proxy or Referer header; the console
 * takes it out of the address as soon as it has read it.
 */
export function consoleLink(baseUrl: string, token: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/console/#token=${token}`;
}
