// mapLimit: the bounded pool every Vault read and mount lookup goes through. Driven by promises the
// test settles itself, so the order of events is the test's and no timer is involved.
import { describe, expect, it } from 'vitest';
import { mapLimit } from '../../../src/core/pool.ts';

interface Gate<R> {
  readonly item: number;
  resolve(value: R): void;
  reject(error: unknown): void;
}

/** A pool run whose items each wait until the test settles them; records what is in flight. */
function gated<R>(count: number, limit: number) {
  const waiting: Array<Gate<R>> = [];
  const started: number[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const run = mapLimit(
    Array.from({ length: count }, (_, i) => i),
    limit,
    (item, index) => {
      expect(index).toBe(item);
      started.push(item);
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      return new Promise<R>((resolve, reject) => {
        const done =
          <A extends unknown[]>(settle: (...args: A) => void) =>
          (...args: A): void => {
            inFlight -= 1;
            settle(...args);
          };
        waiting.push({ item, resolve: done(resolve), reject: done(reject) });
      });
    },
  );
  // Settles the waiting item `item` (whatever its place in the queue) and lets the pool move on.
  const settle = async (item: number, how: (gate: Gate<R>) => void): Promise<void> => {
    const at = waiting.findIndex((gate) => gate.item === item);
    if (at < 0) throw new Error(`item ${item} is not waiting`);
    const [gate] = waiting.splice(at, 1);
    how(gate as Gate<R>);
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return { run, started, waiting, settle, inFlight: () => inFlight, maxInFlight: () => maxInFlight };
}

describe('mapLimit', () => {
  it('never has more than `limit` in flight, and starts the next item as soon as one settles', async () => {
    const pool = gated<string>(10, 3);
    await Promise.resolve();
    expect(pool.started).toEqual([0, 1, 2]);
    // Settled out of order: the freed slot goes to the next item in input order.
    for (const item of [1, 0, 4, 2, 3, 6, 5, 9, 8, 7]) {
      await pool.settle(item, (gate) => gate.resolve(`r${item}`));
      expect(pool.inFlight()).toBeLessThanOrEqual(3);
    }
    expect(pool.maxInFlight()).toBe(3);
    expect(pool.started).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Results keep the input order, not the order the items finished in.
    await expect(pool.run).resolves.toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7', 'r8', 'r9']);
  });

  it('on a failure starts nothing new, and waits for what is in flight before rejecting', async () => {
    const pool = gated<number>(6, 3);
    let outcome: string | undefined;
    pool.run.then(
      () => (outcome = 'resolved'),
      (error: unknown) => (outcome = `rejected: ${(error as Error).message}`),
    );
    await Promise.resolve();
    await pool.settle(1, (gate) => gate.reject(new Error('404 at item 1')));
    // Items 0 and 2 are still in flight (a read already sent may be issuing a lease): no answer yet.
    expect(outcome).toBeUndefined();
    expect(pool.started).toEqual([0, 1, 2]);
    await pool.settle(0, (gate) => gate.resolve(0));
    expect(outcome).toBeUndefined();
    // A second failure while waiting does not replace the first.
    await pool.settle(2, (gate) => gate.reject(new Error('503 at item 2')));
    expect(outcome).toBe('rejected: 404 at item 1');
    expect(pool.started).toEqual([0, 1, 2]);
    expect(pool.waiting).toEqual([]);
  });

  it('throws what was thrown, Error or not', async () => {
    const thrown = { code: 'not an Error' };
    await expect(
      mapLimit([1], 1, async () => {
        throw thrown; // eslint-disable-line @typescript-eslint/only-throw-error
      }),
    ).rejects.toBe(thrown);
  });

  it('handles fewer items than the limit, and none', async () => {
    await expect(mapLimit(['a', 'b'], 16, async (item, index) => `${item}${index}`)).resolves.toEqual(['a0', 'b1']);
    let called = false;
    await expect(
      mapLimit([], 4, async () => {
        called = true;
      }),
    ).resolves.toEqual([]);
    expect(called).toBe(false);
  });

  it('refuses a limit below 1 instead of returning results that were never computed', async () => {
    for (const limit of [0, -1, Number.NaN]) {
      await expect(mapLimit([1, 2], limit, async (n) => n)).rejects.toThrow(RangeError);
    }
  });
});
