/**
 * Admission control for exchanges, per process. An exchange admitted past this gate will claim
 * its code and may spend it at WeChat; under a burst larger than the process can serve, the
 * event loop falls behind, WeChat's answers are read after the call's deadline and codes end as
 * OUTCOME_UNKNOWN although WeChat answered. So at most `maxInFlight` exchanges run at once, up to
 * `maxQueued` more wait (first come, first served) for at most `maxWaitMs`, and the rest are
 * refused at once, before anything touches the code: the client may retry it.
 *
 * A slot is for work that may reach WeChat. Work that turns out to be waiting for another
 * attempt at the same code (a duplicate request, or another instance's claim) gives its slot
 * back early: a retry storm after an instance died would otherwise fill every slot with
 * requests that only wait, and refuse the exchanges that could run.
 */
export interface AdmissionOptions {
  maxInFlight: number;
  maxQueued: number;
  maxWaitMs: number;
}

export type AdmissionRefusal = 'queue_full' | 'wait_timeout';

export class AdmissionRefusedError extends Error {
  override name = 'AdmissionRefusedError';
  constructor(readonly reason: AdmissionRefusal) {
    super(reason === 'queue_full' ? 'the gateway is at capacity' : 'the gateway stayed at capacity for too long');
  }
}

interface Waiter {
  admit: () => void;
  timer: NodeJS.Timeout;
}

export class AdmissionGate {
  private running = 0;
  // Bounded by maxQueued (hundreds), so removing from the middle on a timeout is cheap enough.
  private readonly waiters: Waiter[] = [];

  constructor(private readonly opts: AdmissionOptions) {}

  get inFlight(): number {
    return this.running;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** Runs `work` in a slot; `release` gives the slot back before the work ends (once; later calls do nothing). */
  async run<T>(work: (release: () => void) => Promise<T>): Promise<T> {
    await this.enter();
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      this.leave();
    };
    try {
      return await work(release);
    } finally {
      release();
    }
  }

  private enter(): Promise<void> | void {
    if (this.running < this.opts.maxInFlight) {
      this.running += 1;
      return;
    }
    if (this.waiters.length >= this.opts.maxQueued) throw new AdmissionRefusedError('queue_full');
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        admit: resolve,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(new AdmissionRefusedError('wait_timeout'));
        }, this.opts.maxWaitMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Hands the slot straight to the next waiter (so no newcomer can jump the queue), else frees it. */
  private leave(): void {
    const next = this.waiters.shift();
    if (!next) {
      this.running -= 1;
      return;
    }
    clearTimeout(next.timer);
    next.admit();
  }
}
