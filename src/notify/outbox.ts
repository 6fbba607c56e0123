import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { LocalIoError, NotifyError, ScanbridgeError, describeIoError } from "../errors.js";
import { msg } from "../i18n/index.js";
import { writeFileAtomic } from "../util/atomic-write.js";
import { acquireLock } from "../util/lock.js";

/** One delivery: a channel and a recipient, pending until it succeeds, then sent for good. */
export interface OutboxItem {
  /** "email:<address>" or "webhook:<key>" (key: hash of the URL, which is never stored). */
  id: string;
  channel: "email" | "webhook";
  /** E-mail address, or the webhook URL shortened so no token is kept. */
  target: string;
  status: "pending" | "sent";
  attempts: number;
  createdAt: string;
  lastAttemptAt?: string;
  sentAt?: string;
  lastError?: string;
  /** SMTP reply or HTTP status on success. */
  response?: string;
}

/** The outbox beside a receipt: the frozen message and every delivery's state. No secrets, no server credentials. */
export interface Outbox {
  format: "scanbridge-outbox";
  formatVersion: 1;
  /** File name of the receipt this outbox belongs to. */
  receipt: string;
  /** SHA-256 of the package the message describes; a different package starts a new outbox. */
  packageSha256: string;
  /** Stable ID of this notification: the e-mail Message-ID and the webhook delivery ID. */
  notificationId: string;
  createdAt: string;
  email: { subject: string; text: string; html: string; replyTo?: string };
  /** The webhook JSON body, exactly as sent (so retries and signatures cover identical bytes). */
  webhookBody: string;
  items: OutboxItem[];
}

/** Outbox path for a receipt: "X.receipt.json" -> "X.outbox.json". */
export function outboxPathFor(receiptPath: string): string {
  return (receiptPath.endsWith(".receipt.json") ? receiptPath.slice(0, -".receipt.json".length) : receiptPath.replace(/\.json$/i, "")) + ".outbox.json";
}

/** Receipt path for an outbox path: "X.outbox.json" -> "X.receipt.json". */
export function receiptPathForOutbox(outboxPath: string): string {
  return outboxPath.replace(/\.outbox\.json$/, "") + ".receipt.json";
}

/** Read an outbox; undefined when there is none. A damaged outbox is an error, never silently replaced. */
export async function readOutbox(path: string): Promise<Outbox | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new LocalIoError("OUTBOX_UNREADABLE", msg("outbox.unreadable", { path, reason: (err as NodeJS.ErrnoException).code ?? (err as Error).message }), { cause: err });
  }
  let data: Outbox;
  try {
    data = JSON.parse(text) as Outbox;
  } catch (err) {
    throw new LocalIoError("OUTBOX_DAMAGED", msg("outbox.badJson", { path }), {
      hint: msg("outbox.badJson.hint"),
      cause: err,
    });
  }
  if (data?.format !== "scanbridge-outbox" || data.formatVersion !== 1 || !Array.isArray(data.items)) {
    throw new LocalIoError("OUTBOX_DAMAGED", msg("outbox.notOutbox", { path, format: String(data?.format) }));
  }
  return data;
}

/** Save an outbox atomically with mode 0600 (it may name coordinators, and the patient when asked). */
export async function saveOutbox(path: string, outbox: Outbox): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(outbox, null, 2) + "\n", 0o600);
}

/** Deliveries still to be made. */
export function pendingItems(outbox: Outbox): OutboxItem[] {
  return outbox.items.filter((i) => i.status === "pending");
}


/**
 * Run `fn` holding the outbox's lock (src/util/lock.ts), so two runs (send and a manual retry, or watch) never
 * deliver the same message twice. A lock whose owner is gone (pid + start time) is broken; a live holder makes this
 * fail at once (OUTBOX_LOCKED), never hang.
 */
export async function withOutboxLock<T>(outboxPath: string, fn: () => Promise<T>, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<T> {
  const lockPath = outboxPath + ".lock";
  let lock;
  try {
    lock = await acquireLock(lockPath, { timeoutMs: opts.timeoutMs ?? 0, signal: opts.signal, purpose: "outbox" });
  } catch (err) {
    if (err instanceof ScanbridgeError && err.code === "LOCK_TIMEOUT") {
      throw new NotifyError("OUTBOX_LOCKED", msg("outbox.locked"), {
        hint: msg("outbox.locked.hint"),
        retryable: true,
        cause: err,
      });
    }
    throw err instanceof ScanbridgeError ? err : describeIoError(err, lockPath);
  }
  try {
    return await fn();
  } finally {
    await lock.release().catch(() => {});
  }
}

/** Every outbox file in a folder (for `notify --retry` without --receipt). */
export async function findOutboxes(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => n.endsWith(".outbox.json") && !n.startsWith(".")).sort().map((n) => join(dir, n));
}
