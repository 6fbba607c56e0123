import { basename, resolve } from "node:path";
import { ExitCode, UsageError } from "../errors.js";
import { findOutboxes, receiptPathForOutbox } from "../notify/outbox.js";
import { hasChannels, notifyOptionsFrom, notifyReceipt, resolveNotifyChannels, type DeliveryReport, type NotifyResult } from "../notify/stage.js";
import type { NotifyCommandOptions } from "./notify.command.js";
import type { CommandContext, CommandOutput } from "./types.js";

function line(d: DeliveryReport): string {
  const what = d.channel === "email" ? `e-mail to ${d.target}` : `webhook ${d.target}`;
  if (d.status === "sent") return `  sent     ${what}`;
  return `  PENDING  ${what}: ${d.error ?? "not delivered"}${d.hint ? `\n           hint: ${d.hint}` : ""}`;
}

/** Run `scanbridge notify`: deliver (or retry) the notifications of one receipt, or of every outbox in the folder. */
export async function runNotifyCommand(ctx: CommandContext<NotifyCommandOptions>): Promise<CommandOutput> {
  const o = ctx.options;
  const retryOnly = o.retry;
  const channels = resolveNotifyChannels(o, ctx.sources);
  const receiptArg = o.receipt;
  if (!receiptArg && !retryOnly) {
    throw new UsageError("RECEIPT_MISSING", "Which upload? Pass --receipt <Name>.receipt.json", { hint: "Or run `scanbridge notify --retry` to send whatever is pending in this folder." });
  }
  if (!retryOnly && !hasChannels(channels)) {
    throw new UsageError("NO_CHANNELS", "No one to notify: no coordinator e-mail and no webhook configured", {
      hint: "Pass --email ADDR --smtp URL and/or --webhook URL, or run `scanbridge init`.",
    });
  }
  if (!channels.webhooks.some((w) => w.secret) && channels.webhooks.length > 0) {
    ctx.reporter.emit({ type: "warn", code: "WEBHOOK_UNSIGNED", message: "No webhook secret set (SCANBRIDGE_WEBHOOK_SECRET): webhook requests go unsigned" });
  }
  if (channels.smtp?.insecure) {
    ctx.reporter.emit({ type: "warn", code: "SMTP_INSECURE", message: "--smtp-insecure: e-mail may travel without TLS and the server certificate is not checked" });
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
    human.push(`Package ${r.packageId}: ${rows.length === 0 ? "nothing to send" : ""}`.trimEnd());
    for (const d of rows) human.push(line(d));
    if (r.alreadySent.length) human.push(`  (${r.alreadySent.length} delivered earlier, not repeated)`);
    // The outbox is named after the patient: only shown with --verbose.
    if (r.pending.length) human.push(`  Kept in ${verbose ? basename(r.outboxPath) : "the outbox beside the receipt"}; run \`scanbridge notify --retry\` to send it.`);
  }
  if (results.length === 0) human.push("Nothing pending.");
  const data = {
    ok: pending.length === 0,
    packages: results.map((r) => ({ packageId: r.packageId, ...(verbose ? { outbox: r.outboxPath } : {}), sent: r.sent, pending: r.pending, alreadySent: r.alreadySent })),
    sent: sent.length,
    pending: pending.length,
    alreadySent: already.length,
  };
  return { data, human, ...(pending.length ? { exitCode: ExitCode.notifyFailed } : {}) };
}
