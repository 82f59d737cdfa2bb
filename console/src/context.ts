import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { OperatorSession } from './session';

export interface ConsoleContext {
  session: OperatorSession;
  signOut: () => void;
  /** The gateway no longer accepts the token (expired, or its key rotated): back to signing in, saying why. */
  expire: () => void;
}

export const Console = createContext<ConsoleContext | null>(null);

export function useConsole(): ConsoleContext {
  const c = useContext(Console);
  if (!c) throw new Error('useConsole outside the signed-in console');
  return c;
}
