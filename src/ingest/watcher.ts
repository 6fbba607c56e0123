import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, stat } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { watch as chokidarWatch, type FSWatcher } from "chokidar";
import { errorCode, InterruptedError } from "../errors.js";
import { appendAudit } from "./ledger.js";
import { routePackage, type RoutingConfig } from "./routing.js";
import { enqueueForward, forwardOne, listForwardQueue, type ForwardOptions } from "../forward/queue.js";
import { Settler, isCandidateName } from "./settle.js";
import { hashFile } from "./sidecar.js";
import {
  archiveAndRelease,
  chooseReadyTarget,
  claimPackage,
  commitToReady,
  ensureDirs,
  ingestDirs,
  quarantinePackage,
  rollBack,
  sweepOrphanStaging,
  syncPath,
  takeOverStaleClaims,
  touchClaim,
  writeCommitState,
  type Claim,
  type ClaimState,
  type IngestDirs,
} from "./store.js";
import { verifyPackage, type PackageProblem, type PackageSummary, type VerifyLimits } from "./verify.js";

/** Options of runWatch (already validated by the command). */
export interface WatchOptions {
  drop: string;
  ready: string;
  archive?: string;
  quarantine?: string;
  settleSeconds: number;
  concurrency: number;
  /** Process what is there, then return (cron, tests). */
  once: boolean;
  allowUnsealed: boolean;
  limits: Partial<VerifyLimits>;
  /** Audit log; default `<drop>/audit.jsonl`. */
  auditFile?: string;
  /** Write patient (file) names into the audit log. Off by default. */
  auditNames: boolean;
  /** Safety-net rescan of the drop folder when no file-system event came. */
  rescanSeconds: number;
  /** Take (and quarantine) an unmarked file that is stable but never reads as a zip after this long. */
  giveUpSeconds: number;
  /** A claim whose owner's heartbeat is older than this is taken over (other hosts sharing the drop). */
  staleClaimSeconds: number;
  /** Use chokidar events (default true); the rescan alone still works without them. */
  useFsEvents?: boolean;
  /** Routing rules: when set, packages are filed under `ready/<route folder>/<Name>/`. */
  routing?: RoutingConfig;
  /** Forward every package filed in ready/ to a PACS over DICOMweb (queued in `<drop>/forward-queue/`). */
  forward?: ForwardOptions;
}

/** What happened to one package: handed to `onPackage` (the hook for staff notifications). PHI: `file`, `summary`. */
export interface PackageOutcome {
  result: "ready" | "quarantined";
  id: string;
  sha256: string;
  /** Package file name as delivered, e.g. "José Álvarez.zip" (PHI). */
  file: string;
  /** Folder in ready/ (PHI in the name). */
  readyPath?: string;
  /** With routing rules: the route taken (rule name or "default") and its folder under ready/. No PHI. */
  route?: { name: string; folder: string; reason: string };
  /** Quarantined zip and its reason file. */
  quarantinePath?: string;
  reasonPath?: string;
  problems: PackageProblem[];
  warnings: PackageProblem[];
  summary: PackageSummary;
  sealed: boolean;
  durationMs: number;
  /** Finished by crash recovery after a restart. */
  recovered?: boolean;
}

/** A package delivered to the PACS and confirmed by QIDO-RS: handed to `onForwarded`. PHI: `readyPath`. */
export interface ForwardedOutcome {
  id: string;
  sha256: string;
  /** Folder in ready/ (PHI in the name). */
  readyPath: string;
  instances: number;
  confirmed: number;
  durationMs: number;
  attempts: number;
  reconciled: boolean;
  /** The DICOMweb base URL the package went to, without credentials. */
  pacs: string;
}

/** Progress of the watch, for the reporter. `file` is PHI: the command shows it only with --verbose. */
export type WatchEvent =
  | { event: "started"; drop: string; recovered: number; requeued: number }
  | { event: "claimed"; file: string; why: string }
  | { event: "ready"; id: string; file: string; files: number; bytes: number; durationMs: number; sealed: boolean; recovered?: boolean; route?: string }
  | { event: "quarantined"; id: string; file: string; problems: string[]; durationMs: number }
  | { event: "requeued"; file: string; why: string }
  | { event: "error"; file?: string; code: string; message: string }
  | { event: "waiting"; file: string; why: string }
  | { event: "status"; ready: number; quarantined: number; inProgress: number; waiting: number }
  | { event: "forwarded"; id: string; instances: number; confirmed: number; durationMs: number; attempts: number }
  | { event: "forward-queued"; id: string; code: string; message: string; attempts: number; nextAttemptInMs: number }
  | { event: "stopped"; ready: number; quarantined: number };

/** Seams of runWatch. */
export interface WatchDeps {
  signal: AbortSignal;
  onEvent?: (e: WatchEvent) => void;
  /** Called after each package is filed in ready/ or quarantine/: wire staff notifications here. */
  onPackage?: (o: PackageOutcome) => void | Promise<void>;
  /** Called after each package is delivered to the PACS and confirmed: wire forward notifications here. */
  onForwarded?: (f: ForwardedOutcome) => void | Promise<void>;
  /** Called with the verified, extracted delivery before it is filed (the specialist's page goes in). Never fails a delivery. */
  beforeFiling?: (root: string, pkg: { id: string; sha256: string; sealed: boolean }) => Promise<void>;
  /** Called once a package is filed, before its claim is released; the record it returns is audited (watch --media). */
  afterFiling?: (readyPath: string, pkg: { id: string; sha256: string }) => Promise<{ event: string; [k: string]: unknown } | undefined>;
}

/** Totals of a watch run. */
export interface WatchSummary {
  ready: number;
  quarantined: number;
  requeued: number;
  errors: number;
  /** With forwarding: packages delivered to the PACS and confirmed in this run, and packages still queued. */
  forwarded?: number;
  forwardQueued?: number;
  /** Every outcome (only kept with `once`, so a long-running watch does not grow). */
  outcomes: PackageOutcome[];
}

const HEARTBEAT_MS = 10_000;
const IO_RETRY_MS = 60_000;

/**
 * Watch a drop folder: take complete packages, claim them atomically, verify and extract them into ready/,
 * archive or quarantine them, keep a chained audit log. Recovers what a crashed watcher left at start-up.
 * Returns when `once` has nothing left to do or when the signal aborts (the package in hand is rolled back).
 */
export async function runWatch(opts: WatchOptions, deps: WatchDeps): Promise<WatchSummary> {
  const dirs = ingestDirs(opts.drop, opts.ready, opts.archive, opts.quarantine);
  await ensureDirs(dirs);
  const auditFile = opts.auditFile ?? join(opts.drop, "audit.jsonl");
  const instance = randomBytes(8).toString("hex");
  const emit = deps.onEvent ?? (() => {});
  const summary: WatchSummary = { ready: 0, quarantined: 0, requeued: 0, errors: 0, outcomes: [] };
  const settler = new Settler(opts.drop, { settleMs: opts.settleSeconds * 1000, giveUpMs: opts.giveUpSeconds * 1000, signal: deps.signal });
  const inFlight = new Map<string, Promise<void>>();
  const retryAfter = new Map<string, number>();
  const skippedOnce = new Set<string>();
  const names = (file: string) => (opts.auditNames ? { file } : {});
  let wake: () => void = () => {};
  let waitingCount = 0;

  const audit = async (rec: { event: string; [k: string]: unknown }) => {
    try {
      await appendAudit(auditFile, { ...rec, host: hostname() });
    } catch (err) {
      emit({ event: "error", code: "AUDIT_WRITE_FAILED", message: `Cannot write the audit log: ${(err as Error).message}` });
    }
  };
  let lastStatus = "";
  const status = () => {
    const e = { event: "status" as const, ready: summary.ready, quarantined: summary.quarantined, inProgress: inFlight.size, waiting: waitingCount };
    const key = JSON.stringify(e);
    if (key !== lastStatus) emit(e);
    lastStatus = key;
  };
  // Error text can hold paths with patient names: the audit log gets them only with auditNames.
  const errorFields = (err: unknown) => ({ code: (err as { code?: string }).code ?? "ERROR", ...(opts.auditNames ? { reason: (err as Error).message } : {}) });
  const waitingReported = new Set<string>();
  const record = async (o: PackageOutcome) => {
    if (o.result === "ready") summary.ready++;
    else summary.quarantined++;
    if (opts.once) summary.outcomes.push(o);
    if (deps.onPackage) {
      try {
        await deps.onPackage(o);
      } catch (err) {
        emit({ event: "error", code: "ON_PACKAGE_FAILED", message: (err as Error).message });
      }
    }
  };

  // --- crash recovery -------------------------------------------------------------------------------------
  const recover = async (): Promise<{ recovered: number; requeued: number }> => {
    let recovered = 0;
    let requeued = 0;
    for (const { claim, state } of await takeOverStaleClaims(dirs, instance, opts.staleClaimSeconds * 1000)) {
      if (state?.phase === "committing") {
        await finishCommit(claim, state);
        recovered++;
      } else {
        await rollBack(dirs, claim);
        requeued++;
        summary.requeued++;
        emit({ event: "requeued", file: claim.file, why: "left unfinished by a stopped watcher" });
        await audit({ event: "requeued", reason: "recovered after crash", ...names(claim.file) });
      }
    }
    await sweepOrphanStaging(dirs, opts.staleClaimSeconds * 1000);
    return { recovered, requeued };
  };

  const finishCommit = async (claim: Claim, state: ClaimState) => {
    const t0 = Date.now();
    // The commit state always names where the folder goes; if `from` is gone, the rename happened.
    let readyPath = state.target;
    if (await stat(state.from).then(() => true, () => false)) readyPath = await commitToReady(dirs, claim, state);
    const sha256 = await hashFile(claim.zip).catch(() => "");
    const id = sha256.slice(0, 12);
    if (opts.forward && sha256) await enqueueForward(opts.drop, { id, sha256, readyPath });
    if (!(sha256 && (await auditHasReady(auditFile, sha256)))) await audit({ event: "ready", id, sha256, result: "ready", recovered: true, ...names(claim.file) });
    await archiveAndRelease(dirs, claim);
    emit({ event: "ready", id, file: claim.file, files: 0, bytes: 0, durationMs: Date.now() - t0, sealed: true, recovered: true });
    await record({ result: "ready", id, sha256, file: claim.file, readyPath, problems: [], warnings: [], summary: { files: 0, bytes: 0, compressedBytes: 0 }, sealed: true, durationMs: Date.now() - t0, recovered: true });
  };

  // --- one package ------------------------------------------------------------------------------------------
  const processOne = async (file: string, known: { sha256: string; size: number; mtimeMs: number } | undefined, why: string) => {
    const t0 = Date.now();
    let claim: Claim | undefined;
    try {
      claim = await claimPackage(dirs, file, instance);
    } catch (err) {
      summary.errors++;
      retryAfter.set(file, Date.now() + IO_RETRY_MS);
      emit({ event: "error", file, code: (err as { code?: string }).code ?? "CLAIM_FAILED", message: `Cannot claim: ${(err as Error).message}` });
      return;
    }
    if (!claim) return; // another watcher was faster
    emit({ event: "claimed", file, why });
    await audit({ event: "claimed", ...(known ? { id: known.sha256.slice(0, 12), sha256: known.sha256 } : {}), why, ...names(file) });
    const held = claim;
    const heartbeat = setInterval(() => void touchClaim(held), HEARTBEAT_MS);
    heartbeat.unref();
    const ac = new AbortController();
    const onAbort = () => ac.abort(new InterruptedError());
    deps.signal.addEventListener("abort", onAbort, { once: true });
    try {
      await mkdir(claim.staging, { recursive: true });
      let r;
      try {
        r = await verifyPackage(claim.zip, {
          allowUnsealed: opts.allowUnsealed,
          limits: opts.limits,
          sidecarPath: claim.marker ?? join(claim.dir, `${file}.sha256`),
          extractTo: claim.staging,
          knownSha256: known,
          signal: ac.signal,
        });
      } catch (err) {
        await rollBack(dirs, claim);
        if (err instanceof InterruptedError || ac.signal.aborted) {
          summary.requeued++;
          emit({ event: "requeued", file, why: "watch stopping" });
          await audit({ event: "requeued", reason: "stopped", ...names(file) });
        } else {
          summary.errors++;
          retryAfter.set(file, Date.now() + IO_RETRY_MS);
          emit({ event: "error", file, code: (err as { code?: string }).code ?? "IO_ERROR", message: `Put back in the queue, retry in ${IO_RETRY_MS / 1000}s: ${(err as Error).message}` });
          await audit({ event: "error", ...errorFields(err), ...names(file) });
        }
        return;
      }
      // From here on the package is finished, not abandoned, even when asked to stop.
      if (!r.ok || !r.extracted) {
        const reason = {
          format: "scanbridge-quarantine-reason",
          formatVersion: 1,
          time: new Date().toISOString(),
          id: r.id,
          sha256: r.sha256,
          sealed: r.sealed,
          sidecar: r.sidecar,
          problems: r.problems,
          warnings: r.warnings,
        };
        const q = await quarantinePackage(dirs, claim, reason);
        const durationMs = Date.now() - t0;
        emit({ event: "quarantined", id: r.id, file, problems: r.problems.map((p) => p.code), durationMs });
        await audit({ event: "quarantined", id: r.id, sha256: r.sha256, result: "quarantined", problems: r.problems.map((p) => p.code), files: r.summary.files, bytes: r.summary.bytes, durationMs, ...names(file) });
        await record({ result: "quarantined", id: r.id, sha256: r.sha256, file, quarantinePath: q, reasonPath: q.replace(/\.zip$/i, "") + ".reason.json", problems: r.problems, warnings: r.warnings, summary: r.summary, sealed: r.sealed, durationMs });
        return;
      }
      if (deps.beforeFiling) {
        await deps.beforeFiling(r.extracted.root, { id: r.id, sha256: r.sha256, sealed: r.sealed }).catch((err: Error) => emit({ event: "error", code: (err as { code?: string }).code ?? "PAGE_FAILED", message: `Page not written: ${err.message}` }));
      }
      // Durable before visible: files were flushed as written; now their folders, then the commit record.
      for (const d of r.extracted.dirs) await syncPath(d);
      await syncPath(claim.staging);
      // With routing rules the package is filed in its route's folder: ready/<route folder>/<Name>/.
      const decision = opts.routing ? await routePackage(r.extracted.root, opts.routing) : undefined;
      const route = decision ? { name: decision.route, folder: decision.folder, reason: decision.reason } : undefined;
      const readyDir = route ? join(dirs.ready, route.folder) : dirs.ready;
      if (route) {
        await mkdir(readyDir, { recursive: true });
        await syncPath(dirs.ready);
      }
      const state: ClaimState = { phase: "committing", from: r.extracted.root, target: await chooseReadyTarget({ ...dirs, ready: readyDir }, r.summary.root!) };
      await writeCommitState(claim, state);
      const readyPath = await commitToReady(dirs, claim, state);
      // Queued before the claim is released: a crash here is finished by recovery, which queues it too.
      if (opts.forward) await enqueueForward(opts.drop, { id: r.id, sha256: r.sha256, readyPath });
      const durationMs = Date.now() - t0;
      // Audited while the claim still exists: a crash after this line is finished by recovery, which sees the
      // record and does not write a second one; a crash before it is audited by recovery.
      await audit({ event: "ready", id: r.id, sha256: r.sha256, result: "ready", sealed: r.sealed, files: r.summary.files, bytes: r.summary.bytes, durationMs, ...(route ? { route: route.name, routeFolder: route.folder } : {}), ...names(file) });
      const filed = await deps.afterFiling?.(readyPath, { id: r.id, sha256: r.sha256 }).catch((err: Error) => ({ event: "media", id: r.id, result: "failed", code: (err as { code?: string }).code ?? "MEDIA_FAILED" }));
      if (filed) await audit(filed);
      await archiveAndRelease(dirs, claim);
      emit({ event: "ready", id: r.id, file, files: r.summary.files, bytes: r.summary.bytes, durationMs, sealed: r.sealed, ...(route ? { route: route.name } : {}) });
      await record({ result: "ready", id: r.id, sha256: r.sha256, file, readyPath, ...(route ? { route } : {}), problems: [], warnings: r.warnings, summary: r.summary, sealed: r.sealed, durationMs });
    } catch (err) {
      summary.errors++;
      retryAfter.set(file, Date.now() + IO_RETRY_MS);
      emit({ event: "error", file, code: (err as { code?: string }).code ?? "IO_ERROR", message: (err as Error).message });
      // Before the commit record, putting it back in the queue is always right; after it, recovery at the
      // next start-up finishes the commit (it knows how far we got), so the claim is left as it is.
      const committing = await stat(join(claim.dir, "state.json")).then(() => true, () => false);
      if (!committing) await rollBack(dirs, claim).catch(() => {});
    } finally {
      clearInterval(heartbeat);
      deps.signal.removeEventListener("abort", onAbort);
    }
  };

  // --- forwarding to a PACS ---------------------------------------------------------------------------------
  let forwarding: Promise<void> | undefined;
  if (opts.forward) Object.assign(summary, { forwarded: 0, forwardQueued: 0 });
  /** Try every queued package that is due, one at a time; a PACS that is down leaves them queued. */
  const forwardDue = async () => {
    const fwd = opts.forward!;
    for (const entry of await listForwardQueue(opts.drop, true)) {
      if (deps.signal.aborted) return;
      let a;
      try {
        a = await forwardOne(opts.drop, entry, fwd, deps.signal);
      } catch (err) {
        if (deps.signal.aborted) return;
        emit({ event: "error", code: errorCode(err, "FORWARD_FAILED"), message: `Forwarding failed: ${(err as Error).message}` });
        continue;
      }
      if (a.result === "delivered") {
        summary.forwarded!++;
        emit({ event: "forwarded", id: a.id, instances: a.instances, confirmed: a.confirmed, durationMs: a.durationMs, attempts: a.attempts });
        await audit({ event: "forwarded", id: a.id, result: "delivered", instances: a.instances, confirmed: a.confirmed, requests: a.requests, attempts: a.attempts, durationMs: a.durationMs });
        if (deps.onForwarded) {
          try {
            await deps.onForwarded({ id: a.id, sha256: entry.sha256, readyPath: entry.readyPath, instances: a.instances, confirmed: a.confirmed, durationMs: a.durationMs, attempts: a.attempts, reconciled: a.reconciled, pacs: urlWithoutCredentials(fwd.target.url) });
          } catch (err) {
            emit({ event: "error", code: "ON_FORWARDED_FAILED", message: (err as Error).message });
          }
        }
      } else if (a.result === "queued") {
        emit({ event: "forward-queued", id: a.id, code: a.code, message: a.message, attempts: a.attempts, nextAttemptInMs: a.nextAttemptInMs });
        await audit({ event: "forward-queued", id: a.id, result: "queued", code: a.code, attempts: a.attempts, durationMs: a.durationMs });
        // A fatal failure (the PACS refuses our login) would meet every other package too: leave them queued.
        if (a.retryClass === "fatal") break;
      } else {
        emit({ event: "error", code: "FORWARD_SKIPPED", message: `Package ${a.id} not forwarded: ${a.why}` });
        await audit({ event: "forward-skipped", id: a.id, result: "skipped", reason: a.why });
      }
    }
  };
  const startForwarding = () => {
    if (!opts.forward || forwarding) return;
    forwarding = forwardDue()
      .catch((err: Error) => emit({ event: "error", code: "FORWARD_FAILED", message: `Forwarding failed: ${err.message}` }))
      .finally(() => {
      forwarding = undefined;
      wake();
    });
  };
  const nextForwardDelay = async (): Promise<number | undefined> => {
    // While a forwarding run is under way, its end wakes the loop.
    if (!opts.forward || forwarding) return undefined;
    const queued = await listForwardQueue(opts.drop);
    if (queued.length === 0) return undefined;
    return Math.max(250, Math.min(...queued.map((e) => e.nextAttemptAt)) - Date.now());
  };

  // --- the loop ---------------------------------------------------------------------------------------------
  const start = await recover();
  emit({ event: "started", drop: opts.drop, recovered: start.recovered, requeued: start.requeued });
  await audit({ event: "watch-started", recovered: start.recovered, requeued: start.requeued });

  let fsw: FSWatcher | undefined;
  if (!opts.once && opts.useFsEvents !== false) {
    fsw = chokidarWatch(opts.drop, { depth: 0, ignoreInitial: true, persistent: true });
    fsw.on("all", () => wake());
    fsw.on("error", () => {});
  }
  let lastRecovery = Date.now();
  const aborted = new Promise<void>((res) => {
    if (deps.signal.aborted) res();
    deps.signal.addEventListener("abort", () => res(), { once: true });
  });
  try {
    while (!deps.signal.aborted) {
      const wakeP = new Promise<void>((res) => (wake = res));
      let pending = false;
      waitingCount = 0;
      let entries: string[] = [];
      try {
        entries = (await readdir(opts.drop)).filter(isCandidateName).sort();
      } catch (err) {
        emit({ event: "error", code: "DROP_UNREADABLE", message: (err as Error).message });
      }
      settler.retain(new Set(entries));
      for (const file of entries) {
        if (deps.signal.aborted) break;
        if (inFlight.has(file) || skippedOnce.has(file)) continue;
        const retry = retryAfter.get(file);
        if (retry !== undefined && retry > Date.now()) {
          if (!opts.once) pending = true;
          continue;
        }
        if (inFlight.size >= opts.concurrency) {
          pending = true;
          break;
        }
        let v;
        try {
          v = await settler.assess(file);
        } catch (err) {
          if (deps.signal.aborted) break;
          emit({ event: "error", file, code: "ASSESS_FAILED", message: (err as Error).message });
          continue;
        }
        if (v.kind === "claim") {
          const p = processOne(file, v.known, v.why).catch((err: Error) => emit({ event: "error", file, code: "UNEXPECTED", message: err.message })).finally(() => {
            inFlight.delete(file);
            status();
            wake();
          });
          inFlight.set(file, p);
        } else if (v.kind === "wait") {
          waitingCount++;
          // --once takes what is complete now: a file still being written, or unreadable, is left for next time.
          if (opts.once && (settler.changes(file) > 0 || v.why === "unreadable" || v.why === "changing")) {
            skippedOnce.add(file);
            emit({ event: "waiting", file, why: `${v.why}; left for the next run` });
          } else {
            pending = true;
            // Tell staff once when a file looks stuck (stable but unreadable, or its marker disagrees).
            if ((v.why === "unreadable" || v.why === "marker-mismatch") && !waitingReported.has(`${file}\0${v.why}`)) {
              waitingReported.add(`${file}\0${v.why}`);
              emit({ event: "waiting", file, why: v.why === "unreadable" ? "stable but not a readable zip yet" : "marker does not match (yet)" });
            }
          }
        }
      }
      status();
      if (!opts.once) startForwarding();
      if (opts.once && !pending && inFlight.size === 0) break;
      if (!opts.once && Date.now() - lastRecovery > opts.staleClaimSeconds * 500) {
        lastRecovery = Date.now();
        await recover();
      }
      const forwardDelay = await nextForwardDelay();
      const delay = Math.min(pending ? 250 : opts.rescanSeconds * 1000, forwardDelay ?? Infinity);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        wakeP,
        new Promise<void>((res) => {
          timer = setTimeout(res, delay);
        }),
        aborted,
      ]);
      clearTimeout(timer);
    }
    // --once: every package filed now gets one forwarding attempt (with in-request retries); what fails stays queued.
    if (opts.forward && opts.once && !deps.signal.aborted) {
      await forwarding;
      await forwardDue();
    }
  } finally {
    await fsw?.close();
    await Promise.allSettled([...inFlight.values()]);
    await forwarding?.catch(() => {});
    if (opts.forward) summary.forwardQueued = (await listForwardQueue(opts.drop).catch(() => [])).length;
    emit({ event: "stopped", ready: summary.ready, quarantined: summary.quarantined });
    await audit({ event: "watch-stopped", ready: summary.ready, quarantined: summary.quarantined });
  }
  return summary;
}

/** Exported for tests: the folders a watch uses for a drop folder. */
export function watchDirs(drop: string, ready: string, archive?: string, quarantine?: string): IngestDirs {
  return ingestDirs(drop, ready, archive, quarantine);
}

/** A URL without user name, password, query or fragment (for notifications and logs). */
function urlWithoutCredentials(raw: string): string {
  try {
    const u = new URL(raw);
    u.username = "";
    u.password = "";
    u.search = "";
    u.hash = "";
    return u.href.replace(/\/$/, "");
  } catch {
    return raw.replace(/\/\/[^@/]*@/, "//");
  }
}

/** Whether the audit log's recent records already hold a "ready" record for this package (read from its tail). */
async function auditHasReady(file: string, sha256: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(file, "r");
  } catch {
    return false;
  }
  try {
    const { size } = await fh.stat();
    const length = Math.min(size, 1 << 20);
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, size - length);
    return buf.toString("utf8").split("\n").some((line) => {
      try {
        const r = JSON.parse(line) as { event?: string; sha256?: string };
        return r.event === "ready" && r.sha256 === sha256;
      } catch {
        return false; // the first, cut line of the tail, or a torn last line
      }
    });
  } finally {
    await fh.close();
  }
}
