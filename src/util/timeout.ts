export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/**
 * Settles with `work`, or rejects with a TimeoutError after `ms`. The work itself
 * is not cancelled: callers use this where waiting longer is worse than giving up
 * (a hung Redis, a readiness probe, an attempt that must end inside its lease).
 */
export function withTimeout<T>(work: Promise<T>, ms: number, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
