import { describe, expect, it } from "vitest";
import { InterruptedError, NetworkError } from "../../src/errors.js";
import { backoffDelay, isRetryable, withRetries } from "../../src/transfer/retry.js";

const policy = { retries: 3, baseDelayMs: 100, maxDelayMs: 1000 };

describe("retry", () => {
  it("backs off exponentially with jitter between half and the full cap", () => {
    expect(backoffDelay(1, policy, () => 0)).toBe(50);
    expect(backoffDelay(1, policy, () => 1)).toBe(100);
    expect(backoffDelay(3, policy, () => 1)).toBe(400);
    expect(backoffDelay(10, policy, () => 1)).toBe(1000);
    expect(backoffDelay(10, policy, () => 0)).toBe(500);
  });

  it("classifies transient and fatal errors", () => {
    expect(isRetryable(Object.assign(new Error("x"), { code: "ECONNRESET" }))).toBe(true);
    expect(isRetryable(Object.assign(new Error("x"), { code: "ETIMEDOUT" }))).toBe(true);
    expect(isRetryable(new NetworkError("AUTH_FAILED", "no", { retryable: false }))).toBe(false);
    expect(isRetryable(new NetworkError("HOST_KEY_MISMATCH", "no"))).toBe(false);
    expect(isRetryable(new InterruptedError())).toBe(false);
  });

  it("retries transient failures up to the limit, and never fatal ones", async () => {
    const waits: number[] = [];
    const sleep = async (ms: number) => void waits.push(ms);
    let calls = 0;
    const r = await withRetries(async () => {
      if (++calls < 3) throw Object.assign(new Error("reset"), { code: "ECONNRESET" });
      return "ok";
    }, { policy, sleep, random: () => 1 });
    expect(r).toEqual({ value: "ok", attempts: 3 });
    expect(waits).toEqual([100, 200]);

    calls = 0;
    await expect(withRetries(async () => {
      calls++;
      throw Object.assign(new Error("reset"), { code: "ECONNRESET" });
    }, { policy, sleep })).rejects.toThrow("reset");
    expect(calls).toBe(4);

    calls = 0;
    await expect(withRetries(async () => {
      calls++;
      throw new NetworkError("AUTH_FAILED", "refused", { retryable: false });
    }, { policy, sleep })).rejects.toThrow("refused");
    expect(calls).toBe(1);
  });

  it("stops waiting when interrupted", async () => {
    const ac = new AbortController();
    const p = withRetries(async () => {
      throw Object.assign(new Error("reset"), { code: "ECONNRESET" });
    }, { policy: { retries: 5, baseDelayMs: 10_000, maxDelayMs: 10_000 }, signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expect(p).rejects.toBeInstanceOf(InterruptedError);
  });
});
