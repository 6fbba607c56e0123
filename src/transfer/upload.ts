import { createHash, randomBytes, type Hash } from "node:crypto";
import { open, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { InputError, InterruptedError, NetworkError, RemoteVerificationError, ScanbridgeError, describeIoError } from "../errors.js";
import { t } from "../i18n/index.js";
import type { Emit } from "../ui/events.js";
import { hashFileRange, parseSha256Line } from "../util/hash.js";
import type { Destination, RemoteReader, RemoteStat, RemoteWriter } from "./destination.js";
import { autoLanes } from "./lanes.js";
import { receiptNameFor, type Receipt } from "./receipt.js";
import { readManifestFromZip, summaryFromManifest } from "../pack/read-manifest.js";
import { defaultRetryPolicy, withRetries, type RetryPolicy } from "./retry.js";
import { InlineHasher, assignLanes, pumpSegment, splitSegments, type Segment } from "./segments.js";

export { pumpSegment } from "./segments.js";

/** What uploadPackage needs; side effects (connection, clock) come in as parameters. */
export interface UploadInput {
  /** Local `<Name>.zip`. */
  packagePath: string;
  /** Opens a fresh connection for each attempt (never reuse a client after end()). */
  connect: () => Promise<Destination>;
  /** Read the remote file back and compare SHA-256 (and check a resumed prefix by hash). */
  verify?: boolean;
  /** Replace an existing remote package. */
  force?: boolean;
  retry?: RetryPolicy;
  /** Parallel channels for one file (segments); undefined = chosen from the round-trip time (src/transfer/lanes.ts). */
  connections?: number;
  emit: Emit;
  signal?: AbortSignal;
  /** Messages may name the package (PHI) only when verbose. */
  verbose?: boolean;
  now?: () => Date;
  /** Write the receipt beside the package (default true). */
  writeReceipt?: boolean;
}

/** What uploadPackage did. */
export interface UploadResult {
  receipt: Receipt;
  /** Where the receipt was written (undefined when writeReceipt is false). */
  receiptPath: string | undefined;
  remotePath: string;
  size: number;
  sha256: string;
  /** Bytes sent in this run (less than size when resumed). */
  bytesSent: number;
  resumedFrom: number;
  attempts: number;
  verified: "size" | "sha256";
  /** Whether the final rename replaced atomically (posix-rename) or the package was written in place. */
  placement: "atomic-rename" | "rename" | "in-place";
  durationMs: number;
  /** An interrupted earlier upload had already placed the zip; only the checks and the marker were done now. */
  completedEarlierUpload: boolean;
  /** Parallel channels used for the data (the last attempt's; after any the server refused). */
  lanes: number;
  /** Round-trip time measured at connect, milliseconds (the basis of the automatic lane count). */
  rttMs?: number;
}

interface Journal {
  format: "scanbridge-upload-journal";
  url: string;
  remotePath: string;
  size: number;
  mtimeMs: number;
  segments: Segment[];
}

/** Names used at the destination for a package file name. */
export function remoteNamesFor(zipName: string): { partial: string; parts: string; final: string; marker: string } {
  return { partial: `.${zipName}.partial`, parts: `.${zipName}.parts`, final: zipName, marker: `${zipName}.sha256` };
}

/** SHA-256 of a local file range [start, end), streaming. */
export function hashLocalRange(path: string, start: number, end: number, onBytes?: (n: number) => void, signal?: AbortSignal): Promise<Hash> {
  return hashFileRange(path, { start, end, onBytes, signal });
}

/** SHA-256 of a remote range [start, end), with many reads in flight, hashed in order. */
export async function hashRemoteRange(
  reader: RemoteReader,
  start: number,
  end: number,
  window: { requests: number; chunkSize: number },
  onBytes?: (n: number) => void,
  signal?: AbortSignal,
): Promise<{ hash: Hash; bytes: number }> {
  const h = createHash("sha256");
  const queue: Array<Promise<Buffer>> = [];
  let next = start;
  let bytes = 0;
  const fill = () => {
    while (queue.length < window.requests && next < end) {
      const len = Math.min(window.chunkSize, end - next);
      const p = reader.read(len, next);
      p.catch(() => {}); // Awaited in order below; avoid unhandled rejections for the ones behind a failure.
      queue.push(p);
      next += len;
    }
  };
  fill();
  while (queue.length > 0) {
    if (signal?.aborted) throw new InterruptedError();
    const buf = await queue.shift()!;
    h.update(buf);
    bytes += buf.length;
    onBytes?.(buf.length);
    if (buf.length === 0) break;
    fill();
  }
  return { hash: h, bytes };
}

async function readJournal(path: string): Promise<Journal | undefined> {
  try {
    const j = JSON.parse(await readFile(path, "utf8")) as Journal;
    if (j.format !== "scanbridge-upload-journal" || !Array.isArray(j.segments)) return undefined;
    return j;
  } catch {
    return undefined;
  }
}

async function writeJournal(path: string, j: Journal): Promise<void> {
  const tmp = path + ".tmp";
  await writeFile(tmp, JSON.stringify(j) + "\n", { mode: 0o600 });
  await rename(tmp, path);
}

// ---------------------------------------------------------------------------------------------------------------
// Plan: what is uploaded, checked locally before any network work.

/** The local facts of one upload. */
interface UploadPlan {
  packagePath: string;
  zipName: string;
  names: ReturnType<typeof remoteNamesFor>;
  journalPath: string;
  size: number;
  mtimeMs: number;
  /** pack's `<Name>.zip.sha256`: the package's checksum and the exact marker text; undefined = hash while sending. */
  claimed: { sha256: string; text: Buffer } | undefined;
}

/** The package's own `<Name>.zip.sha256` (written by pack), if there is one: its hash and exact text. */
async function readClaimedChecksum(packagePath: string): Promise<{ sha256: string; text: Buffer } | undefined> {
  let text: Buffer;
  try {
    text = await readFile(packagePath + ".sha256");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw describeIoError(err, "the package's .sha256 file");
  }
  const line = parseSha256Line(text.toString("utf8"));
  if (!line) throw new InputError("CHECKSUM_FILE_INVALID", "The package's .sha256 file is not in sha256sum format", { hint: "Re-create the package with `scanbridge pack`." });
  return { sha256: line.sha256, text };
}

async function planUpload(packagePath: string): Promise<UploadPlan> {
  const zipName = basename(packagePath);
  if (!/\.zip$/i.test(zipName)) throw new InputError("NOT_A_PACKAGE", "Only a scanbridge package (<Name>.zip) can be uploaded", { hint: "Run `scanbridge pack` first." });
  let size: number;
  let mtimeMs: number;
  try {
    const st = await stat(packagePath);
    if (!st.isFile()) throw Object.assign(new Error("not a file"), { code: "ENOENT" });
    size = st.size;
    mtimeMs = st.mtimeMs;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new InputError("PACKAGE_NOT_FOUND", "The package file does not exist", { privateLines: [packagePath], hint: "Check the path, or run `scanbridge pack` first." });
    }
    throw describeIoError(err, "the package");
  }
  // pack's .sha256 is the package's checksum: it becomes the marker, and --verify (or the receiver) checks the
  // bytes against it. Without one, the bytes are hashed as they are read for sending (InlineHasher).
  const claimed = await readClaimedChecksum(packagePath);
  return {
    packagePath,
    zipName,
    names: remoteNamesFor(zipName),
    journalPath: join(dirname(packagePath), `.${zipName}.upload.json`),
    size,
    mtimeMs,
    claimed,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Segments: sending bytes over one or more channels.

/** Shared state of the sending side across attempts. */
interface SendState {
  plan: UploadPlan;
  emit: Emit;
  signal?: AbortSignal;
  label: (s: string) => string;
  hasher: InlineHasher | undefined;
  bytesSent: number;
}

/**
 * Send the open parts of `segs` into `path`, the segments dealt out over `lanes` channels (each lane opens its
 * own handle; the first one creates/truncates before the others open). With `journal`, the segments' progress is
 * saved locally about once a second so a re-run can resume them.
 */
async function sendSegments(st: SendState, dest: Destination, path: string, segs: Segment[], o: { truncate: boolean; lanes: number; attempt: number; journal?: Journal }): Promise<void> {
  const { plan, emit } = st;
  const total = plan.size;
  emit({ type: "step", id: "upload", label: st.label(o.attempt > 1 ? `Uploading (attempt ${o.attempt})` : "Uploading") });
  // Everything outside the still-open parts of the segments is already at the destination.
  let done = total - segs.reduce((a, s) => a + (s.end - s.done), 0);
  let lastEmit = 0;
  let lastJournal = Date.now();
  emit({ type: "progress", id: "upload", done, total, unit: "bytes" });
  const saveJournal = () => (o.journal ? writeJournal(plan.journalPath, { ...o.journal, segments: segs }).catch(() => {}) : Promise.resolve());
  const src = await open(plan.packagePath, "r");
  const writers: RemoteWriter[] = [];
  try {
    const fst = await src.stat();
    if (fst.size !== plan.size || fst.mtimeMs !== plan.mtimeMs) throw new InputError("PACKAGE_CHANGED", "The package changed after it was checked", { hint: "Do not edit the package while uploading it." });
    const open_ = segs.filter((s) => s.done < s.end);
    const byLane = assignLanes(open_.length ? open_ : segs, o.lanes);
    // The first writer creates/truncates; the others open the same file without truncating, after it.
    writers.push(await dest.openWrite(path, { truncate: o.truncate, lane: 0 }));
    writers.push(...(await Promise.all(byLane.slice(1).map((_, i) => dest.openWrite(path, { truncate: false, lane: i + 1 })))));
    const window = { requests: dest.window.requests, chunkSize: dest.window.chunkSize };
    const onBytes = (k: number) => {
      done += k;
      st.bytesSent += k;
      const t = Date.now();
      if (t - lastEmit > 50 || done === total) {
        lastEmit = t;
        emit({ type: "progress", id: "upload", done, total, unit: "bytes" });
      }
      if (o.journal && t - lastJournal > 1000) {
        lastJournal = t;
        void saveJournal();
      }
    };
    await Promise.all(
      byLane.map(async (laneSegs, lane) => {
        for (const seg of laneSegs) await pumpSegment(src, writers[lane]!, seg, window, onBytes, st.signal, st.hasher?.feed);
      }),
    );
    await Promise.all(writers.splice(0).map((w) => w.close()));
    emit({ type: "step-done", id: "upload" });
  } catch (err) {
    emit({ type: "step-done", id: "upload", ok: false });
    throw err;
  } finally {
    await saveJournal();
    for (const w of writers) await w.close().catch(() => {});
    await src.close();
  }
}

/** How many lanes this attempt uses: --connections, or chosen from the round-trip time; then what the server grants. */
async function chooseLanes(dest: Destination, requested: number | undefined, rttMs: number, bytes: number, emit: Emit): Promise<number> {
  const wanted = requested !== undefined ? Math.max(1, Math.floor(requested)) : autoLanes(rttMs, bytes);
  if (wanted <= 1) return 1;
  if (!dest.openLanes) return requested !== undefined ? wanted : 1; // a local folder: no channels to open
  const got = await dest.openLanes(wanted);
  if (got < wanted) {
    emit({ type: "warn", code: "CHANNELS_LIMITED", message: `The server allowed ${got} of ${wanted} parallel channels; uploading over ${got}` });
  }
  return Math.max(1, got);
}

// ---------------------------------------------------------------------------------------------------------------
// The whole upload: attempts (with retries) of connect → look → send → finalise, then the receipt.

/**
 * Upload a package: to `.<Name>.zip.partial` (resuming what is there), check size (and SHA-256 with verify),
 * rename into place, then write `<Name>.zip.sha256` last as the completion marker; write the receipt.
 */
export async function uploadPackage(input: UploadInput): Promise<UploadResult> {
  const now = input.now ?? (() => new Date());
  const started = now();
  const emit = input.emit;
  const plan = await planUpload(input.packagePath);
  const { size, names, zipName } = plan;
  const st: SendState = {
    plan,
    emit,
    signal: input.signal,
    label: (s: string) => (input.verbose ? `${s} ${zipName}` : s),
    hasher: plan.claimed ? undefined : new InlineHasher(plan.packagePath),
    bytesSent: 0,
  };

  let sha256 = plan.claimed?.sha256 ?? "";
  let marker: Buffer = plan.claimed?.text ?? Buffer.alloc(0);
  let resumedFrom = -1;
  let placement: UploadResult["placement"] = "atomic-rename";
  let completedEarlier = false;
  // Parallel segments survive retries in memory and re-runs through the local journal.
  let segments: Segment[] | undefined;
  let folderReady = false;
  /** The zip is at its final name (the marker may still be missing). */
  let placed = false;
  /** The server forbids renames: the zip is written under its final name (resumable within this run). */
  let inPlace = false;
  let destUrl = "";
  let remoteFinal = "";
  let lanes = 1;
  let rttMs: number | undefined;

  /** The package's SHA-256: pack's, or the one hashed while sending (reading from disk only what was not sent now). */
  const packageHash = async (): Promise<string> => {
    if (!sha256 && st.hasher) {
      emit({ type: "step", id: "upload-hash", label: t("step.uploadHash") });
      sha256 = await st.hasher.digest(size, input.signal);
      marker = Buffer.from(`${sha256}  ${zipName}\n`, "utf8");
      emit({ type: "step-done", id: "upload-hash" });
    }
    return sha256;
  };

  const attempt = async (n: number): Promise<void> => {
    const dest = await input.connect();
    try {
      const finalPath = dest.pathOf(names.final);
      destUrl = dest.url;
      remoteFinal = finalPath;
      const markerPath = dest.pathOf(names.marker);
      const partsPath = dest.pathOf(names.parts);
      const partialPath = dest.pathOf(names.partial);
      // One round trip for the folder and all three questions (on a 150 ms link every sequential request costs);
      // the round trips are timed: the fastest is the link's RTT, which sizes the parallel channels.
      const timed = <T>(p: Promise<T>): Promise<T> => {
        const t0 = performance.now();
        return p.then((v) => {
          const ms = performance.now() - t0;
          rttMs = rttMs === undefined ? ms : Math.min(rttMs, ms);
          return v;
        });
      };
      // The first channel is opened before timing: its set-up takes several round trips and would inflate the RTT.
      await dest.openLanes?.(1);
      const [folderStat, finalStat, partsStat, partialStat] = await Promise.all([
        folderReady ? Promise.resolve<RemoteStat | undefined>({ size: 0, isDirectory: true, mtimeMs: 0 }) : timed(dest.stat(dest.folder)),
        timed(dest.stat(finalPath)),
        dest.stat(partsPath),
        dest.stat(partialPath),
      ]);
      if (!folderReady) {
        if (!folderStat?.isDirectory) await dest.mkdirp(dest.folder);
        folderReady = true;
      }
      if (finalStat && !input.force && !placed && !inPlace) {
        const markerThere = await dest.exists(markerPath);
        if (!markerThere && finalStat.size === size) {
          // An earlier run placed the zip but stopped before the marker: finish it after the checks below.
          completedEarlier = true;
        } else {
          throw new InputError("REMOTE_EXISTS", "A package of this name is already at the destination; nothing was overwritten", {
            hint: "Use --force to replace it (the old one stays until the new one is complete and verified).",
            privateLines: input.verbose ? [finalPath] : [],
          });
        }
      }

      if (segments && !partsStat) segments = undefined; // The segmented file vanished: its marks mean nothing now.
      let placedNow = false;
      if (inPlace && !placed) {
        // A retry of an in-place upload: the final name is the partial; resume it after the same checks.
        let from = finalStat && finalStat.size <= size ? finalStat.size : 0;
        if (from > 0 && !(await checkPrefix(dest, finalPath, plan.packagePath, from, Boolean(input.verify), emit, input.signal, st.hasher))) from = 0;
        await writeInPlace(dest, finalPath, from);
        if (partialStat) await dest.remove(partialPath).catch(() => {});
        if (partsStat) await dest.remove(partsPath).catch(() => {});
        placed = true;
        placedNow = true;
      }
      let workPath: string;
      if (placed || completedEarlier) {
        workPath = finalPath;
        if (completedEarlier && resumedFrom < 0) resumedFrom = size;
      } else {
        workPath = await sendData(dest, { finalPath, partsPath, partialPath, partsStat, partialStat });
      }

      await packageHash();

      // A zip an earlier run left without its marker is completed only after its content is checked.
      if ((input.verify || completedEarlier) && !placed) {
        await verifyRemote(dest, workPath, size, sha256, emit, input.signal, async () => {
          // Whose fault? Hash the local package: a damaged package is an input problem, not the server's.
          const local = (await hashFileRange(plan.packagePath, { signal: input.signal })).digest("hex");
          if (!completedEarlier) {
            await dest.remove(workPath);
            segments = undefined;
          }
          if (local !== sha256) {
            return new InputError("PACKAGE_CORRUPT", "The package does not match its .sha256 checksum file; it changed or is damaged", {
              hint: "Re-create the package with `scanbridge pack` before uploading.",
            });
          }
          return undefined;
        });
      }

      if (placed) {
        // An earlier attempt moved the file into place and lost the connection before the marker.
        if (!placedNow && finalStat?.size !== size) throw new RemoteVerificationError("REMOTE_SIZE_MISMATCH", "The uploaded file changed at the destination before it was marked complete");
      } else if (!completedEarlier) {
        await finalise(dest, workPath, finalPath, markerPath, Boolean(finalStat));
      }
      placed = true;
      await dest.writeSmall(markerPath, marker);
      const m = await dest.stat(markerPath);
      if (!m || m.size !== marker.length) throw new RemoteVerificationError("REMOTE_SIZE_MISMATCH", "The checksum file has the wrong size at the destination");
      await unlink(plan.journalPath).catch(() => {});
    } finally {
      await dest.close().catch(() => {});
    }

    /** Send what is missing into the partial (one channel) or the parts file (several); returns the path written. */
    async function sendData(dest: Destination, p: { finalPath: string; partsPath: string; partialPath: string; partsStat?: RemoteStat; partialStat?: RemoteStat }): Promise<string> {
      lanes = 1; // chosen again on every attempt (a new connection, maybe other limits)
      if (!segments) {
        const journal = await readJournal(plan.journalPath);
        if (journal && p.partsStat && journal.url === dest.url && journal.remotePath === p.finalPath && journal.size === size && journal.mtimeMs === plan.mtimeMs) {
          segments = journal.segments;
        } else if (p.partsStat) {
          // Parallel segments without their journal may hold holes: never trust them.
          await dest.remove(p.partsPath);
        }
      }
      let workPath: string;
      let truncate = false;
      if (segments) {
        workPath = p.partsPath;
      } else {
        workPath = p.partialPath;
        let from = p.partialStat && !p.partialStat.isDirectory ? p.partialStat.size : 0;
        if (from > size) {
          emit({ type: "warn", code: "PARTIAL_DISCARDED", message: "The partial upload at the destination is larger than the package; starting over" });
          from = 0;
        } else if (from > 0) {
          const ok = await checkPrefix(dest, p.partialPath, plan.packagePath, from, Boolean(input.verify), emit, input.signal, st.hasher);
          if (!ok) {
            emit({ type: "warn", code: "PARTIAL_DISCARDED", message: "The partial upload at the destination does not match the package; starting over" });
            from = 0;
          }
        }
        truncate = from === 0;
        if (resumedFrom < 0) resumedFrom = from;
        lanes = await chooseLanes(dest, input.connections, rttMs ?? 0, size - from, emit);
        if (lanes > 1 && from === 0) {
          segments = splitSegments(0, size, lanes);
          workPath = p.partsPath;
          truncate = true;
        } else if (lanes > 1) {
          // Resuming over several channels: the checked partial becomes the parts file, its prefix one finished
          // segment. The journal is written first: if the rename is lost, the partial is still there to resume.
          segments = [{ start: 0, end: from, done: from }, ...splitSegments(from, size, lanes)];
          await writeJournal(plan.journalPath, { format: "scanbridge-upload-journal", url: dest.url, remotePath: p.finalPath, size, mtimeMs: plan.mtimeMs, segments });
          await dest.rename(p.partialPath, p.partsPath);
          workPath = p.partsPath;
        } else {
          // One channel, in order: the checksum (when pack wrote none) is computed from these very reads.
          await st.hasher?.catchUp(from, input.signal);
          await sendSegments(st, dest, workPath, [{ start: from, end: size, done: from }], { truncate, lanes: 1, attempt: n });
          return workPath;
        }
      }
      if (resumedFrom < 0) resumedFrom = segments.reduce((a, s) => a + (s.done - s.start), 0);
      const openBytes = segments.reduce((a, s) => a + (s.end - s.done), 0);
      if (!truncate && lanes <= 1) lanes = await chooseLanes(dest, input.connections ?? segments.filter((s) => s.done < s.end).length, rttMs ?? 0, openBytes, emit);
      const journal: Journal = { format: "scanbridge-upload-journal", url: dest.url, remotePath: p.finalPath, size, mtimeMs: plan.mtimeMs, segments };
      await writeJournal(plan.journalPath, journal);
      await sendSegments(st, dest, workPath, segments, { truncate, lanes, attempt: n, journal });

      const there = await dest.stat(workPath);
      if (!there || there.size !== size) {
        await dest.remove(workPath);
        segments = undefined;
        // Retryable: the next attempt starts over from nothing.
        throw new RemoteVerificationError("REMOTE_SIZE_MISMATCH", `The uploaded file has ${there?.size ?? 0} bytes at the destination, expected ${size}; it was removed`, {
          hint: "Run the upload again; if it happens again, the server is damaging uploads.",
          retryable: true,
        });
      }
      return workPath;
    }

    async function writeInPlace(dest: Destination, finalPath: string, from: number): Promise<void> {
      await st.hasher?.catchUp(from, input.signal);
      await sendSegments(st, dest, finalPath, [{ start: from, end: size, done: from }], { truncate: from === 0, lanes: 1, attempt: n });
      const there = await dest.stat(finalPath);
      if (!there || there.size !== size) throw new RemoteVerificationError("REMOTE_SIZE_MISMATCH", "The uploaded file has the wrong size at the destination", { retryable: true });
      if (input.verify) {
        await verifyRemote(dest, finalPath, size, await packageHash(), emit, input.signal, async () => {
          await dest.remove(finalPath);
          return undefined;
        });
      }
    }

    /** Move the checked file into place (or, where renames are forbidden, write the final name directly). */
    async function finalise(dest: Destination, workPath: string, finalPath: string, markerPath: string, replacing: boolean): Promise<void> {
      if (replacing && input.force) await dest.remove(markerPath); // The old package must not look complete while it is replaced.
      emit({ type: "step", id: "upload-finish", label: t("step.uploadFinish") });
      try {
        const r = await dest.rename(workPath, finalPath);
        placement = r.atomic ? "atomic-rename" : "rename";
      } catch (err) {
        if (!(err instanceof NetworkError && err.code === "REMOTE_PERMISSION_DENIED")) throw err;
        // Some drop boxes forbid renames: write the final name directly, then verify it the same way.
        emit({ type: "warn", code: "RENAME_FORBIDDEN", message: "The server does not allow renaming; uploading directly under the final name" });
        placement = "in-place";
        inPlace = true;
        await dest.remove(markerPath).catch(() => {});
        await writeInPlace(dest, finalPath, 0);
        await dest.remove(workPath).catch(() => {});
      }
      emit({ type: "step-done", id: "upload-finish" });
    }
  };

  const { attempts } = await withRetries(attempt, {
    policy: input.retry ?? defaultRetryPolicy,
    signal: input.signal,
    onRetry: ({ attempt: a, delayMs, error }) => {
      const why = error instanceof ScanbridgeError ? error.message : (error as Error)?.message ?? String(error);
      emit({ type: "warn", code: "UPLOAD_RETRY", message: `Attempt ${a} failed (${why}); retrying in ${(delayMs / 1000).toFixed(1)} s from where it stopped` });
    },
  }).catch((err) => {
    throw input.signal?.aborted ? new InterruptedError("Interrupted; the partial upload stays at the destination and the next run resumes it") : err;
  });

  const finished = now();
  const receipt = await receiptFor(plan, {
    destination: destUrl, remotePath: remoteFinal, sha256, verified: input.verify || completedEarlier ? "sha256" : "size",
    attempts, resumedFrom, startedAt: started, finishedAt: finished,
  });
  const receiptPath = input.writeReceipt !== false ? await writeReceipt(plan, receipt) : undefined;
  return {
    receipt,
    receiptPath,
    remotePath: remoteFinal,
    size,
    sha256,
    bytesSent: st.bytesSent,
    resumedFrom: Math.max(0, resumedFrom),
    attempts,
    verified: receipt.verified,
    placement,
    durationMs: finished.getTime() - started.getTime(),
    completedEarlierUpload: completedEarlier,
    lanes,
    ...(rttMs !== undefined ? { rttMs: Math.round(rttMs * 10) / 10 } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Finalise: receipt, prefix and read-back checks.

async function receiptFor(plan: UploadPlan, r: {
  destination: string; remotePath: string; sha256: string; verified: "size" | "sha256"; attempts: number; resumedFrom: number; startedAt: Date; finishedAt: Date;
}): Promise<Receipt> {
  // Counts and studies for the coordinators' notification (no names): from the package's own manifest.
  const summary = await readManifestFromZip(plan.packagePath).then(summaryFromManifest, () => undefined);
  return {
    format: "scanbridge-receipt",
    formatVersion: 1,
    package: plan.zipName,
    destination: r.destination,
    remotePath: r.remotePath,
    size: plan.size,
    sha256: r.sha256,
    verified: r.verified,
    attempts: r.attempts,
    resumedFrom: r.resumedFrom > 0 ? r.resumedFrom : undefined,
    startedAt: r.startedAt.toISOString(),
    finishedAt: r.finishedAt.toISOString(),
    ...(summary ? { summary } : {}),
  };
}

async function writeReceipt(plan: UploadPlan, receipt: Receipt): Promise<string> {
  const receiptPath = join(dirname(plan.packagePath), receiptNameFor(plan.zipName));
  try {
    const tmp = `${receiptPath}.tmp-${randomBytes(4).toString("hex")}`;
    // The receipt names the package, i.e. the patient: readable by the user only.
    await writeFile(tmp, JSON.stringify(receipt, null, 2) + "\n", { mode: 0o600 });
    await rename(tmp, receiptPath);
  } catch (err) {
    throw describeIoError(err, "the upload receipt");
  }
  return receiptPath;
}

/**
 * Whether the first `length` bytes at the destination are this package's: by SHA-256 with --verify (the local
 * prefix hash is then handed to `hasher`, so those bytes are not read again), else by the last 256 KiB.
 */
async function checkPrefix(dest: Destination, remotePath: string, localPath: string, length: number, byHash: boolean, emit: Emit, signal?: AbortSignal, hasher?: InlineHasher): Promise<boolean> {
  const reader = await dest.openRead(remotePath);
  try {
    if (byHash) {
      emit({ type: "step", id: "upload-resume-check", label: t("step.uploadResumeCheck") });
      let done = 0;
      const remote = await hashRemoteRange(reader, 0, length, dest.window, (k) => {
        done += k;
        emit({ type: "progress", id: "upload-resume-check", done, total: length, unit: "bytes" });
      }, signal);
      const local = await hashFileRange(localPath, { end: length, signal });
      emit({ type: "step-done", id: "upload-resume-check" });
      const same = remote.bytes === length && remote.hash.digest("hex") === local.copy().digest("hex");
      if (same) hasher?.adopt(local, length);
      return same;
    }
    // Without --verify, compare the last bytes of the partial: cheap, and catches a different package of the same name.
    const tail = Math.min(length, 256 * 1024);
    const remote = await reader.read(tail, length - tail);
    const fh = await open(localPath, "r");
    try {
      const local = Buffer.alloc(tail);
      await fh.read(local, 0, tail, length - tail);
      return remote.equals(local);
    } finally {
      await fh.close();
    }
  } finally {
    await reader.close().catch(() => {});
  }
}

async function verifyRemote(
  dest: Destination,
  path: string,
  size: number,
  sha256: string,
  emit: Emit,
  signal: AbortSignal | undefined,
  onMismatch: () => Promise<ScanbridgeError | undefined>,
): Promise<void> {
  emit({ type: "step", id: "upload-verify", label: t("step.uploadVerify") });
  const reader = await dest.openRead(path);
  let remote: string;
  let bytes: number;
  try {
    let done = 0;
    const r = await hashRemoteRange(reader, 0, size, dest.window, (k) => {
      done += k;
      emit({ type: "progress", id: "upload-verify", done, total: size, unit: "bytes" });
    }, signal);
    remote = r.hash.digest("hex");
    bytes = r.bytes;
  } finally {
    await reader.close().catch(() => {});
  }
  if (bytes !== size || remote !== sha256) {
    emit({ type: "step-done", id: "upload-verify", ok: false });
    const other = await onMismatch();
    if (other) throw other;
    throw new RemoteVerificationError("REMOTE_HASH_MISMATCH", "The file at the destination differs from the package (SHA-256 mismatch)", {
      hint: "Run the upload again; if it happens again, the server or the connection is damaging data.",
      details: { expected: sha256, actual: remote },
    });
  }
  emit({ type: "step-done", id: "upload-verify" });
}
