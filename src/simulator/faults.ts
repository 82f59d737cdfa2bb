/**
 * Injected failures for WeChat paths: the next N calls to a path fail in a
 * chosen way. Rules for one path queue up, so "two 502s, then one slow answer"
 * is two POSTs.
 */

export interface FaultSpec {
  /** Answer HTTP 200 with this errcode. */
  errcode?: number | undefined;
  /** Answer this HTTP status with an HTML body (not JSON). */
  httpStatus?: number | undefined;
  /** Wait this long first; alone, the call is served normally but late. */
  delayMs?: number | undefined;
  /** Destroy the socket instead of answering. */
  reset?: boolean | undefined;
}

export type Fault = Readonly<FaultSpec>;

interface QueuedFault {
  fault: Fault;
  remaining: number;
}

export const MAX_FAULT_DELAY_MS = 120_000;

export class FaultTable {
  private readonly byPath = new Map<string, QueuedFault[]>();

  /** Queues a fault for the next `times` calls; `times` 0 clears the path's queue. */
  add(path: string, fault: Fault, times: number): number {
    if (times === 0) {
      this.byPath.delete(path);
      return 0;
    }
    const queue = this.byPath.get(path) ?? [];
    queue.push({ fault: { ...fault }, remaining: times });
    this.byPath.set(path, queue);
    return this.pending(path);
  }

  /** The fault the current call to `path` must suffer, if any (and counts it as spent). */
  take(path: string): Fault | undefined {
    const queue = this.byPath.get(path);
    const head = queue?.[0];
    if (!queue || !head) return undefined;
    if (--head.remaining <= 0) queue.shift();
    if (queue.length === 0) this.byPath.delete(path);
    return head.fault;
  }

  pending(path: string): number {
    return (this.byPath.get(path) ?? []).reduce((n, q) => n + q.remaining, 0);
  }

  clear(): void {
    this.byPath.clear();
  }
}
