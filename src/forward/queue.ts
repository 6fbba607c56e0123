import { mkdir, readdir, readFile, rename, rm } from "node:fs/promises";
import { ScanbridgeError } from "../errors.js";
import { readJsonFile, writeJsonAtomic } from "../util/atomic-write.js";
import { join } from "node:path";
import { errorCode, RemoteVerificationError, retryClassOf, type RetryClass } from "../errors.js";
import { readDicomHeader } from "../dicom/read.js";
import { forEachConcurrent } from "../util/concurrency.js";
import type { RetryPolicy } from "../transfer/retry.js";
import { INTAKE_MANIFEST_NAME } from "../ingest/intake.js";
import { MANIFEST_NAME, type Manifest } from "../pack/manifest.js";
import { stowAndConfirm, type DicomwebTarget, type InstanceRef } from "./dicomweb.js";
import { decideReconciliation, reconcileFileFor, reconciledCopies, type ReconcileOptions } from "./reconcile.js";

/** Forwarding settings of a watch (already validated). */
export interface ForwardOptions {
  target: DicomwebTarget;
  /** Instances per STOW-RS request. */
  batchSize: number;
  /** First wait before a queued package is tried again; doubles per failed attempt up to `maxRetryDelayMs`. */
  retryDelayMs: number;
  maxRetryDelayMs: number;
  /** Retries inside one attempt (each STOW-RS and QIDO-RS request); default 2 retries, 1 s doubling. */
  requestRetry?: RetryPolicy;
  /** Identity reconciliation before forwarding; without it packages are forwarded as received unless they hold a reconcile file. */
  reconcile?: ReconcileOptions;
}

/** A package waiting to be forwarded: `<state>/forward-queue/<id>.json`. No PHI except the ready path. */
export interface ForwardEntry {
  format: "scanbridge-forward";
  id: string;
  sha256: string;
  /** Folder in ready/ (PHI in the name). */
  readyPath: string;
  queuedAt: string;
  attempts: number;
  nextAttemptAt: number;
  lastError?: { code: string; message: string };
}

/** The outcome of one forwarding attempt. */
export type ForwardAttempt =
  | { result: "delivered"; id: string; instances: number; confirmed: number; requests: number; durationMs: number; attempts: number; reconciled: boolean }
  | { result: "queued"; id: string; code: string; message: string; retryable: boolean; retryClass: RetryClass; nextAttemptInMs: number; attempts: number; durationMs: number }
  | { result: "skipped"; id: string; why: string };

/** The queue folders in the watcher's state folder (never in the drop folder: uploaders write there). */
export function forwardDirs(stateDir: string): { queue: string; done: string; damaged: string } {
  const queue = join(stateDir, "forward-queue");
  return { queue, done: join(queue, "delivered"), damaged: join(queue, "damaged") };
}

/** Queue a package for forwarding; idempotent (an entry already queued or delivered is left as it is). */
export async function enqueueForward(stateDir: string, e: { id: string; sha256: string; readyPath: string }): Promise<boolean> {
  const d = forwardDirs(stateDir);
  await mkdir(d.done, { recursive: true, mode: 0o700 });
  const name = `${e.id}.json`;
  const exists = async (p: string) => readFile(p).then(() => true, () => false);
  if ((await exists(join(d.queue, name))) || (await exists(join(d.done, name)))) return false;
  const entry: ForwardEntry = { format: "scanbridge-forward", id: e.id, sha256: e.sha256, readyPath: e.readyPath, queuedAt: new Date().toISOString(), attempts: 0, nextAttemptAt: 0 };
  await writeJsonAtomic(join(d.queue, name), entry);
  return true;
}

/**
 * Entries of the queue (oldest first), optionally only those due now. An entry that does not read (torn, edited)
 * is moved to `damaged/` and reported through `onDamaged` once, never skipped silently on every pass.
 */
export async function listForwardQueue(stateDir: string, dueOnly = false, now = Date.now(), onDamaged?: (file: string, err: ScanbridgeError) => void): Promise<ForwardEntry[]> {
  const d = forwardDirs(stateDir);
  const names = await readdir(d.queue).catch(() => [] as string[]);
  const done = new Set(await readdir(d.done).catch(() => [] as string[]));
  const out: ForwardEntry[] = [];
  for (const n of names.filter((x) => /^[0-9a-f]{12}\.json$/.test(x))) {
    // Delivered, then stopped before the queue entry was removed: finish that step, never send twice.
    if (done.has(n)) {
      await rm(join(d.queue, n), { force: true });
      continue;
    }
    try {
      const e = await readJsonFile<ForwardEntry>(join(d.queue, n), `forward queue entry ${n}`);
      if (!e) continue;
      if (e.format !== "scanbridge-forward" || typeof e.readyPath !== "string" || typeof e.nextAttemptAt !== "number") {
        throw new ScanbridgeError("STATE_DAMAGED", 1, `forward queue entry ${n} is not a scanbridge forward entry`);
      }
      if (!dueOnly || e.nextAttemptAt <= now) out.push(e);
    } catch (err) {
      // Set aside for a person (with the reason reported), so it neither blocks nor vanishes.
      await mkdir(d.damaged, { recursive: true, mode: 0o700 });
      await rename(join(d.queue, n), join(d.damaged, n)).catch(() => {});
      onDamaged?.(n, err instanceof ScanbridgeError ? err : new ScanbridgeError("STATE_DAMAGED", 1, (err as Error).message));
    }
  }
  return out.sort((a, b) => a.queuedAt.localeCompare(b.queuedAt));
}

/**
 * The files list of a ready folder: the sender's manifest of a sealed package, else the intake manifest the
 * watcher itself wrote for a hand-made one (a package carrying a file of that name is refused at intake).
 */
async function readyFiles(readyPath: string): Promise<Manifest["files"] | undefined> {
  for (const name of [MANIFEST_NAME, INTAKE_MANIFEST_NAME]) {
    let m: { format?: string; files?: Manifest["files"] };
    try {
      m = JSON.parse(await readFile(join(readyPath, name), "utf8")) as typeof m;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw err;
    }
    if (name === INTAKE_MANIFEST_NAME && m.format !== "scanbridge-intake") return undefined;
    return Array.isArray(m.files) ? m.files : undefined;
  }
  return undefined;
}

/** A DICOM instance whose header was already read (by the page, before filing), by its path below the ready folder. */
export interface KnownInstance {
  relPath: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
}

/**
 * The DICOM instances of an extracted package, from its manifest; UIDs from each file's own header, or from `known`
 * (headers already read from the same files in this process), so that no header is read twice.
 */
export async function instancesOf(readyPath: string, known?: ReadonlyMap<string, KnownInstance>): Promise<InstanceRef[] | undefined> {
  const files = await readyFiles(readyPath);
  if (!files) return undefined;
  // Headers read a few at a time (the thread pool's reads overlap); the manifest's order is kept.
  const dicom = files.filter((f) => f.kind === "dicom");
  const found: Array<InstanceRef | undefined> = dicom.map(() => undefined);
  await forEachConcurrent(dicom.map((f, i) => [f, i] as const), 4, async ([f, i]) => {
    const path = join(readyPath, ...f.path.split("/"));
    const k = known?.get(f.path);
    if (k) {
      found[i] = { path, studyInstanceUid: k.studyInstanceUid, seriesInstanceUid: k.seriesInstanceUid, sopInstanceUid: k.sopInstanceUid };
      return;
    }
    const h = await readDicomHeader(path);
    if (h.sopInstanceUid && h.studyInstanceUid && h.seriesInstanceUid) found[i] = { path, studyInstanceUid: h.studyInstanceUid, seriesInstanceUid: h.seriesInstanceUid, sopInstanceUid: h.sopInstanceUid };
  });
  return found.filter((x): x is InstanceRef => x !== undefined);
}

/**
 * Try to forward one queued package: STOW-RS every instance, then QIDO-RS confirmation of every one. Delivered
 * only when confirmed (the entry moves to delivered/); otherwise it stays queued with the next attempt time.
 */
export async function forwardOne(stateDir: string, entry: ForwardEntry, opts: ForwardOptions, signal: AbortSignal, known?: ReadonlyMap<string, KnownInstance>): Promise<ForwardAttempt> {
  const d = forwardDirs(stateDir);
  const t0 = Date.now();
  const attempts = entry.attempts + 1;
  const instances = await instancesOf(entry.readyPath, known).catch(() => undefined);
  if (!instances || instances.length === 0) {
    // No manifest (unsealed), no DICOM in it, or the folder is gone: nothing to send or confirm. Set aside for a person.
    await writeJsonAtomic(join(d.done, `${entry.id}.json`), { ...entry, attempts, result: "skipped", finishedAt: new Date().toISOString() });
    await rm(join(d.queue, `${entry.id}.json`), { force: true });
    return { result: "skipped", id: entry.id, why: instances ? "the package holds no DICOM instances" : "no manifest to confirm the instances against" };
  }
  const retry = opts.requestRetry ?? { retries: 2, baseDelayMs: 1000, maxDelayMs: 5000 };
  let toSend: InstanceRef[] = instances;
  let dispose: (() => Promise<void>) | undefined;
  let reconciled = false;
  try {
    // Identity reconciliation: nothing reaches the PACS with the sending hospital's identity unless allowed.
    // Staff reconciliations live in the state folder; nothing in the package (or its ready folder) is obeyed.
    const decision = await decideReconciliation(entry.id, reconcileFileFor(stateDir, entry.id), instances, opts.reconcile);
    if (decision.kind === "not-reconciled") {
      // Waiting for staff, not for the PACS: tried again after the first retry delay, without doubling.
      await writeJsonAtomic(join(d.queue, `${entry.id}.json`), { ...entry, attempts, nextAttemptAt: Date.now() + opts.retryDelayMs, lastError: { code: "NOT_RECONCILED", message: decision.message } });
      return { result: "queued", id: entry.id, code: "NOT_RECONCILED", message: `not forwarded: ${decision.message}`, retryable: true, retryClass: "retry", nextAttemptInMs: opts.retryDelayMs, attempts, durationMs: Date.now() - t0 };
    }
    if (decision.kind === "reconcile") {
      const copies = await reconciledCopies(instances, decision.with);
      toSend = copies.instances;
      dispose = copies.dispose;
      reconciled = true;
    }
    // STOW-RS requests in parallel; each series confirmed with QIDO-RS as soon as it is stored (src/forward/dicomweb.ts).
    const { stow, confirm } = await stowAndConfirm(opts.target, toSend, { batchSize: opts.batchSize, signal, retry });
    if (stow.failed.length > 0 || confirm.missing.length > 0) {
      throw new RemoteVerificationError("FORWARD_NOT_CONFIRMED", `${confirm.missing.length} of ${instances.length} instances not confirmed by QIDO-RS${stow.failed.length ? `, ${stow.failed.length} refused by STOW-RS` : ""}`, { retryClass: "retry" });
    }
    const durationMs = Date.now() - t0;
    await writeJsonAtomic(join(d.done, `${entry.id}.json`), { ...entry, attempts, result: "delivered", instances: instances.length, confirmed: confirm.confirmed, reconciled, finishedAt: new Date().toISOString(), durationMs });
    await rm(join(d.queue, `${entry.id}.json`), { force: true });
    return { result: "delivered", id: entry.id, instances: instances.length, confirmed: confirm.confirmed, requests: stow.requests, durationMs, attempts, reconciled };
  } catch (err) {
    if (signal.aborted) throw err;
    const code = errorCode(err, "FORWARD_FAILED");
    const retryClass = retryClassOf(err);
    const delay = Math.min(opts.maxRetryDelayMs, opts.retryDelayMs * 2 ** Math.min(20, attempts - 1));
    const message = (err as Error).message;
    await writeJsonAtomic(join(d.queue, `${entry.id}.json`), { ...entry, attempts, nextAttemptAt: Date.now() + delay, lastError: { code, message } });
    return { result: "queued", id: entry.id, code, message, retryable: retryClass === "retry", retryClass, nextAttemptInMs: delay, attempts, durationMs: Date.now() - t0 };
  } finally {
    await dispose?.().catch(() => {});
  }
}
