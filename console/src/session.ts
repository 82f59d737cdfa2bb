/**
 * The operator's token: in memory while the page lives, and in sessionStorage (this tab only,
 * gone when it closes) so a reload does not sign out. Nothing else the console handles is ever
 * written to browser storage.
 */
const KEY = 'wxphone.console.token';

/**
 * A link from `wxphone console-link` carries the token in the fragment (`#token=…`), which no
 * server or proxy ever sees. It is taken out of the address at once, so it stays in no history
 * entry, bookmark or screenshot of the address bar.
 */
export function takeTokenFromAddress(): string | null {
  const m = /^#token=([A-Za-z0-9._~-]+)/.exec(location.hash);
  if (!m) return null;
  history.replaceState(null, '', `${location.pathname}${location.search}#/`);
  return m[1]!;
}

export function storedToken(): string | null {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function keepToken(token: string): void {
  try {
    sessionStorage.setItem(KEY, token);
  } catch {
    // Storage refused (a private mode): the token then lives as long as the page.
  }
}

export function forgetToken(): void {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // nothing kept
  }
}

/** The scopes the console's pages and actions need (see the README's GraphQL API section). */
export type Scope = 'quota:read' | 'billing:admin' | 'audit:read' | 'audit:admin';
export const OPERATOR_SCOPES: readonly Scope[] = ['quota:read', 'billing:admin', 'audit:read', 'audit:admin'];

export interface OperatorSession {
  token: string;
  subject: string;
  scopes: ReadonlySet<string>;
  expiresAt: number;
}

export function can(session: OperatorSession, scope: Scope): boolean {
  return session.scopes.has(scope);
}
