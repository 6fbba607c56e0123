import { basename, resolve } from "node:path";
import { ExitCode, UsageError } from "../errors.js";
import { msg, t, warnText } from "../i18n/index.js";
import { findOutboxes, receiptPathForOutbox } from "../notify/outbox.js";
import { hasChannels, localizeDelivery, notifyOptionsFrom, notifyReceipt, resolveNotifyChannels, type DeliveryReport, type NotifyResult } from "../notify/stage.js";
import type { NotifyCommandOptions } from "./notify.command.js";
import type { CommandContext, CommandOutput } from "./types.js";

function line(d: DeliveryReport): string {
  const what = t(d.channel === "email" ? "notify.emailTo" : "notify.webhookTo", { target: d.target });
  if (d.status === "sent") return t("notify.sent", { what });
  const { error, hint } = localizeDelivery(d);
  return t("notify.pendingLine", { what, error: error ?? t("notify.notDelivered") }) + (hint ? `\n${t("notify.pendingHint", { hint })}` : "");
}

/** Run `scanbridge notify`: deliver (or retry) the notifications of one receipt, or of every outbox in the folder. */
export async function runNotifyCommand(ctx: CommandContext<NotifyCommandOptions>): Promise<CommandOutput> {
  const o = ctx.options;
  const retryOnly = o.retry;
  const channels = resolveNotifyChannels(o, ctx.sources);
  const receiptArg = o.receipt;
  if (!receiptArg && !retryOnly) {
    throw new UsageError("RECEIPT_MISSING", msg("notify.receiptMissing"), { hint: msg("notify.receiptMissing.hint") });
  }
  if (!retryOnly && !hasChannels(channels)) {
    throw new UsageError("NO_CHANNELS", msg("notify.noChannels"), {
      hint: msg("notify.noChannels.hint"),
    });
  }
  if (!channels.webhooks.some((w) => w.secret) && channels.webhooks.length > 0) {
    ctx.reporter.emit({ type: "warn", code: "WEBHOOK_UNSIGNED", ...warnText("warn.webhookUnsigned") });
  }
  if (channels.smtp?.insecure) {
    ctx.reporter.emit({ type: "warn", code: "SMTP_INSECURE", ...warnText("warn.smtpInsecure") });
  }
  const receipts = receiptArg ? [resolve(ctx.cwd, receiptArg)] : (await findOutboxes(ctx.cwd)).map(receiptPathForOutbox);
  const base = notifyOptionsFrom(o);
  const results: NotifyResult[] = [];
  for (const r of receipts) {
    results.push(await notifyReceipt(r, channels, { ...base, retryOnly, signal: ctx.signal }, (e) => ctx.reporter.emit(e)));
  }
  const sent = results.flatMap((r) => r.sent);
  const pending = results.flatMap((r) => r.pending);
  const already = results.flatMap((r) => r.alreadySent);
  const verbose = ctx.verbose;
  const human: string[] = [];
  for (const r of results) {
    const rows = [...r.sent, ...r.pending];
    human.push(t(rows.length === 0 ? "notify.packageNothing" : "notify.package", { id: r.packageId }));
    for (const d of rows) human.push(line(d));
    if (r.alreadySent.length) human.push(t("notify.deliveredEarlier", { n: r.alreadySent.length }));
    // The outbox is named after the patient: only shown with --verbose.
    if (r.pending.length) human.push(t("notify.keptIn", { where: verbose ? basename(r.outboxPath) : t("notify.theOutbox") }));
  }
  if (results.length === 0) human.push(t("notify.nothingPending"));
  const data = {
    ok: pending.length === 0,
    packages: results.map((r) => ({ packageId: r.packageId, ...(verbose ? { outbox: r.outboxPath } : {}), sent: r.sent, pending: r.pending, alreadySent: r.alreadySent })),
    sent: sent.length,
    pending: pending.length,
    alreadySent: already.length,
  };
  return { data, human, ...(pending.length ? { exitCode: ExitCode.notifyFailed } : {}) };
}
