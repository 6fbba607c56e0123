import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ExitCode, UsageError } from "../errors.js";
import { listOf, msg, t, warnText } from "../i18n/index.js";
import { hasChannels, localizeDelivery, notifyOptionsFrom, notifyReceipt, resolveNotifyChannels, resolveSmtp, type NotifyResult } from "../notify/stage.js";
import { packPackage, type PackResult } from "../pack/package.js";
import { formatDestination, parseSendTarget, type DestinationSpec } from "../transfer/destination.js";
import { emailPackage } from "../transfer/email.js";
import { remoteNamesFor } from "../transfer/upload.js";
import { receiptNameFor, type Receipt } from "../transfer/receipt.js";
import { packHumanLines, packOptionsFrom, packResultData } from "./pack.js";
import type { SendCommandOptions } from "./send.command.js";
import type { CommandContext, CommandOutput } from "./types.js";
import { createConnector } from "../transfer/connect.js";
import { describeUpload, uploadDepsFrom, uploadPackageTo, type UploadStageDeps, type UploadStageOptions } from "./upload.js";

async function readReceiptIfAny(path: string): Promise<Receipt | undefined> {
  try {
    const r = JSON.parse(await readFile(path, "utf8")) as Receipt;
    return r.format === "scanbridge-receipt" ? r : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Run `scanbridge send`: pack → upload → notify. Everything is validated before work starts. A re-run after an
 * interruption reuses the package when the inputs are unchanged, resumes or skips the upload, and sends only the
 * notifications still pending: nothing is done twice.
 */
export async function runSendCommand(ctx: CommandContext<SendCommandOptions>): Promise<CommandOutput> {
  const o = ctx.options;
  // Fail in the first milliseconds on a bad destination or notification setting, not after an hour of zipping.
  if (!o.to) throw new UsageError("DESTINATION_MISSING", msg("send.destinationMissing"), { hint: msg("send.destinationMissing.hint") });
  const target = parseSendTarget(o.to, ctx.cwd);
  if (target.kind === "email") return sendByEmail(ctx, target.recipients);
  const destination = formatDestination(target);
  const channels = resolveNotifyChannels(o, ctx.sources);
  const emit = ctx.reporter.emit.bind(ctx.reporter);

  const packed = await packPackage(await packOptionsFrom(ctx, { reuseIfUnchanged: true }));
  const receiptPath = join(dirname(packed.package), receiptNameFor(basename(packed.package)));
  const earlier = await readReceiptIfAny(receiptPath);
  let upload: Awaited<ReturnType<typeof uploadPackageTo>> | undefined;
  const deps = uploadDepsFrom(ctx);
  if (earlier && earlier.sha256 === packed.sha256 && earlier.destination === destination && !o.force && (await isAtDestination(target, packed, o, deps))) {
    emit({ type: "info", message: t("send.alreadyUploaded") });
  } else {
    upload = await uploadPackageTo(packed.package, o, deps);
  }

  let notified: NotifyResult | undefined;
  if (hasChannels(channels)) {
    notified = await notifyReceipt(receiptPath, channels, { ...notifyOptionsFrom(o), signal: ctx.signal }, emit);
  } else {
    emit({ type: "warn", code: "NOBODY_NOTIFIED", ...warnText("warn.nobodyNotified") });
  }

  // Made only when shown (not with --json or --quiet).
  const human = (): string[] => {
    const lines = [...packHumanLines(packed)];
    if (packed.reused) lines.push(t("send.reused"));
    lines.push(...(upload ? describeUpload(upload) : [t("send.alreadyUploadedTo", { destination })]));
    if (notified) {
      for (const d of notified.sent) lines.push(t("send.notified", { target: d.target, channel: d.channel }));
      if (notified.alreadySent.length) lines.push(t("send.notifiedEarlier", { n: notified.alreadySent.length }));
      for (const d of notified.pending) lines.push(t("send.notNotified", { target: d.target, channel: d.channel, error: localizeDelivery(d).error ?? t("send.pending") }));
    }
    return lines;
  };
  const data = {
    package: packResultData(packed),
    reusedPackage: Boolean(packed.reused),
    upload: upload
      ? { destination: upload.receipt.destination, remotePath: upload.remotePath, size: upload.size, sha256: upload.sha256, verified: upload.verified, attempts: upload.attempts, resumedFrom: upload.resumedFrom, bytesSent: upload.bytesSent, durationMs: upload.durationMs, skipped: false }
      : { destination, skipped: true },
    receipt: receiptPath,
    notify: notified
      ? { packageId: notified.packageId, sent: notified.sent, pending: notified.pending, alreadySent: notified.alreadySent }
      : { packageId: packed.sha256?.slice(0, 12) ?? null, sent: [], pending: [], alreadySent: [], skipped: true },
  };
  return { data, human, ...(notified && notified.pending.length > 0 ? { exitCode: ExitCode.notifyFailed } : {}) };
}

/**
 * Whether an earlier run's upload is still there: the zip with the package's size and its .sha256 marker with the
 * size it was written with. A receipt alone is not trusted (the hospital may have removed or moved the file).
 */
async function isAtDestination(spec: DestinationSpec, packed: PackResult, options: UploadStageOptions, deps: UploadStageDeps): Promise<boolean> {
  const zipName = basename(packed.package);
  const names = remoteNamesFor(zipName);
  const dest = await (await createConnector(spec, options, deps))();
  try {
    const zip = await dest.stat(dest.pathOf(names.final));
    const marker = await dest.stat(dest.pathOf(names.marker));
    const markerSize = Buffer.byteLength(`${packed.sha256}  ${zipName}\n`, "utf8");
    return zip !== undefined && zip.size === packed.size && marker !== undefined && marker.size === markerSize;
  } finally {
    await dest.close().catch(() => {});
  }
}

/**
 * `send --to mailto:ADDR[,ADDR]`: pack, then e-mail the zip as one message through the configured SMTP server.
 * Over --email-limit: exit 4 with "upload instead", nothing sent. The message itself tells the recipients; the
 * notification stage is not run.
 */
async function sendByEmail(ctx: CommandContext<SendCommandOptions>, recipients: string[]): Promise<CommandOutput> {
  const o = ctx.options;
  // The SMTP settings fail now (usage error), not after zipping.
  const smtp = resolveSmtp(o, ctx.sources, (p) => readFileSync(p, "utf8"));
  const packed = await packPackage(await packOptionsFrom(ctx, { reuseIfUnchanged: true }));
  const sent = await emailPackage(
    { path: packed.package, sha256: packed.sha256!, size: packed.size!, files: packed.files.total },
    { recipients, smtp, limit: packed.emailLimit, ...notifyOptionsFrom(o), signal: ctx.signal, emit: ctx.reporter.emit.bind(ctx.reporter) },
  );
  const human = () => [...packHumanLines(packed), t("send.emailed", { recipients: listOf(recipients), server: sent.server, packageId: sent.packageId })];
  return {
    data: {
      package: packResultData(packed),
      reusedPackage: Boolean(packed.reused),
      email: { recipients, server: sent.server, messageId: sent.messageId, packageId: sent.packageId, size: sent.size, sha256: sent.sha256 },
    },
    human,
  };
}
