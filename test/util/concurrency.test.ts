// forEachConcurrent (src/util/concurrency.ts), the one bounded-concurrency loop: order of starts, the limit, and
// what happens at the first failure or abort (no new items; the calls in flight settle before it rejects).
import { describe, expect, it } from "vitest";
import { InterruptedError, throwIfAborted } from "../../src/errors.js";
import { forEachConcurrent } from "../../src/util/concurrency.js";

/** A promise settled from outside. */
function deferred() {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

describe("forEachConcurrent", () => {
  it("starts items in order, never more than the limit at once, and reports each one done", async () => {
    const started: number[] = [];
    let inFlight = 0;
    let most = 0;
    const done: number[] = [];
    await forEachConcurrent([0, 1, 2, 3, 4, 5, 6], 3, async (i) => {
      started.push(i);
      most = Math.max(most, ++inFlight);
      for (let k = 0; k < (i % 3) + 1; k++) await tick();
      inFlight--;
    }, { onDone: (n) => done.push(n) });
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(most).toBe(3);
    expect(done).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it("the first failure stops new items, and it rejects only once the calls in flight have settled", async () => {
    const gates = Array.from({ length: 6 }, deferred);
    const started: number[] = [];
    const settled: number[] = [];
    let rejected = false;
    const run = forEachConcurrent([0, 1, 2, 3, 4, 5], 3, async (i) => {
      started.push(i);
      try {
        await gates[i]!.promise;
      } finally {
        settled.push(i);
      }
    }).catch((e: unknown) => {
      rejected = true;
      throw e;
    });
    await tick();
    expect(started).toEqual([0, 1, 2]);
    gates[1]!.reject(new Error("entry 1 failed"));
    gates[0]!.reject(new Error("entry 0 failed later"));
    await tick();
    expect(started).toEqual([0, 1, 2]); // nothing new after the failure
    expect(rejected).toBe(false); // item 2 is still running
    gates[2]!.resolve();
    await expect(run).rejects.toThrow("entry 1 failed"); // the first error, not the later one
    expect(settled.sort()).toEqual([0, 1, 2]);
  });

  it("an abort stops before the next item with InterruptedError, after the ones in flight", async () => {
    const ac = new AbortController();
    const started: number[] = [];
    const run = forEachConcurrent([0, 1, 2, 3], 2, async (i) => {
      started.push(i);
      if (i === 1) ac.abort();
      await tick();
    }, { signal: ac.signal, checkAbort: throwIfAborted });
    await expect(run).rejects.toBeInstanceOf(InterruptedError);
    expect(started).toEqual([0, 1]);
  });

  it("no items: resolves without calling anything", async () => {
    let calls = 0;
    await forEachConcurrent([], 4, async () => void calls++);
    expect(calls).toBe(0);
  });
});
