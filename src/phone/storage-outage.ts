import { isStorageUnavailable } from '../store/unavailable.js';
import { ExchangeFailure, ServiceUnavailableError } from './errors.js';

/** What a storage outage means for the code, by how far the request had got. */
export const STORAGE_UNAVAILABLE_MESSAGES = {
  notSent: "the gateway's storage is unavailable right now; nothing was sent to WeChat and the code was not used: retry in a moment",
  spent:
    "WeChat answered, but the gateway's storage is unavailable so the exchange could not be recorded: the number is withheld and the code is spent; ask the user to tap again",
  replayKept: "the gateway's storage is unavailable right now; the stored answer for this code is kept: retry in a moment",
} as const;

/**
 * A request's failure as the client is told it: a storage error that reaches the exchange's end
 * came before anything was sent (those after WeChat's answer were turned into their own outcome
 * by the settlement).
 */
export function beforeSending(e: unknown): unknown {
  return !(e instanceof ExchangeFailure) && isStorageUnavailable(e) ? new ServiceUnavailableError(STORAGE_UNAVAILABLE_MESSAGES.notSent) : e;
}

/** A settlement that failed after WeChat answered: with storage down, the code is spent and the number withheld. */
export function afterAnswer(e: unknown): unknown {
  return isStorageUnavailable(e) ? new ServiceUnavailableError(STORAGE_UNAVAILABLE_MESSAGES.spent, false) : e;
}

/** After the answer was stored (a replay whose record could not be written): the stored answer is kept for a retry. */
export function replayKept(e: unknown): unknown {
  return isStorageUnavailable(e) ? new ServiceUnavailableError(STORAGE_UNAVAILABLE_MESSAGES.replayKept) : e;
}

/**
 * For writes whose failure must not replace an answer already decided: a storage outage is
 * passed over (false: nothing was written), anything else is thrown on.
 */
export function ignoreStorageOutage(e: unknown): false {
  if (!isStorageUnavailable(e)) throw e;
  return false;
}
