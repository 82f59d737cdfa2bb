import { describe, expect, it } from 'vitest';
import { AdmissionGate, AdmissionRefusedError } from '../../src/phone/admission.js';

/** A job the test finishes by hand, recording when it started. */
function job(log: string[], name: string) {
  let finish!: () => void;
  let fail!: (e: Error) => void;
  const done = new Promise<string>((resolve, reject) => {
    finish = () => resolve(name);
    fail = reject;
  });
  return { work: () => (log.push(name), done), finish: () => finish(), fail: (e: Error) => fail(e) };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('AdmissionGate', () => {
  it('runs at most maxInFlight at once and admits waiters first come, first served', async () => {
    const gate = new AdmissionGate({ maxInFlight: 2, maxQueued: 10, maxWaitMs: 10_000 });
    const started: string[] = [];
    const jobs = ['a', 'b', 'c', 'd', 'e'].map((n) => job(started, n));
    const results = jobs.map((j) => gate.run(j.work));
    await tick();
    expect(started).toEqual(['a', 'b']);
    expect([gate.inFlight, gate.waiting]).toEqual([2, 3]);

    jobs[1]!.finish();
    await tick();
    expect(started).toEqual(['a', 'b', 'c']);
    // A newcomer while others wait goes to the back of the queue, even though a slot frees up next.
    const late = job(started, 'late');
    const lateResult = gate.run(late.work);
    jobs[0]!.finish();
    await tick();
    expect(started).toEqual(['a', 'b', 'c', 'd']);
    for (const j of jobs.slice(2)) j.finish();
    await tick();
    await tick();
    expect(started).toEqual(['a', 'b', 'c', 'd', 'e', 'late']);
    late.finish();
    expect(await Promise.all([...results, lateResult])).toEqual(['a', 'b', 'c', 'd', 'e', 'late']);
    expect([gate.inFlight, gate.waiting]).toEqual([0, 0]);
  });

  it('refuses at once when the queue is full, without running the work', async () => {
    const gate = new AdmissionGate({ maxInFlight: 1, maxQueued: 1, maxWaitMs: 10_000 });
    const started: string[] = [];
    const a = job(started, 'a');
    const b = job(started, 'b');
    const pa = gate.run(a.work);
    const pb = gate.run(b.work);
    let ran = false;
    await expect(gate.run(async () => (ran = true))).rejects.toMatchObject({ name: 'AdmissionRefusedError', reason: 'queue_full' });
    expect(ran).toBe(false);
    a.finish();
    await tick();
    b.finish();
    expect(await Promise.all([pa, pb])).toEqual(['a', 'b']);
  });

  it('gives up on a waiter after maxWaitMs, and the queue moves on without it', async () => {
    const gate = new AdmissionGate({ maxInFlight: 1, maxQueued: 5, maxWaitMs: 30 });
    const started: string[] = [];
    const a = job(started, 'a');
    const pa = gate.run(a.work);
    const refused = gate.run(async () => 'never').catch((e: unknown) => e);
    const e = await refused;
    expect(e).toBeInstanceOf(AdmissionRefusedError);
    expect((e as AdmissionRefusedError).reason).toBe('wait_timeout');
    expect(gate.waiting).toBe(0);
    const c = job(started, 'c');
    const pc = gate.run(c.work);
    a.finish();
    await tick();
    expect(started).toEqual(['a', 'c']);
    c.finish();
    expect(await Promise.all([pa, pc])).toEqual(['a', 'c']);
  });

  it('frees the slot when the work fails, and passes its error through', async () => {
    const gate = new AdmissionGate({ maxInFlight: 1, maxQueued: 0, maxWaitMs: 10 });
    await expect(gate.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(gate.inFlight).toBe(0);
    expect(await gate.run(async () => 'next')).toBe('next');
  });

  it('work that releases its slot early lets the next waiter in at once, and the slot is given back once only', async () => {
    const gate = new AdmissionGate({ maxInFlight: 1, maxQueued: 5, maxWaitMs: 10_000 });
    const started: string[] = [];
    let release!: () => void;
    let finishWaiter!: () => void;
    // The first job only waits (as a duplicate of another attempt does) once it gives its slot back.
    const waiter = gate.run(async (r) => {
      started.push('waiter');
      release = r;
      await new Promise<void>((resolve) => (finishWaiter = resolve));
      return 'waiter';
    });
    const [b, c] = [job(started, 'b'), job(started, 'c')];
    const pb = gate.run(b.work);
    const pc = gate.run(c.work);
    await tick();
    expect(started).toEqual(['waiter']);
    release();
    release(); // a second call must not free a slot that is not its own
    await tick();
    expect(started).toEqual(['waiter', 'b']);
    expect([gate.inFlight, gate.waiting]).toEqual([1, 1]);
    // The waiter ending gives nothing back either: its slot is already b's.
    finishWaiter();
    expect(await waiter).toBe('waiter');
    await tick();
    expect(started).toEqual(['waiter', 'b']);
    b.finish();
    await tick();
    expect(started).toEqual(['waiter', 'b', 'c']);
    c.finish();
    expect(await Promise.all([pb, pc])).toEqual(['b', 'c']);
    expect([gate.inFlight, gate.waiting]).toEqual([0, 0]);
  });
});
