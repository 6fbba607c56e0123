import { randomBytes } from "node:crypto";
import { open, readdir, stat } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import type { FSWatcher } from "chokidar";
import { errorCode, InterruptedError } from "../errors.js";
import { appendAudit, auditLogIn, type AuditLog } from "./ledger.js";
import type { RoutingConfig } from "./routing.js";
import type { ForwardAttempt, ForwardEntry, ForwardOptions, KnownInstance } from "../forward/queue.js";
import { Settler, isCandidateName, type Readiness } from "./settle.js";
import { hashFile } from "./sidecar.js";
import { isSha256Hex } from "../util/hash.js";
import { OWNER_ONLY, defaultStateDir, isControlFileName, legacyStateIn, makeTreePrivate, mkdirPrivate, openStateDir, type PrivateModes, type StateDirs } from "./state.js";
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
import { forEachConcurrent } from "../util/concurrency.js";
import { READY_PAGE_NAMES } from "../media/plan.js";
import { type PackageProblem, type PackageSummary, type VerifyLimits, type VerifyResult } from "./verify.js";
import type { IntakeResult } from "./intake.js";
import { intakeRecord, relativeReady, type IntakeFields } from "./intake-report.js";
import type { NameEncoding } from "./names.js";

/** Options of runWatch (already validated by the command). */
export interface WatchOptions {
  drop: string;
  ready: string;
  /** The watcher's own state folder (claims, queue, outboxes, receipts, locks, keyed audit log), outside the drop; default `scanbridge-state` beside ready/. */
  state?: string;
  /** File and folder modes (and staff group) for everything holding patient data; default owner-only (0600/0700). */
  modes?: PrivateModes;
  archive?: string;
  quarantine?: string;
  settleSeconds: number;
  concurrency: number;
  /** Process what is there, then return (cron, tests). */
  once: boolean;
  allowUnsealed: boolean;
  limits: Partial<VerifyLimits>;
  /** Code pages to try first for legacy zip names (`--zip-encodings`). */
  zipEncodings?: string[];
  /** Audit log; default `<state>/audit.jsonl` (its HMAC key and head checkpoint are always in the state folder). */
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
  /** Forward every package filed in ready/ to a PACS over DICOMweb (queued in `<state>/forward-queue/`). */
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
  /** The same, relative to --ready (PHI in the name). */
  readyRel?: string;
  /** For a hand-made package: what intake did (PHI: patient table, names). */
  intake?: IntakeResult;
  /** How the zip's entry names were decoded. */
  nameEncoding?: NameEncoding;
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
  | ({ event: "ready"; id: string; file: string; files: number; bytes: number; durationMs: number; sealed: boolean; recovered?: boolean; route?: string; readyRel?: string } & Partial<IntakeFields>)
  | ({ event: "quarantined"; id: string; file: string; problems: string[]; durationMs: number; sealed?: boolean } & Partial<IntakeFields>)
  | { event: "requeued"; file: string; why: string }
  | { event: "error"; file?: string; code: string; message: string }
  | { event: "waiting"; file: string; why: string }
  | { event: "ignored"; file: string; why: string }
  | { event: "warning"; code: string; message: string }
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
  beforeFiling?: (root: string, pkg: { id: string; sha256: string; sealed: boolean }) => Promise<{ instances?: KnownInstance[] } | void>;
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

/** The forward queue and the routing rules are loaded only by a watch that forwards or routes. */
const forwardQueue = () => import("../forward/queue.js");

const HEARTBEAT_MS = 10_000;
const IO_RETRY_MS = 60_000;

/** Everything a running watch knows, in one place: the named steps below read and change it. */
interface WatchState {
  opts: WatchOptions;
  deps: WatchDeps;
  dirs: IngestDirs;
  state: StateDirs;
  audit: AuditLog;
  /** Random per watch process, to tell our own claims from a dead process that had our pid. */
  instance: string;
  emit: (e: WatchEvent) => void;
  summary: WatchSummary;
  settler: Settler;
  /** Packages being processed now, by drop-folder name. */
  inFlight: Map<string, Promise<void>>;
  /** Names not to look at again before this time (an I/O error, a file that changed while taken). */
  retryAfter: Map<string, number>;
  /** --once: names left for the next run. */
  skippedOnce: Set<string>;
  /** "name\0why" already reported (waiting, ignored), so a stuck file is reported once, not every pass. */
  reported: Set<string>;
  waiting: number;
  lastStatus: string;
  forwarding: Promise<void> | undefined;
  /** With forwarding: the DICOM instances the page read in each filed package (by package id), handed to its forward. */
  known: Map<string, Map<string, KnownInstance>>;
  /** Wakes the main loop early (a package finished, a file-system event). */
  wake: () => void;
  /** Verification and intake (with the DICOM reader): loaded while the state folder is opened and the first package taken. */
  intake: Promise<typeof import("./intake.js")>;
}

/**
 * Watch a drop folder: take complete packages (one atomic rename into the state folder, then a private copy),
 * verify and extract them into ready/, archive or quarantine them, keep a keyed audit log, forward to a PACS.
 * The drop folder is read for packages only; all state lives in `opts.state`. Recovers what a crashed watcher
 * left at start-up. Returns when `once` has nothing left to do or when the signal aborts (the package in hand
 * is rolled back).
 */
export async function runWatch(opts: WatchOptions, deps: WatchDeps): Promise<WatchSummary> {
  // Loading the intake code overlaps opening the state folder and taking the first package (renames, the private
  // copy and their fsyncs mostly wait on the disk), instead of coming before them.
  const intake = import("./intake.js");
  intake.catch(() => {}); // awaited where it is used
  const ws = await openWatch(opts, deps, intake);
  const start = await recover(ws);
  ws.emit({ event: "started", drop: opts.drop, recovered: start.recovered, requeued: start.requeued });
  // Appends are written in the order they are made (one queue per log), each synced before the next; a record
  // that only says what is starting is not waited for. Every record that says where a package went ("ready",
  // "quarantined", "requeued") is waited for, and so is "watch-stopped", behind which all earlier ones are on disk.
  void audit(ws, { event: "watch-started", recovered: start.recovered, requeued: start.requeued });
  let fsw: FSWatcher | undefined;
  if (!opts.once && opts.useFsEvents !== false) {
    // Loaded only for a long-running watch: `--once` never listens for events.
    const { watch: chokidarWatch } = await import("chokidar");
    fsw = chokidarWatch(opts.drop, { depth: 0, ignoreInitial: true, persistent: true, followSymlinks: false });
    fsw.on("all", () => ws.wake());
    fsw.on("error", () => {});
  }
  const aborted = new Promise<void>((res) => {
    if (deps.signal.aborted) res();
    deps.signal.addEventListener("abort", () => res(), { once: true });
  });
  let lastRecovery = Date.now();
  try {
    while (!deps.signal.aborted) {
      const wakeP = new Promise<void>((res) => (ws.wake = res));
      const pending = await scanDrop(ws);
      status(ws);
      if (!opts.once) startForwarding(ws);
      if (opts.once && !pending && ws.inFlight.size === 0) break;
      if (!opts.once && Date.now() - lastRecovery > opts.staleClaimSeconds * 500) {
        lastRecovery = Date.now();
        await recover(ws);
      }
      const forwardDelay = await nextForwardDelay(ws);
      const delay = Math.min(pending ? 250 : opts.rescanSeconds * 1000, forwardDelay ?? Infinity);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([wakeP, new Promise<void>((res) => (timer = setTimeout(res, delay))), aborted]);
      clearTimeout(timer);
    }
    // --once: every package filed now gets one forwarding attempt (with in-request retries); what fails stays queued.
    if (opts.forward && opts.once && !deps.signal.aborted) {
      await ws.forwarding;
      await forwardDue(ws);
    }
  } finally {
    await fsw?.close();
    await Promise.allSettled([...ws.inFlight.values()]);
    await ws.forwarding?.catch(() => {});
    if (opts.forward) ws.summary.forwardQueued = (await (await forwardQueue()).listForwardQueue(ws.state.root).catch(() => [])).length;
    ws.emit({ event: "stopped", ready: ws.summary.ready, quarantined: ws.summary.quarantined });
    await audit(ws, { event: "watch-stopped", ready: ws.summary.ready, quarantined: ws.summary.quarantined });
  }
  return ws.summary;
}

/** Open the state folder (refused when unsafe), create the folders, and say what an older version left in the drop. */
async function openWatch(opts: WatchOptions, deps: WatchDeps, intake: WatchState["intake"]): Promise<WatchState> {
  const modes = opts.modes ?? OWNER_ONLY;
  const state = await openStateDir(opts.state ?? defaultStateDir(opts.ready), modes);
  const dirs = ingestDirs(opts.drop, opts.ready, state, modes, opts.archive, opts.quarantine);
  await ensureDirs(dirs);
  const emit = deps.onEvent ?? (() => {});
  const ws: WatchState = {
    opts,
    deps,
    dirs,
    state,
    audit: auditLogIn(state.root, opts.auditFile),
    instance: randomBytes(8).toString("hex"),
    emit,
    summary: { ready: 0, quarantined: 0, requeued: 0, errors: 0, outcomes: [], ...(opts.forward ? { forwarded: 0, forwardQueued: 0 } : {}) },
    settler: new Settler(opts.drop, { settleMs: opts.settleSeconds * 1000, giveUpMs: opts.giveUpSeconds * 1000, signal: deps.signal }),
    inFlight: new Map(),
    retryAfter: new Map(),
    skippedOnce: new Set(),
    reported: new Set(),
    waiting: 0,
    lastStatus: "",
    forwarding: undefined,
    known: new Map(),
    wake: () => {},
    intake,
  };
  const legacy = await legacyStateIn(opts.drop, state);
  if (legacy.found.length > 0) {
    emit({
      event: "warning",
      code: "LEGACY_STATE_IN_DROP",
      message: `The drop folder holds state of an older scanbridge (${legacy.found.join(", ")}); it is ignored, never used. Move it:\n${legacy.commands.join("\n")}`,
    });
  }
  return ws;
}

/** Append to the audit log; a failure is reported, never fatal. */
async function audit(ws: WatchState, rec: { event: string; [k: string]: unknown }): Promise<void> {
  try {
    await appendAudit(ws.audit, { ...rec, host: hostname() });
  } catch (err) {
    ws.emit({ event: "error", code: (err as { code?: string }).code ?? "AUDIT_WRITE_FAILED", message: `Cannot write the audit log: ${(err as Error).message}` });
  }
}

/** Patient (file) names go into the audit log only with auditNames. */
const names = (ws: WatchState, file: string) => (ws.opts.auditNames ? { file } : {});

/** Error text can hold paths with patient names: the audit log gets them only with auditNames. */
const errorFields = (ws: WatchState, err: unknown) => ({ code: (err as { code?: string }).code ?? "ERROR", ...(ws.opts.auditNames ? { reason: (err as Error).message } : {}) });

function status(ws: WatchState): void {
  const e = { event: "status" as const, ready: ws.summary.ready, quarantined: ws.summary.quarantined, inProgress: ws.inFlight.size, waiting: ws.waiting };
  const key = JSON.stringify(e);
  if (key !== ws.lastStatus) ws.emit(e);
  ws.lastStatus = key;
}

/** Count an outcome and hand it to the onPackage hook (staff notifications). */
async function record(ws: WatchState, o: PackageOutcome): Promise<void> {
  if (o.result === "ready") ws.summary.ready++;
  else ws.summary.quarantined++;
  if (ws.opts.once) ws.summary.outcomes.push(o);
  if (!ws.deps.onPackage) return;
  try {
    await ws.deps.onPackage(o);
  } catch (err) {
    ws.emit({ event: "error", code: "ON_PACKAGE_FAILED", message: (err as Error).message });
  }
}

// --- step 1: recover what a stopped watcher left (proof from the state folder only) ------------------------

async function recover(ws: WatchState): Promise<{ recovered: number; requeued: number }> {
  let recovered = 0;
  let requeued = 0;
  for (const { claim, state } of await takeOverStaleClaims(ws.dirs, ws.instance, ws.opts.staleClaimSeconds * 1000)) {
    if (state?.phase === "committing") {
      await finishCommit(ws, claim, state);
      recovered++;
    } else {
      await rollBack(ws.dirs, claim);
      requeued++;
      ws.summary.requeued++;
      ws.emit({ event: "requeued", file: claim.file, why: "left unfinished by a stopped watcher" });
      await audit(ws, { event: "requeued", reason: "recovered after crash", ...names(ws, claim.file) });
    }
  }
  await sweepOrphanStaging(ws.dirs, ws.opts.staleClaimSeconds * 1000);
  return { recovered, requeued };
}

async function finishCommit(ws: WatchState, claim: Claim, state: ClaimState): Promise<void> {
  const t0 = Date.now();
  // The commit state always names where the folder goes; if `from` is gone, the rename happened.
  let readyPath = state.target;
  if (await stat(state.from).then(() => true, () => false)) readyPath = await commitToReady(ws.dirs, claim, state);
  // From the commit record: the claim's zip may already be in archive/ (a crash after archiving it, before the claim
  // was released), and then only the recorded hash finds the "ready" record already written.
  const sha256 = isSha256Hex(state.sha256) ? state.sha256 : await hashFile(claim.zip).catch(() => "");
  const id = sha256.slice(0, 12);
  if (ws.opts.forward && sha256) await (await forwardQueue()).enqueueForward(ws.state.root, { id, sha256, readyPath });
  if (!(sha256 && (await auditHasReady(ws.audit.file, sha256)))) await audit(ws, { event: "ready", id, sha256, result: "ready", recovered: true, ...names(ws, claim.file) });
  await archiveAndRelease(ws.dirs, claim);
  ws.emit({ event: "ready", id, file: claim.file, files: 0, bytes: 0, durationMs: Date.now() - t0, sealed: true, recovered: true });
  await record(ws, { result: "ready", id, sha256, file: claim.file, readyPath, problems: [], warnings: [], summary: { files: 0, bytes: 0, compressedBytes: 0 }, sealed: true, durationMs: Date.now() - t0, recovered: true });
}

// --- step 2: look at the drop folder, take what is complete ------------------------------------------------

/** One pass over the drop folder; returns whether something is still pending (look again soon). */
async function scanDrop(ws: WatchState): Promise<boolean> {
  const { opts, deps } = ws;
  let pending = false;
  ws.waiting = 0;
  let entries: string[] = [];
  try {
    entries = (await readdir(opts.drop)).filter(isCandidateName).sort();
  } catch (err) {
    ws.emit({ event: "error", code: "DROP_UNREADABLE", message: (err as Error).message });
  }
  ws.settler.retain(new Set(entries));
  for (const file of entries) {
    if (deps.signal.aborted) break;
    if (ws.inFlight.has(file) || ws.skippedOnce.has(file)) continue;
    const retry = ws.retryAfter.get(file);
    if (retry !== undefined && retry > Date.now()) {
      if (!opts.once) pending = true;
      continue;
    }
    if (ws.inFlight.size >= opts.concurrency) {
      pending = true;
      break;
    }
    let v: Readiness;
    try {
      v = await ws.settler.assess(file);
    } catch (err) {
      if (deps.signal.aborted) break;
      ws.emit({ event: "error", file, code: "ASSESS_FAILED", message: (err as Error).message });
      continue;
    }
    if (v.kind === "claim") {
      const p = takeOne(ws, file, v.known, v.why)
        .catch((err: Error) => ws.emit({ event: "error", file, code: "UNEXPECTED", message: err.message }))
        .finally(() => {
          ws.inFlight.delete(file);
          status(ws);
          ws.wake();
        });
      ws.inFlight.set(file, p);
    } else if (v.kind === "ignored") {
      reportOnce(ws, file, v.why, () => ws.emit({ event: "ignored", file, why: v.why }));
    } else if (v.kind === "wait") {
      ws.waiting++;
      // --once takes what is complete now: a file still being written, or unreadable, is left for next time.
      if (opts.once && (ws.settler.changes(file) > 0 || v.why === "unreadable" || v.why === "changing")) {
        ws.skippedOnce.add(file);
        ws.emit({ event: "waiting", file, why: `${v.why}; left for the next run` });
      } else {
        pending = true;
        // Tell staff once when a file looks stuck (stable but unreadable, or its marker disagrees).
        if (v.why === "unreadable" || v.why === "marker-mismatch") {
          reportOnce(ws, file, v.why, () => ws.emit({ event: "waiting", file, why: v.why === "unreadable" ? "stable but not a readable zip yet" : "marker does not match (yet)" }));
        }
      }
    }
  }
  return pending;
}

function reportOnce(ws: WatchState, file: string, why: string, report: () => void): void {
  const key = `${file}\0${why}`;
  if (ws.reported.has(key)) return;
  ws.reported.add(key);
  report();
}

/** Take one package out of the drop (atomic rename + private copy), then process it. */
async function takeOne(ws: WatchState, file: string, known: { sha256: string; size: number; mtimeMs: number } | undefined, why: string): Promise<void> {
  const t0 = Date.now();
  let claim: Claim;
  try {
    const c = await claimPackage(ws.dirs, file, ws.instance, ws.deps.signal);
    if (c.kind === "gone") return; // another watcher was faster
    if (c.kind === "refused") {
      reportOnce(ws, file, c.code, () => ws.emit({ event: "ignored", file, why: c.reason }));
      return;
    }
    claim = c.claim;
  } catch (err) {
    if (err instanceof InterruptedError || ws.deps.signal.aborted) return;
    ws.summary.errors++;
    ws.retryAfter.set(file, Date.now() + IO_RETRY_MS);
    ws.emit({ event: "error", file, code: (err as { code?: string }).code ?? "CLAIM_FAILED", message: `Cannot claim: ${(err as Error).message}` });
    return;
  }
  ws.emit({ event: "claimed", file, why });
  void audit(ws, { event: "claimed", id: claim.sha256!.slice(0, 12), sha256: claim.sha256, why, ...names(ws, file) });
  // A file that changed after it settled (marker-checked hash differs from the bytes taken) is not processed
  // under the earlier hash: it goes back to settle again.
  if (known && known.sha256 !== claim.sha256) {
    await rollBack(ws.dirs, claim);
    ws.summary.requeued++;
    ws.retryAfter.set(file, Date.now() + ws.opts.settleSeconds * 1000);
    ws.emit({ event: "requeued", file, why: "changed after it settled; taken again when it settles" });
    await audit(ws, { event: "requeued", reason: "changed after settling", ...names(ws, file) });
    return;
  }
  const heartbeat = setInterval(() => void touchClaim(claim), HEARTBEAT_MS);
  heartbeat.unref();
  try {
    await processOne(ws, claim, t0);
  } finally {
    clearInterval(heartbeat);
  }
}

// --- step 3: verify, extract, file (or quarantine) one claimed package -------------------------------------

async function processOne(ws: WatchState, claim: Claim, t0: number): Promise<void> {
  const { opts, dirs } = ws;
  const file = claim.file;
  const ac = new AbortController();
  const onAbort = () => ac.abort(new InterruptedError());
  ws.deps.signal.addEventListener("abort", onAbort, { once: true });
  try {
    await mkdirPrivate(claim.staging, { file: 0o600, dir: 0o700 });
    const { planReady, verifyUpload } = await ws.intake;
    let r;
    try {
      // The private copy is verified: nobody else can write it, so what is verified is what is archived.
      r = await verifyUpload(claim.zip, {
        uploadName: file,
        zipEncodings: opts.zipEncodings,
        allowUnsealed: opts.allowUnsealed,
        limits: opts.limits,
        sidecarPath: claim.marker ?? join(claim.dir, "no-marker.sha256"),
        extractTo: claim.staging,
        knownSha256: claim.sha256 ? { sha256: claim.sha256, size: claim.size!, mtimeMs: claim.mtimeMs! } : undefined,
        signal: ac.signal,
      });
    } catch (err) {
      await rollBack(dirs, claim);
      if (err instanceof InterruptedError || ac.signal.aborted) {
        ws.summary.requeued++;
        ws.emit({ event: "requeued", file, why: "watch stopping" });
        await audit(ws, { event: "requeued", reason: "stopped", ...names(ws, file) });
      } else {
        ws.summary.errors++;
        ws.retryAfter.set(file, Date.now() + IO_RETRY_MS);
        ws.emit({ event: "error", file, code: (err as { code?: string }).code ?? "IO_ERROR", message: `Put back in the queue, retry in ${IO_RETRY_MS / 1000}s: ${(err as Error).message}` });
        await audit(ws, { event: "error", ...errorFields(ws, err), ...names(ws, file) });
      }
      return;
    }
    // From here on the package is finished, not abandoned, even when asked to stop.
    let problems = r.problems;
    let seenPrivate: string[] = [];
    if (r.ok && r.extracted) {
      // Private modes before anything is visible in ready/; a package carrying scanbridge control files is refused.
      const seen = await makeTreePrivate(r.extracted.root, dirs.modes);
      seenPrivate = seen;
      const control = seen.filter((p) => isControlFileName(p.split("/").at(-1)!));
      if (control.length > 0) {
        problems = [{ code: "CONTROL_FILE", message: `The package carries scanbridge control files (${control.length}); settings never come from a package`, entry: control[0]!.replace(/^[^/]+/, "<root>") }];
      }
    }
    // A hand-made package is turned into one patient folder (junk, programs, archives inside, identity).
    const plan = problems.length === 0 && r.extracted ? await planReady(r, { uploadName: file, limits: opts.limits, zipEncodings: opts.zipEncodings, signal: ac.signal }) : undefined;
    if (plan && !plan.ok) problems = plan.problems;
    if (problems.length > 0 || !r.extracted || !plan?.ok) {
      await quarantine(ws, claim, { ...r, problems, ok: false }, t0);
      return;
    }
    // What intake wrote and unpacked; a sealed package's tree was made private above.
    const privateSeen = plan.intake ? await makeTreePrivate(plan.from, dirs.modes) : seenPrivate;
    // The page hook (re)writes index.html and index_files/: those always get their modes again.
    const untouched = new Set(privateSeen.filter((p) => !READY_PAGE_NAMES.has(p.split("/")[0]!)));
    await commit(ws, claim, r, { ...r.extracted, root: plan.from }, t0, plan.name, plan.intake, untouched);
  } catch (err) {
    ws.summary.errors++;
    ws.retryAfter.set(file, Date.now() + IO_RETRY_MS);
    ws.emit({ event: "error", file, code: (err as { code?: string }).code ?? "IO_ERROR", message: (err as Error).message });
    // Before the commit record, putting it back in the queue is always right; after it, recovery at the
    // next start-up finishes the commit (it knows how far we got), so the claim is left as it is.
    const committing = await stat(join(claim.dir, "state.json")).then(() => true, () => false);
    if (!committing) await rollBack(dirs, claim).catch(() => {});
  } finally {
    ws.deps.signal.removeEventListener("abort", onAbort);
  }
}

type Verified = VerifyResult;

async function quarantine(ws: WatchState, claim: Claim, r: Verified, t0: number): Promise<void> {
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
  const q = await quarantinePackage(ws.dirs, claim, reason);
  const durationMs = Date.now() - t0;
  const file = claim.file;
  const facts = intakeRecord(r, undefined, undefined);
  ws.emit({ event: "quarantined", id: r.id, file, problems: r.problems.map((p) => p.code), durationMs, sealed: r.sealed, ...facts });
  await audit(ws, { event: "quarantined", id: r.id, sha256: r.sha256, result: "quarantined", problems: r.problems.map((p) => p.code), files: r.summary.files, bytes: r.summary.bytes, durationMs, ...facts, ...names(ws, file) });
  await record(ws, { result: "quarantined", id: r.id, sha256: r.sha256, file, nameEncoding: r.nameEncoding, quarantinePath: q, reasonPath: q.replace(/\.zip$/i, "") + ".reason.json", problems: r.problems, warnings: r.warnings, summary: r.summary, sealed: r.sealed, durationMs });
}

async function commit(ws: WatchState, claim: Claim, r: Verified, extracted: NonNullable<Verified["extracted"]>, t0: number, name: string, intake: IntakeResult | undefined, privateAlready: ReadonlySet<string>): Promise<void> {
  const { opts, dirs } = ws;
  const file = claim.file;
  if (ws.deps.beforeFiling) {
    const page = await ws.deps.beforeFiling(extracted.root, { id: r.id, sha256: r.sha256, sealed: r.sealed }).catch((err: Error) => ws.emit({ event: "error", code: errorCode(err, "PAGE_FAILED"), message: `Page not written: ${err.message}` }));
    // The headers the page read are handed to the forward, which then reads no header again (the files are
    // renamed into ready/ as they are, never rewritten).
    if (opts.forward && page?.instances) ws.known.set(r.id, new Map(page.instances.map((i) => [i.relPath, i])));
    // What the hook added (the specialist's page) gets the same private modes as the package.
    await makeTreePrivate(extracted.root, dirs.modes, privateAlready);
  }
  // Durable before visible: files were flushed as written; now their folders, then the commit record.
  // (Intake may have removed folders of OS junk and programs since.)
  await forEachConcurrent(extracted.dirs, 4, (d) => syncPath(d).catch((e: NodeJS.ErrnoException) => { if (e.code !== "ENOENT") throw e; }));
  await syncPath(claim.staging);
  // With routing rules the package is filed in its route's folder: ready/<route folder>/<Name>/.
  const decision = opts.routing ? await (await import("./routing.js")).routePackage(extracted.root, opts.routing) : undefined;
  const route = decision ? { name: decision.route, folder: decision.folder, reason: decision.reason } : undefined;
  const readyDir = route ? join(dirs.ready, route.folder) : dirs.ready;
  if (route) {
    await mkdirPrivate(readyDir, dirs.modes);
    await syncPath(dirs.ready);
  }
  const state: ClaimState = { phase: "committing", from: extracted.root, target: await chooseReadyTarget({ ...dirs, ready: readyDir }, name), sha256: r.sha256 };
  await writeCommitState(claim, state);
  const readyPath = await commitToReady(dirs, claim, state);
  // Queued before the claim is released: a crash here is finished by recovery, which queues it too.
  if (opts.forward) await (await forwardQueue()).enqueueForward(ws.state.root, { id: r.id, sha256: r.sha256, readyPath });
  const durationMs = Date.now() - t0;
  // Audited while the claim still exists: a crash after this line is finished by recovery, which sees the
  // record and does not write a second one; a crash before it is audited by recovery.
  const readyRel = relativeReady(dirs.ready, readyPath, true);
  const where = intakeRecord(r, intake, opts.auditNames ? readyRel : undefined);
  await audit(ws, { event: "ready", id: r.id, sha256: r.sha256, result: "ready", sealed: r.sealed, files: r.summary.files, bytes: r.summary.bytes, durationMs, ...(r.warnings.length ? { warnings: [...new Set(r.warnings.map((w) => w.code))] } : {}), ...(route ? { route: route.name, routeFolder: route.folder } : {}), ...where, ...names(ws, file) });
  const filed = await ws.deps.afterFiling?.(readyPath, { id: r.id, sha256: r.sha256 }).catch((err: Error) => ({ event: "media", id: r.id, result: "failed", code: errorCode(err, "MEDIA_FAILED") }));
  if (filed) await audit(ws, filed);
  await archiveAndRelease(dirs, claim);
  ws.emit({ event: "ready", id: r.id, file, files: r.summary.files, bytes: r.summary.bytes, durationMs, sealed: r.sealed, ...(route ? { route: route.name } : {}), ...where, readyRel });
  await record(ws, { result: "ready", id: r.id, sha256: r.sha256, file, readyPath, readyRel, ...(route ? { route } : {}), problems: [], warnings: r.warnings, summary: r.summary, sealed: r.sealed, durationMs, ...(intake ? { intake } : {}), nameEncoding: r.nameEncoding });
}

// --- step 4: forward filed packages to a PACS ---------------------------------------------------------------

/** Try every queued package that is due, one at a time; a PACS that is down leaves them queued. */
async function forwardDue(ws: WatchState): Promise<void> {
  const fwd = ws.opts.forward!;
  const { signal } = ws.deps;
  const { forwardOne, listForwardQueue } = await forwardQueue();
  for (const entry of await listForwardQueue(ws.state.root, true, Date.now(), (n, err) => ws.emit({ event: "error", code: err.code, message: `${err.message}; moved to forward-queue/damaged/ for a person` }))) {
    if (signal.aborted) return;
    let a;
    try {
      a = await forwardOne(ws.state.root, entry, fwd, signal, ws.known.get(entry.id));
    } catch (err) {
      if (signal.aborted) return;
      ws.emit({ event: "error", code: errorCode(err, "FORWARD_FAILED"), message: `Forwarding failed: ${(err as Error).message}` });
      continue;
    }
    await reportForward(ws, entry, a);
    // A fatal failure (the PACS refuses our login) would meet every other package too: leave them queued.
    if (a.result === "queued" && a.retryClass === "fatal") break;
  }
}

async function reportForward(ws: WatchState, entry: ForwardEntry, a: ForwardAttempt): Promise<void> {
  if (a.result === "delivered") {
    ws.summary.forwarded!++;
    ws.emit({ event: "forwarded", id: a.id, instances: a.instances, confirmed: a.confirmed, durationMs: a.durationMs, attempts: a.attempts });
    ws.known.delete(entry.id);
    await audit(ws, { event: "forwarded", id: a.id, result: "delivered", instances: a.instances, confirmed: a.confirmed, requests: a.requests, attempts: a.attempts, durationMs: a.durationMs });
    if (!ws.deps.onForwarded) return;
    try {
      await ws.deps.onForwarded({ id: a.id, sha256: entry.sha256, readyPath: entry.readyPath, instances: a.instances, confirmed: a.confirmed, durationMs: a.durationMs, attempts: a.attempts, reconciled: a.reconciled, pacs: urlWithoutCredentials(ws.opts.forward!.target.url) });
    } catch (err) {
      ws.emit({ event: "error", code: "ON_FORWARDED_FAILED", message: (err as Error).message });
    }
  } else if (a.result === "queued") {
    ws.emit({ event: "forward-queued", id: a.id, code: a.code, message: a.message, attempts: a.attempts, nextAttemptInMs: a.nextAttemptInMs });
    await audit(ws, { event: "forward-queued", id: a.id, result: "queued", code: a.code, attempts: a.attempts, durationMs: a.durationMs });
  } else {
    ws.emit({ event: "error", code: "FORWARD_SKIPPED", message: `Package ${a.id} not forwarded: ${a.why}` });
    await audit(ws, { event: "forward-skipped", id: a.id, result: "skipped", reason: a.why });
  }
}

function startForwarding(ws: WatchState): void {
  if (!ws.opts.forward || ws.forwarding) return;
  ws.forwarding = forwardDue(ws)
    .catch((err: Error) => ws.emit({ event: "error", code: "FORWARD_FAILED", message: `Forwarding failed: ${err.message}` }))
    .finally(() => {
      ws.forwarding = undefined;
      ws.wake();
    });
}

async function nextForwardDelay(ws: WatchState): Promise<number | undefined> {
  // While a forwarding run is under way, its end wakes the loop.
  if (!ws.opts.forward || ws.forwarding) return undefined;
  const queued = await (await forwardQueue()).listForwardQueue(ws.state.root);
  if (queued.length === 0) return undefined;
  return Math.max(250, Math.min(...queued.map((e) => e.nextAttemptAt)) - Date.now());
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
