import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { InterruptedError, NotifyError, UsageError } from "../errors.js";
import { msg, type LocalText } from "../i18n/index.js";
import { VERSION } from "../version.js";

/** Where and how to POST a webhook. The URL may carry a token (chat tools): it is never stored or printed whole. */
export interface WebhookTarget {
  url: string;
  /** HMAC-SHA256 key; without it requests go unsigned. */
  secret?: string;
  /** PEM of a private CA to trust for https://. */
  ca?: string;
}

/** Retry policy for 5xx replies and network errors (4xx replies are never retried). */
export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
}

/** Options for one webhook delivery. */
export interface WebhookSendOptions {
  /** Stable across retries and re-runs so the receiver can drop duplicates (X-Scanbridge-Delivery). */
  deliveryId: string;
  event: string;
  retry?: RetryPolicy;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Clock, for the timestamp header. */
  now?: () => Date;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** A webhook that could not be delivered: the last status (if any), attempts made, and whether a later retry may help. */
export class WebhookDeliveryError extends NotifyError {
  constructor(
    message: string | LocalText,
    retryable: boolean,
    readonly attempts: number,
    readonly status?: number,
  ) {
    super("WEBHOOK_DELIVERY_FAILED", message, { retryable });
  }
}

/** Signature header name. Value: "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + raw body). */
export const SIGNATURE_HEADER = "X-Scanbridge-Signature";
/** Timestamp header name: Unix seconds, covered by the signature so a captured request cannot be replayed later. */
export const TIMESTAMP_HEADER = "X-Scanbridge-Timestamp";
/** Delivery ID header name: the same on every retry. */
export const DELIVERY_HEADER = "X-Scanbridge-Delivery";

/** Compute the signature header value for a body sent at a timestamp. */
export function signWebhook(secret: string, timestamp: string, body: string | Buffer): string {
  return "sha256=" + createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest("hex");
}

/** Check a received webhook (for receivers and tests): signature in constant time, timestamp within tolerance. */
export function verifyWebhookSignature(
  secret: string,
  headers: { timestamp: string | undefined; signature: string | undefined },
  body: string | Buffer,
  opts: { toleranceSeconds?: number; now?: Date } = {},
): boolean {
  if (!headers.timestamp || !headers.signature || !/^\d+$/.test(headers.timestamp)) return false;
  const tolerance = opts.toleranceSeconds ?? 300;
  const now = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  if (Math.abs(now - Number(headers.timestamp)) > tolerance) return false;
  const expected = Buffer.from(signWebhook(secret, headers.timestamp, body));
  const got = Buffer.from(headers.signature);
  return expected.length === got.length && timingSafeEqual(expected, got);
}

const LOOPBACK = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);

/** Validate a webhook URL: https://, or http:// to this machine, or any http:// with `insecure`. */
export function validateWebhookUrl(raw: string, insecure: boolean, source = "webhook"): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new UsageError("BAD_OPTION", msg("option.invalid", { key: "webhook", source, why: msg("webhook.notUrl") }), { hint: msg("webhook.url.hint") });
  }
  if (u.protocol === "https:") return u;
  if (u.protocol === "http:") {
    if (LOOPBACK.has(u.hostname) || insecure) return u;
    throw new UsageError("WEBHOOK_INSECURE", msg("webhook.insecure", { host: u.host, source }), {
      hint: msg("webhook.insecure.hint"),
    });
  }
  throw new UsageError("BAD_OPTION", msg("option.invalid", { key: "webhook", source, why: msg("webhook.scheme", { scheme: `${u.protocol}//` }) }));
}

/** A webhook URL safe to print and store: scheme, host and the first path segment; no user, token path or query. */
export function describeWebhook(raw: string): string {
  try {
    const u = new URL(raw);
    const first = u.pathname.split("/").filter(Boolean)[0];
    const more = u.pathname.split("/").filter(Boolean).length > 1 || u.search ? "/…" : "";
    return `${u.protocol}//${u.host}${first ? `/${first}` : ""}${more}`;
  } catch {
    return "(invalid URL)";
  }
}

/** Stable key of a webhook URL (hash), to match outbox entries with configured webhooks without storing the URL. */
export function webhookKeyOf(raw: string): string {
  return createHash("sha256").update(raw).digest("hex").slice(0, 16);
}

/** Sleep that an abort signal interrupts. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new InterruptedError());
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new InterruptedError());
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

interface Attempt {
  status?: number;
  error?: string;
}

function postOnce(target: WebhookTarget, body: Buffer, headers: Record<string, string>, timeoutMs: number, signal?: AbortSignal): Promise<Attempt> {
  return new Promise((resolve) => {
    const u = new URL(target.url);
    const req = (u.protocol === "https:" ? httpsRequest : httpRequest)(
      u,
      {
        method: "POST",
        headers: { ...headers, "Content-Length": String(body.length) },
        timeout: timeoutMs,
        signal,
        ...(u.protocol === "https:" ? { ca: target.ca, minVersion: "TLSv1.2" as const, rejectUnauthorized: true } : {}),
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode }));
        res.on("error", (e) => resolve({ status: res.statusCode, error: e.message }));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no reply within ${timeoutMs} ms`)));
    req.on("error", (e) => resolve({ error: e.message }));
    req.end(body);
  });
}

/** POST a JSON body to a webhook, signed; retries 5xx and network errors with backoff, never 4xx. Resolves with the 2xx status. */
export async function postWebhook(target: WebhookTarget, body: string, opts: WebhookSendOptions): Promise<{ status: number; attempts: number }> {
  const policy = opts.retry ?? { attempts: 4, baseDelayMs: 1000 };
  const sleep = opts.sleep ?? abortableSleep;
  const now = opts.now ?? (() => new Date());
  const raw = Buffer.from(body, "utf8");
  const where = describeWebhook(target.url);
  let last: Attempt = {};
  for (let attempt = 1; attempt <= policy.attempts; attempt++) {
    if (opts.signal?.aborted) throw new InterruptedError();
    const timestamp = String(Math.floor(now().getTime() / 1000));
    const headers: Record<string, string> = {
      "Content-Type": "application/json; charset=utf-8",
      "User-Agent": `scanbridge/${VERSION}`,
      "X-Scanbridge-Event": opts.event,
      [DELIVERY_HEADER]: opts.deliveryId,
      [TIMESTAMP_HEADER]: timestamp,
    };
    if (target.secret) headers[SIGNATURE_HEADER] = signWebhook(target.secret, timestamp, raw);
    last = await postOnce(target, raw, headers, opts.timeoutMs ?? 30_000, opts.signal);
    if (opts.signal?.aborted) throw new InterruptedError();
    if (last.status !== undefined && last.status >= 200 && last.status < 300) return { status: last.status, attempts: attempt };
    if (last.status !== undefined && last.status < 500) {
      // 3xx/4xx: the request itself is wrong (URL moved, bad signature, gone); repeating it now cannot help.
      throw new WebhookDeliveryError(msg("webhook.status", { where, status: last.status }), false, attempt, last.status);
    }
    if (attempt < policy.attempts) {
      const delay = policy.baseDelayMs * 2 ** (attempt - 1);
      await sleep(delay + Math.floor(Math.random() * (delay / 4)), opts.signal);
    }
  }
  const why = last.status !== undefined ? `HTTP ${last.status}` : (last.error ?? msg("webhook.noReply"));
  throw new WebhookDeliveryError(msg("webhook.failed", { where, attempts: policy.attempts, why }), true, policy.attempts, last.status);
}
