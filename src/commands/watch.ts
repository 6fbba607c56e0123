import { OVERRIDE_WARNING_CODES } from "../pack/manifest.js";
import { setHeapFlags, V8_HEAP_GROWTH } from "../util/heap.js";
import { stat } from "node:fs/promises";
import { basename, dirname, join, relative, resolve, isAbsolute } from "node:path";
import { pathToFileURL } from "node:url";
import type { Receipt } from "../transfer/receipt.js";
import { errorCode, ExitCode, InputError, UsageError } from "../errors.js";
import { runWatch, type ForwardedOutcome, type PackageOutcome, type WatchEvent, type WatchOptions, type WatchSummary } from "../ingest/watcher.js";
import type { PollResult, RemoteInboxEvent } from "../ingest/remote-inbox.js";
import type { Destination, DestinationSpec } from "../transfer/destination.js";
import { formatBytes } from "../ui/format.js";
import type { Reporter } from "../ui/reporter.js";
import type { CommandContext, CommandOutput } from "./types.js";
import type { WatchCommandOptions } from "./watch.command.js";
import { limitsFromOptions, problemHint, zipEncodingsFrom } from "./verify.js";
import { intakeRecord, type IntakeFields } from "../ingest/intake-report.js";
import type { PackageProblem } from "../ingest/verify.js";

/** Problem codes with how many times each was found (staff see "CRC_MISMATCH ×3", not three lines). */
export function countCodes(problems: PackageProblem[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of problems) out[String(p.code)] = (out[String(p.code)] ?? 0) + 1;
  return out;
}
import { defaultStateDir, mkdirPrivate, openStateDir, privateModes, stateDirs } from "../ingest/state.js";
import { writeJsonAtomic } from "../util/atomic-write.js";
import { watchMediaHooks } from "./media.js";

/** What runs beside the watcher for each package: staff notifications (runWatchWithNotifications) and tests. */
export interface WatchHooks {
  /** Called once per package filed in ready/ or quarantine/. */
  onPackage?: (o: PackageOutcome) => void | Promise<void>;
  /** Called once per package delivered to the PACS and confirmed (watch --forward). */
  onForwarded?: (f: ForwardedOutcome) => void | Promise<void>;
}

/** Build the watch options from resolved command options; fails fast on a bad combination. */
export async function watchOptionsFrom(ctx: CommandContext<WatchCommandOptions>): Promise<WatchOptions> {
  const o = ctx.options;
  if (!o.ready) {
    throw new UsageError("MISSING_READY", "watch needs --ready <dir>: the folder where verified packages are extracted", { hint: "Example: scanbridge watch /srv/drop --ready /srv/ready" });
  }
  const remote = await remoteInboxFrom(ctx);
  // Every flag is checked before anything is created. What routing, forwarding and remote inboxes need is loaded
  // only when they are asked for: a plain watch starts without it.
  const routing = o.routes === undefined || o.routes === null ? undefined : (await import("./route.js")).routingFrom(o);
  const forward = o.forward ? (await import("./forward.js")).forwardFrom(o, ctx.cwd) : undefined;
  const drop = localDropFor(ctx);
  const modes = privateModes(o.group || undefined);
  const state = stateFolderFor(ctx);
  if (remote) {
    // The local drop of a remote inbox is ours: created on first use, private to this machine's staff.
    await openStateDir(state, modes);
    await mkdirPrivate(drop, modes);
  } else if (o.drop) {
    throw new UsageError("DROP_WITHOUT_REMOTE", "--drop is only for a remote inbox (sftp://...); a local drop folder is the argument itself");
  }
  let dropDev: number;
  try {
    const st = await stat(drop);
    if (!st.isDirectory()) throw new Error("not a folder");
    dropDev = st.dev;
  } catch {
    throw new InputError("DROP_NOT_FOUND", `Drop folder not found: ${drop}`, { hint: "Create it or give the folder uploads arrive in." });
  }
  if (!remote && (isInside(state, drop) || isInside(drop, state))) {
    throw new UsageError("STATE_IN_DROP", "The state folder must be outside the drop folder (uploaders can rename anything inside it), and the drop outside the state folder", {
      hint: `Give --state a folder beside it, e.g. --state ${defaultStateDir(resolve(ctx.cwd, o.ready))}`,
    });
  }
  await openStateDir(state, modes);
  // Packages are claimed by one rename out of the drop into the state folder: both on one file system.
  if ((await stat(state)).dev !== dropDev) {
    throw new UsageError("STATE_OTHER_FILE_SYSTEM", "The state folder is on another file system than the drop folder: packages are claimed by one atomic rename between them", {
      hint: `Give --state a folder on the drop folder's file system (outside the drop), e.g. --state ${join(dirname(drop), "scanbridge-state")}`,
    });
  }
  const abs = (v: unknown) => (typeof v === "string" && v.length > 0 ? resolve(ctx.cwd, v) : undefined);
  return {
    drop,
    state,
    modes,
    ready: resolve(ctx.cwd, o.ready),
    archive: abs(o.archive),
    quarantine: abs(o.quarantine),
    settleSeconds: Number(o.settle ?? 30),
    concurrency: Number(o.concurrency ?? 2),
    once: o.once === true,
    allowUnsealed: o.sealedOnly !== true,
    zipEncodings: zipEncodingsFrom(o),
    limits: limitsFromOptions(o),
    auditFile: abs(o.audit),
    auditNames: o.auditNames === true,
    rescanSeconds: Number(o.rescan ?? 30),
    giveUpSeconds: Number(o.giveUp ?? 3600),
    staleClaimSeconds: Number(o.staleClaim ?? 120),
    routing,
    forward,
  };
}

const isUrl = (s: string) => /^[a-z][a-z0-9+.-]*:\/\//i.test(s);

/** A remote inbox: where it is and what happens to each remote file once it is handed over. */
type RemoteInboxSpec = { spec: Extract<DestinationSpec, { kind: "sftp" }>; after: "move" | "delete"; processed: string; claims?: string };

/** A remote inbox argument (sftp://user@host[:port]/folder), parsed; undefined for a local drop folder. */
export async function remoteInboxFrom(ctx: CommandContext<WatchCommandOptions>): Promise<RemoteInboxSpec | undefined> {
  const arg = ctx.args[0] ?? "";
  if (!isUrl(arg)) return undefined;
  if (!/^sftp:\/\//i.test(arg)) {
    throw new UsageError("REMOTE_INBOX_UNSUPPORTED", `Remote inboxes are read over SFTP only, not ${arg.split(":")[0]}://`, { hint: "Use sftp://user@host[:port]/folder, or watch a local or mounted folder." });
  }
  const [{ parseDestination }, { defaultProcessedFolder }] = await Promise.all([import("../transfer/destination.js"), import("../ingest/remote-inbox.js")]);
  const spec = parseDestination(arg, ctx.cwd);
  if (spec.kind !== "sftp") throw new UsageError("REMOTE_INBOX_UNSUPPORTED", "Remote inboxes are read over SFTP only");
  if (!spec.user) {
    throw new UsageError("DESTINATION_NO_USER", "The sftp:// address has no user name", { hint: "Use sftp://user@host/folder." });
  }
  const after = ctx.options.remoteAfter;
  const processed = ctx.options.remoteProcessed ? ctx.options.remoteProcessed.replace(/\/+$/, "") || "/" : defaultProcessedFolder(spec.folder);
  const claims = ctx.options.remoteClaims ? ctx.options.remoteClaims.replace(/\/+$/, "") || "/" : undefined;
  return { spec, after, processed, ...(claims ? { claims } : {}) };
}

/** The local folder runWatch processes: the argument, or for a remote inbox --drop (default <state>/remote-drop). */
export function localDropFor(ctx: CommandContext<WatchCommandOptions>): string {
  const arg = ctx.args[0] ?? "";
  if (!isUrl(arg)) return resolve(ctx.cwd, arg);
  const o = ctx.options;
  if (o.drop) return resolve(ctx.cwd, o.drop);
  return stateDirs(stateFolderFor(ctx)).remoteDrop;
}

/** The watcher's state folder: --state, else `scanbridge-state` beside the ready folder. */
export function stateFolderFor(ctx: CommandContext<{ state?: string; ready?: string }>): string {
  const o = ctx.options;
  if (o.state) return resolve(ctx.cwd, o.state);
  return defaultStateDir(resolve(ctx.cwd, o.ready ?? "."));
}

/** Whether `inner` is `outer` or inside it. */
function isInside(inner: string, outer: string): boolean {
  const r = relative(outer, inner);
  return r === "" || (!r.startsWith("..") && !isAbsolute(r));
}

/** Show one remote inbox event (download, clean-up); errors and waits are shown as watch events. PHI only with --verbose. */
export function reportRemoteEvent(reporter: Reporter, verbose: boolean, e: RemoteInboxEvent): void {
  if (e.event === "error" || e.event === "waiting") return reportWatchEvent(reporter, verbose, { ...e, event: e.event, file: e.file ?? "" } as WatchEvent);
  const who = verbose ? ` (${e.file})` : "";
  const data: Record<string, unknown> = { ...e };
  if (!verbose) delete data.file;
  if (e.event === "downloaded") {
    reporter.event(data, `downloaded package ${e.id}${who} from the remote inbox, ${formatBytes(e.bytes)}${e.marker ? ", matches its .sha256 marker" : ""}`);
  } else {
    reporter.event(data, `remote copy of package ${e.id}${who} ${e.action === "moved" ? "moved to the processed folder" : "deleted"}`);
  }
}

/** Show one watch event: a JSON line with --json, a line on stderr otherwise, a status line on a TTY. PHI only with --verbose. */
export function reportWatchEvent(reporter: Reporter, verbose: boolean, e: WatchEvent): void {
  const who = "file" in e && verbose && e.file ? ` (${e.file})` : "";
  const data: Record<string, unknown> = { ...e };
  if (!verbose) {
    delete data.file;
    delete data.readyRel; // the ready folder is named after the patient
  }
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
      reporter.event(data, `ready: package ${e.id}${who}, ${e.files} files, ${formatBytes(e.bytes)}, ${(e.durationMs / 1000).toFixed(1)} s${e.recovered ? " (finished after restart)" : ""}${intakeNote(e)}${verbose && e.readyRel ? ` -> ${e.readyRel}` : ""}`);
      return;
    case "quarantined":
      reporter.event(data, `quarantined: package ${e.id}${who}: ${groupCodes(e.problems)}${intakeNote(e)}`);
      return;
    case "requeued":
      reporter.event(data, `put back in the queue${who}: ${e.why}`);
      return;
    case "waiting":
      reporter.event(data, `not taken${who}: ${e.why}`);
      return;
    case "ignored":
      reporter.event(data, `ignored in the drop folder${who}: ${e.why}`);
      return;
    case "warning":
      reporter.event(data, `warning: ${e.message} [${e.code}]`);
      return;
    case "error": {
      // File-system messages carry paths, and paths carry patient names: shown only with --verbose.
      const message = verbose ? e.message : e.message.replace(/(['"]?)\/[^'"\n]*\1/g, "<path>");
      reporter.event({ ...data, message }, `error${who}: ${message} [${e.code}]`);
      return;
    }
    case "forwarded":
      reporter.event(data, `forwarded package ${e.id} to the PACS: ${e.confirmed} of ${e.instances} instances confirmed, ${(e.durationMs / 1000).toFixed(1)} s`);
      return;
    case "forward-queued":
      reporter.event(data, `package ${e.id} stays queued for the PACS (attempt ${e.attempts}, next in ${Math.round(e.nextAttemptInMs / 1000)} s): ${e.message} [${e.code}]`);
      return;
    case "stopped":
      if (reporter.mode === "tty") reporter.emit({ type: "step-done", id: "watch", label: "Watch stopped" });
      reporter.event(data, `stopped: ${e.ready} ready, ${e.quarantined} quarantined`);
      return;
  }
}

/** "CRC_MISMATCH ×3, NAME_TOO_LONG": codes grouped with counts. */
function groupCodes(codes: string[]): string {
  const counts = new Map<string, number>();
  for (const c of codes) counts.set(c, (counts.get(c) ?? 0) + 1);
  return [...counts].map(([c, n]) => (n > 1 ? `${c} ×${n}` : c)).join(", ");
}

/** The intake facts of an event in words: unsealed, code page chosen, what was left out, review flags. */
function intakeNote(e: Partial<IntakeFields>): string {
  const bits: string[] = [];
  if (e.unsealed) bits.push("hand-made (unsealed)");
  if (e.nameEncoding) bits.push(`names read as ${e.nameEncoding.encoding} (${e.nameEncoding.evidence})`);
  const left = Object.entries(e.leftOut ?? {}).map(([r, n]) => `${n} ${r}`);
  if (left.length) bits.push(`left out: ${left.join(", ")}`);
  if (e.expandedArchives) bits.push(`${e.expandedArchives} archive(s) inside unpacked`);
  if (e.needsReview?.length) bits.push(`NEEDS REVIEW: ${e.needsReview.join(", ")}`);
  return bits.length ? `; ${bits.join("; ")}` : "";
}

/** Run `scanbridge watch <dropdir> --ready <dir>`; `hooks.onPackage` is where staff notifications plug in. */
export async function runWatchCommand(ctx: CommandContext<WatchCommandOptions>, hooks: WatchHooks = {}): Promise<CommandOutput> {
  setHeapFlags(V8_HEAP_GROWTH); // src/util/heap.ts
  const opts = await watchOptionsFrom(ctx);
  const verbose = ctx.verbose;
  const remote = await remoteInboxFrom(ctx);
  const watchDeps = {
    signal: ctx.signal,
    onEvent: (e: WatchEvent) => reportWatchEvent(ctx.reporter, verbose, e),
    onPackage: hooks.onPackage,
    onForwarded: hooks.onForwarded,
    ...(await watchMediaHooks(ctx)),
  };
  let s: WatchSummary;
  let remoteTotals: RemoteTotals | undefined;
  let exitCode: number | undefined;
  if (remote) {
    const r = await runRemoteInbox(ctx, opts, remote, watchDeps, verbose);
    s = r.summary;
    remoteTotals = r.remote;
    exitCode = r.exitCode;
  } else {
    s = await runWatch(opts, watchDeps);
  }
  // --once with packages the PACS did not take: they stay queued; the run reports it (exit 5).
  if (opts.forward && opts.once && (s.forwardQueued ?? 0) > 0) exitCode ??= ExitCode.network;
  const outcomes = s.outcomes.map((o) => ({
    result: o.result,
    id: o.id,
    sha256: o.sha256,
    ...(verbose ? { file: o.file, readyPath: o.readyPath, quarantinePath: o.quarantinePath } : {}),
    problems: o.problems.map((p) => p.code),
    warnings: o.warnings.map((w) => w.code),
  }));
  return {
    data: { ready: s.ready, quarantined: s.quarantined, requeued: s.requeued, errors: s.errors, packages: outcomes, ...(remoteTotals ? { remote: remoteTotals } : {}), ...(opts.forward ? { forward: { delivered: s.forwarded ?? 0, queued: s.forwardQueued ?? 0 } } : {}) },
    human: [
      `watch: ${s.ready} ready, ${s.quarantined} quarantined${s.requeued ? `, ${s.requeued} put back in the queue` : ""}${s.errors ? `, ${s.errors} errors` : ""}`,
      ...(opts.forward ? [`forward: ${s.forwarded ?? 0} delivered and confirmed${s.forwardQueued ? `, ${s.forwardQueued} queued for retry` : ""}`] : []),
      ...(remoteTotals ? [`remote inbox: ${remoteTotals.downloaded} downloaded, ${remoteTotals.cleaned} ${remote?.after === "delete" ? "deleted" : "moved"} on the server${remoteTotals.errors ? `, ${remoteTotals.errors} errors` : ""}`] : []),
    ],
    ...(exitCode !== undefined ? { exitCode } : {}),
  };
}

/** Totals of the remote inbox over a watch run. */
interface RemoteTotals {
  downloaded: number;
  cleaned: number;
  errors: number;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((res) => {
    if (signal.aborted) return res();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      res();
    }
    signal.addEventListener("abort", done, { once: true });
  });

/**
 * A remote inbox: log in (host key checked exactly as upload does: fails closed), then poll the SFTP folder
 * into the local drop while runWatch processes that drop. With --once: poll (a second time after --settle when
 * unmarked packages are settling), close the connection, then process the drop once.
 */
async function runRemoteInbox(
  ctx: CommandContext<WatchCommandOptions>,
  opts: WatchOptions,
  remote: RemoteInboxSpec,
  watchDeps: Parameters<typeof runWatch>[1],
  verbose: boolean,
): Promise<{ summary: WatchSummary; remote: RemoteTotals; exitCode?: number }> {
  // The SSH client (ssh2) is loaded only for a remote inbox: a local watch starts without it.
  const [{ createConnector }, { uploadDepsFrom }, { RemoteInbox }] = await Promise.all([import("../transfer/connect.js"), import("./upload.js"), import("../ingest/remote-inbox.js")]);
  const connect = await createConnector(remote.spec, ctx.options, uploadDepsFrom(ctx));
  const totals: RemoteTotals = { downloaded: 0, cleaned: 0, errors: 0 };
  const inbox = new RemoteInbox(
    { inbox: remote.spec.folder, drop: opts.drop, after: remote.after, processed: remote.processed, ...(remote.claims ? { claims: remote.claims } : {}), settleSeconds: opts.settleSeconds },
    (e) => reportRemoteEvent(ctx.reporter, verbose, e),
  );
  const add = (r: PollResult) => {
    totals.downloaded += r.downloaded;
    totals.cleaned += r.cleaned;
    totals.errors += r.errors;
  };
  // The first login happens before anything else: a wrong key, password or host key ends the command at once.
  let dest: Destination | undefined = await connect();
  if (opts.once) {
    let pollFailed = false;
    try {
      const r = await inbox.poll(dest, ctx.signal);
      add(r);
      if (r.settling > 0 && !ctx.signal.aborted) {
        await sleep(opts.settleSeconds * 1000, ctx.signal);
        if (!ctx.signal.aborted) add(await inbox.poll(dest, ctx.signal));
      }
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      pollFailed = true;
      totals.errors++;
      reportWatchEvent(ctx.reporter, verbose, { event: "error", code: errorCode(err, "REMOTE_POLL_FAILED"), message: `Remote inbox poll failed: ${(err as Error).message}` });
    } finally {
      await dest.close().catch(() => {});
    }
    // What was handed over before a failure is still processed; the run then reports the failure (exit 5).
    return { summary: await runWatch(opts, watchDeps), remote: totals, ...(pollFailed ? { exitCode: ExitCode.network } : {}) };
  }
  const poller = (async () => {
    while (!ctx.signal.aborted) {
      let settling = 0;
      try {
        // A connection the server dropped while idle is replaced without a fuss.
        if (dest?.connectionFailure) {
          await dest.close().catch(() => {});
          dest = undefined;
        }
        dest ??= await connect();
        const r = await inbox.poll(dest, ctx.signal);
        add(r);
        settling = r.settling;
      } catch (err) {
        if (ctx.signal.aborted) break;
        totals.errors++;
        reportWatchEvent(ctx.reporter, verbose, { event: "error", code: errorCode(err, "REMOTE_POLL_FAILED"), message: `Remote inbox poll failed, retried in ${opts.rescanSeconds} s: ${(err as Error).message}` });
        await dest?.close().catch(() => {});
        dest = undefined;
      }
      // Poll sooner while an unmarked package settles, so it is taken about --settle after it stopped changing.
      const wait = settling > 0 ? Math.min(opts.rescanSeconds, Math.max(1, opts.settleSeconds)) : opts.rescanSeconds;
      await sleep(wait * 1000, ctx.signal);
    }
    await dest?.close().catch(() => {});
  })();
  const [summary] = await Promise.all([runWatch(opts, watchDeps), poller]);
  return { summary, remote: totals };
}

/** Notifications about ingested packages: receipts and outboxes live in `<state>/notifications/` (never in the drop). */
async function staffNotifier(ctx: CommandContext<WatchCommandOptions>, state: string, drop: string): Promise<WatchHooks> {
  // Without an address or a webhook there is nothing to notify: the notification code is not even loaded.
  const given = (v: string[] | undefined, split: boolean) => (v ?? []).flatMap((x) => (split ? x.split(",") : [x])).some((x) => x.trim() !== "");
  if (!given(ctx.options.email, true) && !given(ctx.options.webhook, false)) return {};
  const { hasChannels, notifyOptionsFrom, notifyReceipt, resolveNotifyChannels } = await import("../notify/stage.js");
  const channels = resolveNotifyChannels(ctx.options, ctx.sources);
  if (!hasChannels(channels)) return {};
  const base = notifyOptionsFrom(ctx.options);
  const dir = stateDirs(state).notifications;
  const onPackage = async (o: PackageOutcome) => {
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
      ...(o.result === "quarantined" ? { problems: [...new Set(o.problems.map((p) => String(p.code)))], problemCounts: countCodes(o.problems), hint: problemHint(o.problems) } : {}),
      intake: { ...intakeRecord({ sealed: o.sealed, nameEncoding: o.nameEncoding ?? { encoding: "utf-8", evidence: "ascii", legacyNames: 0 } }, o.intake, base.includePatientName ? o.readyRel : undefined) },
      ...(o.warnings.some((w) => OVERRIDE_WARNING_CODES.has(w.code)) ? { warnings: [...new Set(o.warnings.filter((w) => OVERRIDE_WARNING_CODES.has(w.code)).map((w) => w.message))] } : {}),
      summary: {
        files: o.summary.files,
        byKind: { ...(o.summary.byKind ?? {}) },
        ...(o.summary.dicom ? { studies: o.summary.dicom.studies.map((st) => ({ date: st.date, modalities: st.modalities, series: st.series, images: st.images })) } : {}),
      },
    };
    // Named by package id and event, not by patient: the notifications folder holds no names in file names.
    const receiptPath = join(dir, `${o.id}-${o.result}.receipt.json`);
    await writeJsonAtomic(receiptPath, receipt);
    const r = await notifyReceipt(receiptPath, channels, { ...base, signal: ctx.signal }, (e) => ctx.reporter.emit(e));
    ctx.reporter.event(
      { event: "notified", id: o.id, result: o.result, sent: r.sent.length, pending: r.pending.length },
      `notified staff about package ${o.id} (${o.result}): ${r.sent.length} sent${r.pending.length ? `, ${r.pending.length} pending (scanbridge notify --retry in ${dir})` : ""}`,
    );
  };
  // The forward, recorded for staff: counts and duration; the patient's name only with the usual opt-in.
  const onForwarded = async (f: ForwardedOutcome) => {
    const now = new Date().toISOString();
    const receipt: Receipt = {
      format: "scanbridge-receipt",
      formatVersion: 1,
      package: `${basename(f.readyPath)}.zip`,
      destination: f.pacs,
      remotePath: f.pacs,
      size: 0,
      sha256: f.sha256,
      verified: "sha256",
      attempts: f.attempts,
      startedAt: new Date(Date.now() - f.durationMs).toISOString(),
      finishedAt: now,
      event: "forwarded",
      forward: { instances: f.instances, confirmed: f.confirmed, durationMs: f.durationMs, pacs: f.pacs },
    };
    const receiptPath = join(dir, `${f.id}-forwarded.receipt.json`);
    await writeJsonAtomic(receiptPath, receipt);
    const r = await notifyReceipt(receiptPath, channels, { ...base, signal: ctx.signal }, (e) => ctx.reporter.emit(e));
    ctx.reporter.event(
      { event: "notified", id: f.id, result: "forwarded", sent: r.sent.length, pending: r.pending.length },
      `notified staff about package ${f.id} (forwarded): ${r.sent.length} sent${r.pending.length ? `, ${r.pending.length} pending (scanbridge notify --retry in ${dir})` : ""}`,
    );
  };
  return { onPackage, onForwarded };
}

/** `scanbridge watch` as the CLI runs it: with staff notifications when channels are configured. */
export async function runWatchWithNotifications(ctx: CommandContext<WatchCommandOptions>): Promise<CommandOutput> {
  const drop = ctx.args[0] ? localDropFor(ctx) : ctx.cwd;
  return runWatchCommand(ctx, await staffNotifier(ctx, stateFolderFor(ctx), drop));
}
