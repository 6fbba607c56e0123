import { mkdir, stat, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { hasChannels, notifyOptionsFrom, notifyReceipt, resolveNotifyChannels } from "../notify/stage.js";
import type { Receipt } from "../transfer/receipt.js";
import { InputError, UsageError } from "../errors.js";
import { runWatch, type PackageOutcome, type WatchEvent, type WatchOptions } from "../ingest/watcher.js";
import { formatBytes } from "../ui/format.js";
import type { Reporter } from "../ui/reporter.js";
import type { CommandContext, CommandOutput } from "./types.js";
import { limitsFromOptions } from "./verify.js";

/** Hooks the lead wires in later (staff notifications). */
export interface WatchHooks {
  /** Called once per package filed in ready/ or quarantine/. */
  onPackage?: (o: PackageOutcome) => void | Promise<void>;
}

/** Build the watch options from resolved command options; fails fast on a bad combination. */
export async function watchOptionsFrom(ctx: CommandContext): Promise<WatchOptions> {
  const o = ctx.options;
  if (typeof o.ready !== "string" || o.ready.length === 0) {
    throw new UsageError("MISSING_READY", "watch needs --ready <dir>: the folder where verified packages are extracted", { hint: "Example: scanbridge watch /srv/drop --ready /srv/ready" });
  }
  const arg = ctx.args[0]!;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(arg)) {
    throw new UsageError("REMOTE_INBOX_UNSUPPORTED", "Remote inboxes (sftp://) are not supported yet", { hint: "Watch a local or mounted folder." });
  }
  const drop = resolve(ctx.cwd, arg);
  try {
    if (!(await stat(drop)).isDirectory()) throw new Error("not a folder");
  } catch {
    throw new InputError("DROP_NOT_FOUND", `Drop folder not found: ${drop}`, { hint: "Create it or give the folder uploads arrive in." });
  }
  const abs = (v: unknown) => (typeof v === "string" && v.length > 0 ? resolve(ctx.cwd, v) : undefined);
  return {
    drop,
    ready: resolve(ctx.cwd, o.ready),
    archive: abs(o.archive),
    quarantine: abs(o.quarantine),
    settleSeconds: Number(o.settle ?? 30),
    concurrency: Number(o.concurrency ?? 2),
    once: o.once === true,
    allowUnsealed: o.allowUnsealed === true,
    limits: limitsFromOptions(o),
    auditFile: abs(o.audit),
    auditNames: o.auditNames === true,
    rescanSeconds: Number(o.rescan ?? 30),
    giveUpSeconds: Number(o.giveUp ?? 3600),
    staleClaimSeconds: Number(o.staleClaim ?? 120),
  };
}

/** Show one watch event: a JSON line with --json, a line on stderr otherwise, a status line on a TTY. PHI only with --verbose. */
export function reportWatchEvent(reporter: Reporter, verbose: boolean, e: WatchEvent): void {
  const who = "file" in e && verbose && e.file ? ` (${e.file})` : "";
  const data: Record<string, unknown> = { ...e };
  if (!verbose) delete data.file;
  switch (e.event) {
    case "status":
      if (reporter.mode === "tty") reporter.emit({ type: "step", id: "watch", label: `Watching: ${e.ready} ready, ${e.quarantined} quarantined, ${e.inProgress} in progress, ${e.waiting} waiting` });
      return;
    case "started":
      reporter.event(data, `watching ${e.drop}${e.recovered + e.requeued ? ` (recovered ${e.recovered}, put back ${e.requeued} after a crash)` : ""}`);
      return;
    case "claimed":
      reporter.event(data, `taking a package${who}: ${e.why}`);
      return;
    case "ready":
      reporter.event(data, `ready: package ${e.id}${who}, ${e.files} files, ${formatBytes(e.bytes)}, ${(e.durationMs / 1000).toFixed(1)} s${e.recovered ? " (finished after restart)" : ""}`);
      return;
    case "quarantined":
      reporter.event(data, `quarantined: package ${e.id}${who}: ${e.problems.join(", ")}`);
      return;
    case "requeued":
      reporter.event(data, `put back in the queue${who}: ${e.why}`);
      return;
    case "waiting":
      reporter.event(data, `not taken${who}: ${e.why}`);
      return;
    case "error": {
      // File-system messages carry paths, and paths carry patient names: shown only with --verbose.
      const message = verbose ? e.message : e.message.replace(/(['"]?)\/[^'"\n]*\1/g, "<path>");
      reporter.event({ ...data, message }, `error${who}: ${message} [${e.code}]`);
      return;
    }
    case "stopped":
      if (reporter.mode === "tty") reporter.emit({ type: "step-done", id: "watch", label: "Watch stopped" });
      reporter.event(data, `stopped: ${e.ready} ready, ${e.quarantined} quarantined`);
      return;
  }
}

/** Run `scanbridge watch <dropdir> --ready <dir>`; `hooks.onPackage` is where staff notifications plug in. */
export async function runWatchCommand(ctx: CommandContext, hooks: WatchHooks = {}): Promise<CommandOutput> {
  const opts = await watchOptionsFrom(ctx);
  const verbose = ctx.options.verbose === true;
  const s = await runWatch(opts, {
    signal: ctx.signal,
    onEvent: (e) => reportWatchEvent(ctx.reporter, verbose, e),
    onPackage: hooks.onPackage,
  });
  const outcomes = s.outcomes.map((o) => ({
    result: o.result,
    id: o.id,
    sha256: o.sha256,
    ...(verbose ? { file: o.file, readyPath: o.readyPath, quarantinePath: o.quarantinePath } : {}),
    problems: o.problems.map((p) => p.code),
  }));
  return {
    data: { ready: s.ready, quarantined: s.quarantined, requeued: s.requeued, errors: s.errors, packages: outcomes },
    human: [`watch: ${s.ready} ready, ${s.quarantined} quarantined${s.requeued ? `, ${s.requeued} put back in the queue` : ""}${s.errors ? `, ${s.errors} errors` : ""}`],
  };
}

/** Notifications about ingested packages: receipts and outboxes live in `<drop>/notifications/`. */
function staffNotifier(ctx: CommandContext, drop: string): WatchHooks["onPackage"] | undefined {
  const channels = resolveNotifyChannels(ctx.options);
  if (!hasChannels(channels)) return undefined;
  const base = notifyOptionsFrom(ctx.options);
  const dir = join(drop, "notifications");
  return async (o) => {
    const now = new Date().toISOString();
    const where = o.result === "ready" ? o.readyPath : o.quarantinePath;
    const receipt: Receipt = {
      format: "scanbridge-receipt",
      formatVersion: 1,
      package: o.file,
      destination: pathToFileURL(where ? dirname(where) : drop).href,
      remotePath: where ?? join(drop, o.file),
      size: o.summary.compressedBytes,
      sha256: o.sha256,
      verified: "sha256",
      attempts: 1,
      startedAt: now,
      finishedAt: now,
      event: o.result,
      ...(o.result === "quarantined" ? { problems: [...new Set(o.problems.map((p) => String(p.code)))] } : {}),
      summary: {
        files: o.summary.files,
        byKind: { ...(o.summary.byKind ?? {}) },
        ...(o.summary.dicom ? { studies: o.summary.dicom.studies.map((st) => ({ date: st.date, modalities: st.modalities, series: st.series, images: st.images })) } : {}),
      },
    };
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // Named by package id and event, not by patient: the notifications folder holds no names in file names.
    const receiptPath = join(dir, `${o.id}-${o.result}.receipt.json`);
    await writeFile(receiptPath, JSON.stringify(receipt, null, 2) + "\n", { mode: 0o600 });
    const r = await notifyReceipt(receiptPath, channels, { ...base, signal: ctx.signal }, (e) => ctx.reporter.emit(e));
    ctx.reporter.event(
      { event: "notified", id: o.id, result: o.result, sent: r.sent.length, pending: r.pending.length },
      `notified staff about package ${o.id} (${o.result}): ${r.sent.length} sent${r.pending.length ? `, ${r.pending.length} pending (scanbridge notify --retry in ${dir})` : ""}`,
    );
  };
}

/** `scanbridge watch` as the CLI runs it: with staff notifications when channels are configured. */
export async function runWatchWithNotifications(ctx: CommandContext): Promise<CommandOutput> {
  const drop = ctx.args[0] && !/^[a-z][a-z0-9+.-]*:\/\//i.test(ctx.args[0]) ? resolve(ctx.cwd, ctx.args[0]) : ctx.cwd;
  return runWatchCommand(ctx, { onPackage: staffNotifier(ctx, drop) });
}
