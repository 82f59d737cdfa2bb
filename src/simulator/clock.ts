/**
 * The simulator's time: real time plus an offset that only grows, so tests can
 * jump over a 2-hour token lifetime in one call while durations measured by
 * the client (timeouts, delays) stay real.
 */
export class SimClock {
  private offsetMs: number;

  constructor(startTime?: number) {
    this.offsetMs = startTime === undefined ? 0 : Math.trunc(startTime) - Date.now();
  }

  /** Simulated epoch time in ms. */
  now(): number {
    return Date.now() + this.offsetMs;
  }

  /** Moves time forward (never back: clients keep expiry instants) and returns the new now. */
  advance(seconds: number): number {
    if (!Number.isFinite(seconds) || seconds < 0) {
      throw new RangeError(`advance needs a finite number of seconds >= 0, got ${seconds}`);
    }
    this.offsetMs += Math.round(seconds * 1000);
    return this.now();
  }
}
