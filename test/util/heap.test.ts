// youngCollector (src/util/heap.ts): dead buffers are freed every so many bytes instead of piling up until V8's own
// trigger for buffer memory (tens of MB), which is what kept deflate's dropped output in the process.
import { describe, expect, it } from "vitest";
import { youngCollector } from "../../src/util/heap.js";

const arrayBuffersMB = () => process.memoryUsage().arrayBuffers / 1048576;

/** Allocate and drop `mb` MiB in 64 KiB buffers (as zlib hands out deflated chunks); the most buffer memory seen. */
function churn(mb: number, dropped: (n: number) => void): number {
  let peak = 0;
  for (let i = 0; i < mb * 16; i++) {
    const b = Buffer.allocUnsafe(65536);
    b[0] = i;
    dropped(b.length);
    if (i % 16 === 0) peak = Math.max(peak, arrayBuffersMB());
  }
  return peak;
}

describe("youngCollector", () => {
  it("keeps dropped buffers to about its step: 128 MiB churned, never more than 12 MiB of buffers alive", () => {
    const before = arrayBuffersMB();
    const peak = churn(128, youngCollector(4 * 1024 * 1024));
    expect(peak - before).toBeLessThan(12);
  });
});
