import { readFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ExitCode, UsageError } from "../errors.js";
import { hasChannels, notifyOptionsFrom, notifyReceipt, resolveNotifyChannels, type NotifyResult } from "../notify/stage.js";
import { packPackage } from "../pack/package.js";
import { formatDestination, parseDestination } from "../transfer/destination.js";
import { receiptNameFor, type Receipt } from "../transfer/receipt.js";
import { packHumanLines, packOptionsFrom, packResultData } from "./pack.js";
import type { SendCommandOptions } from "./send.command.js";
import type { CommandContext, CommandOutput } from "./types.js";
import { describeUpload, uploadDepsFrom, uploadPackageTo } from "./upload.js";

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
  if (!o.to) throw new UsageError("DESTINATION_MISSING", "Where to? Pass --to sftp://user@host/folder or a local folder", { hint: "Or set it once with `scanbridge init`." });
  const destination = formatDestination(parseDestination(o.to, ctx.cwd));
  const channels = resolveNotifyChannels(o, ctx.sources);
  const emit = ctx.reporter.emit.bind(ctx.reporter);

  const packed = await packPackage(await packOptionsFrom(ctx, { reuseIfUnchanged: true }));
  const receiptPath = join(dirname(packed.package), receiptNameFor(basename(packed.package)));
  const earlier = await readReceiptIfAny(receiptPath);
  let upload: Awaited<ReturnType<typeof uploadPackageTo>> | undefined;
  if (earlier && earlier.sha256 === packed.sha256 && earlier.destination === destination && !o.force) {
    emit({ type: "info", message: "This package was already uploaded there; skipping the upload." });
  } else {
    upload = await uploadPackageTo(packed.package, o, uploadDepsFrom(ctx));
  }

  let notified: NotifyResult | undefined;
  if (hasChannels(channels)) {
    notified = await notifyReceipt(receiptPath, channels, { ...notifyOptionsFrom(o), signal: ctx.signal }, emit);
  } else {
    emit({ type: "warn", code: "NOBODY_NOTIFIED", message: "No coordinator e-mail or webhook is configured: nobody was notified (see scanbridge init, --email, --webhook)" });
  }

  const human = [...packHumanLines(packed)];
  if (packed.reused) human.push("  (the package from the earlier run was reused: same files)");
  human.push(...(upload ? describeUpload(upload) : [`Already uploaded to ${destination}`]));
  if (notified) {
    for (const d of notified.sent) human.push(`Notified ${d.target} (${d.channel})`);
    if (notified.alreadySent.length) human.push(`${notified.alreadySent.length} notification(s) were sent by an earlier run (not repeated)`);
    for (const d of notified.pending) human.push(`NOT notified: ${d.target} (${d.channel}): ${d.error ?? "pending"}; run \`scanbridge notify --retry\` later`);
  }
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
