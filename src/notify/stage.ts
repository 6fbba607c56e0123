import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { InputError, InterruptedError, NotifyError, ScanbridgeError, UsageError } from "../errors.js";
import { english, localize, msg, warnText, type LocalText } from "../i18n/index.js";
import type { Receipt } from "../transfer/receipt.js";
import type { Emit } from "../ui/events.js";
import { factsFromReceipt, renderMessage, type SenderContact } from "./message.js";
import type { NotifySettings } from "./options.js";
import { isEmailAddress } from "./address.js";
import { outboxPathFor, pendingItems, readOutbox, saveOutbox, withOutboxLock, type Outbox, type OutboxItem } from "./outbox.js";
import { createSmtpSender, describeSmtp, parseSmtpUrl, SmtpDeliveryError, type SmtpSender, type SmtpSettings } from "./smtp.js";
import {
  abortableSleep,
  describeWebhook,
  postWebhook,
  validateWebhookUrl,
  WebhookDeliveryError,
  webhookKeyOf,
  type RetryPolicy,
  type WebhookTarget,
} from "./webhook.js";

/** Where notifications go, validated before any work starts. */
export interface NotifyChannels {
  /** Coordinator addresses to add to the outbox (lower-cased, unique). */
  emails: string[];
  /** The SMTP server, also used to retry e-mails already in an outbox. */
  smtp?: SmtpSettings;
  /** Why e-mail cannot be sent when `smtp` is missing (shown for pending e-mails). */
  smtpProblem?: ScanbridgeError;
  webhooks: WebhookTarget[];
}

/** How a notification is written and delivered. */
export interface NotifyOptions {
  includePatientName: boolean;
  sender: SenderContact;
  /** Only deliver what is already pending in the outbox; add no new deliveries. */
  retryOnly?: boolean;
  signal?: AbortSignal;
  now?: () => Date;
  /** In-run retries for transient failures (defaults: SMTP 3 attempts from 1 s, webhook 4 attempts from 1 s). */
  smtpRetry?: RetryPolicy;
  webhookRetry?: RetryPolicy;
  /** Network timeout per attempt, ms. */
  timeoutMs?: number;
  /** Seam for tests: build the SMTP sender. */
  createSmtpSender?: (s: SmtpSettings) => SmtpSender;
}

/** One delivery as reported to the user: no URL tokens, no patient data. */
export interface DeliveryReport {
  channel: "email" | "webhook";
  target: string;
  status: "sent" | "pending";
  attempts: number;
  error?: string;
  hint?: string;
}

/** The error and hint of a delivery report in the reader's language (the report itself keeps English, for --json). */
const localText = new WeakMap<DeliveryReport, { error?: LocalText | string; hint?: LocalText | string }>();

/** A delivery report's error and hint for a person, in their language. */
export function localizeDelivery(d: DeliveryReport): { error?: string; hint?: string } {
  const l = localText.get(d);
  const error = l?.error ?? d.error;
  const hint = l?.hint ?? d.hint;
  return { ...(error !== undefined ? { error: localize(error) } : {}), ...(hint !== undefined ? { hint: localize(hint) } : {}) };
}

/** What notifyReceipt did. `pending.length > 0` means exit 7 for the command. */
export interface NotifyResult {
  outboxPath: string;
  packageId: string;
  /** Delivered in this run. */
  sent: DeliveryReport[];
  /** Delivered by an earlier run (not repeated). */
  alreadySent: DeliveryReport[];
  /** Still in the outbox. */
  pending: DeliveryReport[];
}

export { isEmailAddress } from "./address.js";

/** Where each setting came from ("flag", "config file", ...), for errors that say what to fix. */
type Sources = Readonly<Record<string, string>>;

function sourceOf(sources: Sources, key: string): string {
  return sources[key] ?? "options";
}

function readPem(path: string, key: string, sources: Sources, readText: (p: string) => string): string {
  try {
    const pem = readText(path);
    if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new Error("no PEM certificate in it");
    return pem;
  } catch (err) {
    throw new UsageError("BAD_OPTION", msg("option.invalid", { key, source: sourceOf(sources, key), why: msg("notify.pemUnusable", { path, reason: (err as Error).message }) }), {
      hint: msg("notify.pemUnusable.hint"),
    });
  }
}

/**
 * Turn resolved options (email, smtp, smtpInsecure, smtpCa, from, senderEmail, smtpPassword, webhook,
 * webhookInsecure, webhookCa, webhookSecret) into validated channels; throws UsageError naming the key.
 * send and watch call this before any work so a bad value fails at once.
 */
export function resolveNotifyChannels(values: NotifySettings, sources: Sources = {}, readText: (p: string) => string = (p) => readFileSync(p, "utf8")): NotifyChannels {
  const emails = (values.email ?? []).flatMap((e) => e.split(",")).map((e) => e.trim()).filter(Boolean);
  for (const e of emails) {
    if (!isEmailAddress(e)) throw new UsageError("BAD_OPTION", msg("option.invalid", { key: "email", source: sourceOf(sources, "email"), why: msg("option.notEmail", { value: e }) }));
  }
  const channels: NotifyChannels = { emails: [...new Set(emails.map((e) => e.toLowerCase()))], webhooks: [] };
  try {
    channels.smtp = resolveSmtp(values, sources, readText);
  } catch (err) {
    // Without new recipients a bad SMTP setting only matters for e-mails already pending: report it there.
    if (emails.length > 0 || !(err instanceof UsageError)) throw err;
    channels.smtpProblem = err;
  }
  const hooks = (values.webhook ?? []).map((w) => w.trim()).filter(Boolean);
  const ca = hooks.length && values.webhookCa ? readPem(values.webhookCa, "webhookCa", sources, readText) : undefined;
  for (const url of [...new Set(hooks)]) {
    validateWebhookUrl(url, Boolean(values.webhookInsecure), sourceOf(sources, "webhook"));
    const t: WebhookTarget = { url };
    if (values.webhookSecret) t.secret = values.webhookSecret;
    if (ca) t.ca = ca;
    channels.webhooks.push(t);
  }
  return channels;
}

/** The configured SMTP server, validated (TLS rules, password from env/config only); throws UsageError naming the key. */
export function resolveSmtp(values: NotifySettings, sources: Sources, readText: (p: string) => string): SmtpSettings {
  const smtpUrl = values.smtp;
  if (!smtpUrl) {
    throw new UsageError("SMTP_MISSING", msg("notify.smtpMissing"), { hint: msg("notify.smtpMissing.hint") });
  }
  const server = parseSmtpUrl(smtpUrl, sourceOf(sources, "smtp"));
  const from = values.from ?? values.senderEmail;
  if (!from) throw new UsageError("FROM_MISSING", msg("notify.fromMissing"), { hint: msg("notify.fromMissing.hint") });
  if (!isEmailAddress(from)) throw new UsageError("BAD_OPTION", msg("option.invalid", { key: "from", source: sourceOf(sources, values.from ? "from" : "senderEmail"), why: msg("option.notEmail", { value: from }) }));
  const password = values.smtpPassword;
  if (server.user && !password) {
    throw new UsageError("SMTP_PASSWORD_MISSING", msg("notify.smtpNoPassword", { user: server.user }), {
      hint: msg("notify.smtpNoPassword.hint"),
    });
  }
  const smtp: SmtpSettings = { ...server, insecure: Boolean(values.smtpInsecure), from };
  if (password && server.user) smtp.password = password;
  if (values.smtpCa) smtp.ca = readPem(values.smtpCa, "smtpCa", sources, readText);
  return smtp;
}

/** NotifyOptions from resolved options (includePatientName, senderRole, senderName, senderEmail, senderPhone). */
export function notifyOptionsFrom(values: NotifySettings): NotifyOptions {
  const sender: SenderContact = {};
  if (values.senderRole) sender.role = values.senderRole;
  if (values.senderName) sender.name = values.senderName;
  if (values.senderEmail) sender.email = values.senderEmail;
  if (values.senderPhone) sender.phone = values.senderPhone;
  return { includePatientName: Boolean(values.includePatientName), sender };
}

/** True when at least one channel is configured. */
export function hasChannels(c: NotifyChannels): boolean {
  return c.emails.length > 0 || c.webhooks.length > 0;
}

/** Read and check a receipt file. */
export async function readReceipt(path: string): Promise<Receipt> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new UsageError("RECEIPT_UNREADABLE", msg("receipt.unreadable", { name: basename(path), reason: (err as NodeJS.ErrnoException).code ?? (err as Error).message }), {
      hint: msg("receipt.unreadable.hint"),
    });
  }
  let r: Receipt;
  try {
    r = JSON.parse(text) as Receipt;
  } catch {
    throw new InputError("RECEIPT_INVALID", msg("receipt.badJson", { name: basename(path) }));
  }
  if (r?.format !== "scanbridge-receipt" || typeof r.sha256 !== "string" || !/^[0-9a-f]{64}$/i.test(r.sha256) || typeof r.size !== "number") {
    throw new InputError("RECEIPT_INVALID", msg("receipt.notReceipt", { name: basename(path) }));
  }
  return r;
}

function newOutbox(receiptPath: string, receipt: Receipt, opts: NotifyOptions, now: Date): Outbox {
  const facts = factsFromReceipt(receipt, opts);
  const msg = renderMessage(facts);
  const notificationId = `${facts.packageId}.${now.getTime().toString(36)}.${randomBytes(4).toString("hex")}`;
  return {
    format: "scanbridge-outbox",
    formatVersion: 1,
    receipt: basename(receiptPath),
    packageSha256: facts.sha256,
    notificationId,
    createdAt: now.toISOString(),
    email: { subject: msg.subject, text: msg.text, html: msg.html, ...(opts.sender.email ? { replyTo: opts.sender.email } : {}) },
    webhookBody: JSON.stringify({ id: notificationId, ...facts, subject: msg.subject, text: msg.text }),
    items: [],
  };
}

function report(i: OutboxItem, problem?: Problem): DeliveryReport {
  const r: DeliveryReport = { channel: i.channel, target: i.target, status: i.status, attempts: i.attempts };
  if (i.status === "pending" && i.lastError) r.error = i.lastError;
  if (problem?.hint) r.hint = textOf(problem.hint);
  if (problem) localText.set(r, { ...(r.error !== undefined ? { error: problem.error } : {}), ...(problem.hint ? { hint: problem.hint } : {}) });
  return r;
}

/** Why a delivery failed, for a person (in their language) and for the outbox and --json (English). */
interface Problem {
  error: LocalText | string;
  hint?: LocalText | string;
}

function textOf(text: LocalText | string): string {
  return typeof text === "string" ? text : english(text.id, text.values);
}

async function withRetries<T>(policy: RetryPolicy, signal: AbortSignal | undefined, fn: () => Promise<T>, onAttempt: () => void): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    if (signal?.aborted) throw new InterruptedError();
    onAttempt();
    try {
      return await fn();
    } catch (err) {
      const retryable = err instanceof SmtpDeliveryError && err.retryable;
      if (!retryable || attempt >= policy.attempts) throw err;
      await abortableSleep(policy.baseDelayMs * 2 ** (attempt - 1), signal);
    }
  }
}

/**
 * Notify coordinators that the package of a receipt was uploaded. The message is written to
 * `<Name>.outbox.json` beside the receipt before anything is sent; each channel+recipient is marked
 * sent right after it succeeds, so a re-run (or `retryOnly`) sends only what is pending, once.
 * Never touches the package or the upload. Delivery failures do not throw: they come back in
 * `pending` (the command exits 7); only bad input, a locked outbox or an interrupt throw.
 */
export async function notifyReceipt(receiptPath: string, channels: NotifyChannels, opts: NotifyOptions, emit: Emit): Promise<NotifyResult> {
  const now = opts.now ?? (() => new Date());
  const outboxPath = outboxPathFor(receiptPath);
  const receipt = await readReceipt(receiptPath);
  return withOutboxLock(outboxPath, async () => {
    let outbox = await readOutbox(outboxPath);
    if (outbox && outbox.packageSha256 !== receipt.sha256.toLowerCase()) {
      emit({ type: "warn", code: "OUTBOX_REPLACED", ...warnText("warn.outboxReplaced", { id: outbox.packageSha256.slice(0, 12) }) });
      outbox = undefined;
    }
    const result: NotifyResult = { outboxPath, packageId: receipt.sha256.slice(0, 12).toLowerCase(), sent: [], alreadySent: [], pending: [] };
    if (!outbox && opts.retryOnly) return result;
    const box = outbox ?? newOutbox(receiptPath, receipt, opts, now());
    if (!opts.retryOnly) {
      const add = (channel: OutboxItem["channel"], id: string, target: string) => {
        if (!box.items.some((i) => i.id === id)) box.items.push({ id, channel, target, status: "pending", attempts: 0, createdAt: now().toISOString() });
      };
      for (const r of channels.emails) add("email", `email:${r}`, r);
      for (const w of channels.webhooks) add("webhook", `webhook:${webhookKeyOf(w.url)}`, describeWebhook(w.url));
    }
    // Persist the intent before the first byte goes out.
    await saveOutbox(outboxPath, box);

    for (const i of box.items) if (i.status === "sent") result.alreadySent.push(report(i));
    const todo = pendingItems(box);
    if (todo.length === 0) return result;

    const emailTo = box.items.filter((i) => i.channel === "email").map((i) => i.target);
    let smtp: SmtpSender | undefined;
    let smtpDown: SmtpDeliveryError | undefined;
    const problems = new Map<string, Problem>();
    try {
      for (const item of todo) {
        if (opts.signal?.aborted) throw new InterruptedError();
        const step = `notify:${item.id}`;
        emit({ type: "step", id: step, label: msg(item.channel === "email" ? "notify.emailTo" : "notify.webhookTo", { target: item.target }) });
        let response: string | undefined;
        let error: string | undefined;
        try {
          if (item.channel === "email") {
            if (!channels.smtp) throw new SmtpDeliveryError(channels.smtpProblem?.text ?? msg("notify.noSmtp"), false, channels.smtpProblem?.hintText ?? msg("notify.noSmtp.hint"));
            // The server was unreachable for an earlier recipient in this run: do not wait on it again.
            if (smtpDown) throw smtpDown;
            const settings = channels.smtp;
            smtp ??= (opts.createSmtpSender ?? createSmtpSender)({ ...settings, ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
            const sender = smtp;
            const accepted = await withRetries(opts.smtpRetry ?? { attempts: 3, baseDelayMs: 1000 }, opts.signal, () =>
              sender.send({
                recipient: item.target,
                to: emailTo,
                subject: box.email.subject,
                text: box.email.text,
                html: box.email.html,
                ...(box.email.replyTo ? { replyTo: box.email.replyTo } : {}),
                messageId: `<${box.notificationId}@scanbridge.invalid>`,
                headers: { "X-Scanbridge-Package-Id": box.packageSha256.slice(0, 12) },
              }),
              () => {
                item.attempts++;
                item.lastAttemptAt = now().toISOString();
              },
            );
            response = `${describeSmtp(settings)}: ${accepted.response}`;
          } else {
            const key = item.id.slice("webhook:".length);
            const target = channels.webhooks.find((w) => webhookKeyOf(w.url) === key);
            if (!target) throw new WebhookDeliveryError(msg("notify.webhookGone", { target: item.target }), false, 0);
            const posted = await postWebhook(target, box.webhookBody, {
              deliveryId: box.notificationId,
              event: "package.uploaded",
              retry: opts.webhookRetry ?? { attempts: 4, baseDelayMs: 1000 },
              signal: opts.signal,
              now,
              ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
            }).catch((err) => {
              if (err instanceof WebhookDeliveryError) item.attempts += err.attempts;
              throw err;
            });
            item.attempts += posted.attempts;
            item.lastAttemptAt = now().toISOString();
            response = `HTTP ${posted.status}`;
          }
        } catch (err) {
          if (err instanceof InterruptedError) throw err;
          error = (err as Error).message;
          const problem: Problem = { error: err instanceof ScanbridgeError ? err.text : error };
          if (err instanceof SmtpDeliveryError && err.hintText) problem.hint = err.hintText;
          if (err instanceof SmtpDeliveryError && err.retryable && err.responseCode === undefined) smtpDown = err;
          if (err instanceof WebhookDeliveryError && err.status && err.status < 500) problem.hint = msg("notify.webhookRefused.hint");
          if (err instanceof WebhookDeliveryError && err.attempts === 0) problem.hint = msg("notify.webhookGone.hint");
          if (!(err instanceof SmtpDeliveryError || err instanceof WebhookDeliveryError)) {
            error = `unexpected: ${error}`;
            problem.error = msg("notify.unexpected", { reason: problem.error });
          }
          problems.set(item.id, problem);
        }
        if (error === undefined) {
          item.status = "sent";
          item.sentAt = now().toISOString();
          item.response = response;
          delete item.lastError;
        } else {
          item.lastError = error;
          item.lastAttemptAt ??= now().toISOString();
        }
        // Record each outcome at once: a crash after this line never repeats a delivered message.
        await saveOutbox(outboxPath, box);
        emit({ type: "step-done", id: step, ok: error === undefined });
        const problem = problems.get(item.id);
        if (error !== undefined && problem) {
          const values = { target: item.target, error: problem.error };
          emit({ type: "warn", code: "NOTIFY_PENDING", ...warnText(item.channel === "email" ? "warn.emailNotDelivered" : "warn.notDelivered", values) });
        }
        (error === undefined ? result.sent : result.pending).push(report(item, problem));
      }
    } finally {
      smtp?.close();
    }
    return result;
  });
}

/** The NotifyError a command throws (or reports) when deliveries stay pending: exit 7, outbox kept. */
export function pendingError(result: NotifyResult): NotifyError {
  // The outbox is named after the patient: its path goes to privateLines (terminal or --verbose only).
  const withHint = result.pending.find((p) => p.hint);
  return new NotifyError("NOTIFY_PENDING", msg("notify.pendingError", { n: result.pending.length }), {
    hint: (withHint && localText.get(withHint)?.hint) ?? withHint?.hint ?? msg("notify.pendingError.hint"),
    details: { pending: result.pending, packageId: result.packageId },
    privateLines: [`outbox: ${result.outboxPath}`],
    retryable: true,
  });
}
