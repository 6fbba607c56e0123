import { InterruptedError, NetworkError, retryClassOf, ScanbridgeError } from "../errors.js";
import { msg, type LocalText } from "../i18n/index.js";

/** How often and how patiently a transfer is retried. */
export interface RetryPolicy {
  /** Retries after the first attempt (0: try once). */
  retries: number;
  /** First delay; doubles each retry. */
  baseDelayMs: number;
  /** Upper bound of one delay. */
  maxDelayMs: number;
}

/** The default policy: 5 retries, 1 s doubling up to 30 s, full jitter. */
export const defaultRetryPolicy: RetryPolicy = { retries: 5, baseDelayMs: 1000, maxDelayMs: 30_000 };

/** Delay before retry number `retry` (1-based): exponential backoff with "full jitter" (uniform in [cap/2, cap]). */
export function backoffDelay(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1));
  // Half fixed, half random: never hammer a busy server, never synchronise many clients.
  return Math.round(cap / 2 + (random() * cap) / 2);
}

/** Whether an error may go away if we try again (resets, timeouts, a busy server); never auth or host-key failures. */
export function isRetryable(err: unknown): boolean {
  return retryClassOf(err) === "retry";
}

/** Options for withRetries. */
export interface RetryOptions {
  policy: RetryPolicy;
  signal?: AbortSignal;
  /** Called before waiting for a retry (to emit a warning). */
  onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void;
  /** Injected for tests. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
}

/** Sleep that ends early with InterruptedError when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new InterruptedError());
    const onAbort = () => {
      clearTimeout(t);
      reject(new InterruptedError());
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Run `fn(attempt)` (1-based), retrying transient failures with backoff; returns its result and the attempt count. */
export async function withRetries<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<{ value: T; attempts: number }> {
  const wait = opts.sleep ?? sleep;
  for (let attempt = 1; ; attempt++) {
    if (opts.signal?.aborted) throw new InterruptedError();
    try {
      return { value: await fn(attempt), attempts: attempt };
    } catch (err) {
      if (opts.signal?.aborted) throw new InterruptedError();
      if (!isRetryable(err) || attempt > opts.policy.retries) {
        if (err instanceof ScanbridgeError) {
          err.details.attempts = attempt;
        }
        throw err;
      }
      const delayMs = backoffDelay(attempt, opts.policy, opts.random);
      opts.onRetry?.({ attempt, delayMs, error: err });
      await wait(delayMs, opts.signal);
    }
  }
}

/** Turn a low-level socket/ssh error into a NetworkError saying whether a retry may help. Messages carry no paths. */
export function toNetworkError(err: unknown, what: LocalText | string): ScanbridgeError {
  if (err instanceof ScanbridgeError) return err;
  const e = err as { code?: unknown; message?: string; level?: string };
  const retryable = isRetryable(err);
  const code = typeof e?.code === "string" ? e.code : e?.level === "client-timeout" ? "ETIMEDOUT" : undefined;
  const reason: LocalText | string = code === "ECONNREFUSED"
    ? msg("net.refused")
    : code === "ETIMEDOUT" || /timed out|timeout/i.test(String(e?.message))
      ? msg("net.timedOut")
      : code === "ECONNRESET" || /reset|lost|closed/i.test(String(e?.message))
        ? msg("net.lost")
        : code === "ENOTFOUND" || code === "EAI_AGAIN"
          ? msg("net.hostNotFound")
          : String(e?.message ?? err);
  return new NetworkError(retryable ? "NETWORK_TRANSIENT" : "NETWORK_FAILED", msg("net.failed", { what, reason }), {
    retryable,
    cause: err,
    hint: msg(retryable ? "net.failed.hintRetry" : "net.failed.hint"),
    details: code ? { errno: code } : {},
  });
}
