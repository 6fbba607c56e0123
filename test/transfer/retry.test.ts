import { describe, expect, it } from "vitest";
import { InputError, InterruptedError, LocalIoError, NetworkError, RemoteVerificationError, UsageError, describeIoError, retryClassOf } from "../../src/errors.js";
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

  it("every error carries its retry class (retry / no-retry / fatal, as rclone's)", () => {
    // Low-level errors: transient ones may be retried, anything else is this item's failure.
    expect(retryClassOf(Object.assign(new Error("x"), { code: "ECONNRESET" }))).toBe("retry");
    expect(retryClassOf(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }))).toBe("retry");
    expect(retryClassOf(Object.assign(new Error("x"), { code: "ENOENT" }))).toBe("no-retry");
    expect(retryClassOf("a string")).toBe("no-retry");
    expect(retryClassOf(undefined)).toBe("no-retry");
    // A refused login or host key stops the run: no other package would get past it.
    expect(retryClassOf(new NetworkError("AUTH_FAILED", "no", { retryable: false }))).toBe("fatal");
    expect(retryClassOf(new NetworkError("HOST_KEY_MISMATCH", "no"))).toBe("fatal");
    expect(retryClassOf(new NetworkError("FORWARD_AUTH_FAILED", "no"))).toBe("fatal");
    expect(retryClassOf(new NetworkError("NETWORK_FAILED", "no"))).toBe("no-retry");
    expect(new NetworkError("NETWORK_TRANSIENT", "reset", { retryable: true })).toMatchObject({ retryClass: "retry", retryable: true });
    expect(retryClassOf(new UsageError("BAD_OPTION", "no"))).toBe("fatal");
    expect(retryClassOf(new InputError("REJECTED", "no"))).toBe("no-retry");
    expect(retryClassOf(new RemoteVerificationError("FORWARD_NOT_CONFIRMED", "no", { retryClass: "retry" }))).toBe("retry");
    // Interrupted is fatal whatever the site says.
    expect(new InterruptedError("stop", { retryable: true })).toMatchObject({ retryClass: "fatal", retryable: false });
    expect(retryClassOf(describeIoError(Object.assign(new Error("full"), { code: "ENOSPC" }), "x"))).toBe("fatal");
    expect(retryClassOf(new LocalIoError("IO_ERROR", "no"))).toBe("no-retry");
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
