import { createHash, randomBytes, type Hash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { open, readFile, rename, stat, unlink, writeFile, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Worker } from "node:worker_threads";
import { InputError, InterruptedError, NetworkError, RemoteVerificationError, ScanbridgeError, describeIoError } from "../errors.js";
import type { Emit } from "../ui/events.js";
import type { Destination, RemoteReader, RemoteWriter } from "./destination.js";
import { receiptNameFor, type Receipt } from "./receipt.js";
import { readManifestFromZip, summaryFromManifest } from "../pack/read-manifest.js";
import { defaultRetryPolicy, withRetries, type RetryPolicy } from "./retry.js";

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
  /** Parallel channels for one file (segments); 1 = sequential. */
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
}

interface Segment {
  start: number;
  end: number;
  /** Contiguous acknowledged bytes reach this absolute offset. */
  done: number;
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
export async function hashLocalRange(path: string, start: number, end: number, onBytes?: (n: number) => void, signal?: AbortSignal): Promise<Hash> {
  const h = createHash("sha256");
  if (end <= start) return h;
  const rs = createReadStream(path, { start, end: end - 1, highWaterMark: 1024 * 1024, signal });
  try {
    for await (const chunk of rs as AsyncIterable<Buffer>) {
      h.update(chunk);
      onBytes?.(chunk.length);
    }
  } catch (err) {
    if (signal?.aborted) throw new InterruptedError();
    throw err;
  }
  return h;
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

/** Write [seg.done, seg.end) of the local file at the same offsets, keeping `window.requests` writes in flight. */
export function pumpSegment(
  src: FileHandle,
  writer: RemoteWriter,
  seg: Segment,
  window: { requests: number; chunkSize: number },
  onBytes: (n: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const inflight: Array<{ pos: number; len: number; acked: boolean }> = [];
    let next = seg.done;
    let failed = false;
    let pumping = false;
    let again = false;
    if (next >= seg.end) return resolve();
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      signal?.removeEventListener("abort", onAbort);
      reject(signal?.aborted ? new InterruptedError() : err);
    };
    const onAbort = () => fail(new InterruptedError());
    signal?.addEventListener("abort", onAbort, { once: true });
    const finish = () => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    };
    const pump = async () => {
      if (pumping) {
        again = true;
        return;
      }
      pumping = true;
      try {
        do {
          again = false;
          while (!failed && inflight.length < window.requests && next < seg.end) {
            const len = Math.min(window.chunkSize, seg.end - next);
            const pos = next;
            next += len;
            const buf = Buffer.allocUnsafe(len);
            let got = 0;
            while (got < len) {
              const { bytesRead } = await src.read(buf, got, len - got, pos + got);
              if (bytesRead === 0) throw new InputError("PACKAGE_CHANGED", "The package got shorter while it was being uploaded");
              got += bytesRead;
            }
            const rec = { pos, len, acked: false };
            inflight.push(rec);
            writer.write(buf, pos).then(
              () => {
                rec.acked = true;
                let n = 0;
                while (inflight.length && inflight[0]!.acked) {
                  const r = inflight.shift()!;
                  seg.done = r.pos + r.len;
                  n += r.len;
                }
                if (n) onBytes(n);
                if (failed) return;
                if (seg.done >= seg.end) finish();
                else void pump();
              },
              (err) => fail(err),
            );
          }
        } while (again && !failed);
      } catch (err) {
        fail(err);
      } finally {
        pumping = false;
      }
    };
    void pump();
  });
}

function splitSegments(from: number, size: number, n: number, minSeg = 8 * 1024 * 1024): Segment[] {
  const remaining = size - from;
  const count = Math.max(1, Math.min(n, Math.floor(remaining / minSeg) || 1));
  const segs: Segment[] = [];
  const per = Math.ceil(remaining / count);
  for (let i = 0; i < count; i++) {
    const start = from + i * per;
    const end = Math.min(size, start + per);
    if (start < end) segs.push({ start, end, done: start });
  }
  if (segs.length === 0) segs.push({ start: from, end: size, done: size });
  return segs;
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

const HASH_WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const { createReadStream } = require("node:fs");
const h = createHash("sha256");
createReadStream(workerData.path, { highWaterMark: 1024 * 1024 })
  .on("data", (c) => h.update(c))
  .on("error", (e) => parentPort.postMessage({ error: e.message, code: e.code }))
  .on("end", () => parentPort.postMessage({ hex: h.digest("hex") }));
`;

/** SHA-256 (hex) of a whole local file, computed on a worker thread so it overlaps the upload. */
export function hashFileInWorker(path: string, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(HASH_WORKER, { eval: true, workerData: { path } });
    const onAbort = () => void worker.terminate();
    signal?.addEventListener("abort", onAbort, { once: true });
    let settled = false;
    worker.once("message", (m: { hex?: string; error?: string; code?: string }) => {
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      void worker.terminate();
      if (m.hex) resolve(m.hex);
      else reject(describeIoError(Object.assign(new Error(m.error), { code: m.code }), "the package (reading it)"));
    });
    worker.once("error", (err) => {
      settled = true;
      reject(err);
    });
    worker.once("exit", () => {
      signal?.removeEventListener("abort", onAbort);
      if (!settled) reject(signal?.aborted ? new InterruptedError() : new Error("hash worker stopped"));
    });
  });
}

/** The package's own `<Name>.zip.sha256` (written by pack), if there is one: its hash and exact text. */
async function readClaimedChecksum(packagePath: string): Promise<{ sha256: string; text: Buffer } | undefined> {
  const local = packagePath + ".sha256";
  if (!existsSync(local)) return undefined;
  const text = await readFile(local);
  const m = /^([0-9a-f]{64}) [ *]/i.exec(text.toString("utf8"));
  if (!m) throw new InputError("CHECKSUM_FILE_INVALID", "The package's .sha256 file is not in sha256sum format", { hint: "Re-create the package with `scanbridge pack`." });
  return { sha256: m[1]!.toLowerCase(), text };
}

/**
 * Upload a package: to `.<Name>.zip.partial` (resuming what is there), check size (and SHA-256 with verify),
 * rename into place, then write `<Name>.zip.sha256` last as the completion marker; write the receipt.
 */
export async function uploadPackage(input: UploadInput): Promise<UploadResult> {
  const now = input.now ?? (() => new Date());
  const started = now();
  const emit = input.emit;
  const policy = input.retry ?? defaultRetryPolicy;
  const connections = Math.max(1, Math.floor(input.connections ?? 1));
  const zipName = basename(input.packagePath);
  const names = remoteNamesFor(zipName);
  const journalPath = join(dirname(input.packagePath), `.${zipName}.upload.json`);
  const label = (s: string) => (input.verbose ? `${s} ${zipName}` : s);

  if (!/\.zip$/i.test(zipName)) throw new InputError("NOT_A_PACKAGE", "Only a scanbridge package (<Name>.zip) can be uploaded", { hint: "Run `scanbridge pack` first." });
  let size: number;
  let mtimeMs: number;
  try {
    const st = await stat(input.packagePath);
    if (!st.isFile()) throw Object.assign(new Error("not a file"), { code: "ENOENT" });
    size = st.size;
    mtimeMs = st.mtimeMs;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new InputError("PACKAGE_NOT_FOUND", "The package file does not exist", { privateLines: [input.packagePath], hint: "Check the path, or run `scanbridge pack` first." });
    }
    throw describeIoError(err, "the package");
  }

  // pack's .sha256 is the package's checksum: it becomes the marker, and --verify (or the receiver) checks the
  // bytes against it. Without one, hash on another core while the upload runs.
  const claimed = await readClaimedChecksum(input.packagePath);
  const hashing = claimed ? undefined : hashFileInWorker(input.packagePath, input.signal);
  hashing?.catch(() => {});

  let sha256 = claimed?.sha256 ?? "";
  let marker: Buffer = claimed?.text ?? Buffer.alloc(0);
  let resumedFrom = -1;
  let bytesSent = 0;
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

  const attempt = async (n: number): Promise<void> => {
    const dest = await input.connect();
    try {
      const finalPath = dest.pathOf(names.final);
      destUrl = dest.url;
      remoteFinal = finalPath;
      const markerPath = dest.pathOf(names.marker);
      if (!folderReady) {
        await dest.mkdirp(dest.folder);
        folderReady = true;
      }
      const partsPath = dest.pathOf(names.parts);
      const partialPath = dest.pathOf(names.partial);
      // One round trip for all three questions: on a 150 ms link every sequential request costs.
      const [finalStat, partsStat, partialStat] = await Promise.all([dest.stat(finalPath), dest.stat(partsPath), dest.stat(partialPath)]);
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
        if (from > 0 && !(await checkPrefix(dest, finalPath, input.packagePath, from, Boolean(input.verify), emit, input.signal))) from = 0;
        await writeInPlace(dest, finalPath, from);
        if (partialStat) await dest.remove(partialPath).catch(() => {});
        if (partsStat) await dest.remove(partsPath).catch(() => {});
        placed = true;
        placedNow = true;
      }
      let workPath: string;
      if (placed) {
        workPath = finalPath;
      } else if (completedEarlier) {
        workPath = finalPath;
        if (resumedFrom < 0) resumedFrom = size;
      } else {
        if (!segments) {
          const journal = await readJournal(journalPath);
          if (journal && partsStat && journal.url === dest.url && journal.remotePath === finalPath && journal.size === size && journal.mtimeMs === mtimeMs) {
            segments = journal.segments;
          } else if (partsStat) {
            // Parallel segments without their journal may hold holes: never trust them.
            await dest.remove(partsPath);
          }
        }
        let truncate = false;
        if (segments) {
          workPath = partsPath;
        } else {
          workPath = partialPath;
          const partial = partialStat;
          let from = partial && !partial.isDirectory ? partial.size : 0;
          if (from > size) {
            emit({ type: "warn", code: "PARTIAL_DISCARDED", message: "The partial upload at the destination is larger than the package; starting over" });
            from = 0;
          } else if (from > 0) {
            const ok = await checkPrefix(dest, partialPath, input.packagePath, from, Boolean(input.verify), emit, input.signal);
            if (!ok) {
              emit({ type: "warn", code: "PARTIAL_DISCARDED", message: "The partial upload at the destination does not match the package; starting over" });
              from = 0;
            }
          }
          truncate = from === 0;
          if (resumedFrom < 0) resumedFrom = from;
          if (connections > 1 && from === 0 && size >= 16 * 1024 * 1024) {
            segments = splitSegments(0, size, connections);
            workPath = partsPath;
            truncate = true;
          } else {
            segments = undefined;
            const seg: Segment = { start: from, end: size, done: from };
            await sendSegments(dest, workPath, [seg], truncate);
          }
        }
        if (segments) {
          if (resumedFrom < 0) resumedFrom = segments.reduce((a, s) => a + (s.done - s.start), 0);
          await writeJournal(journalPath, { format: "scanbridge-upload-journal", url: dest.url, remotePath: finalPath, size, mtimeMs, segments });
          await sendSegments(dest, workPath, segments, truncate, true);
        }

        const st = await dest.stat(workPath);
        if (!st || st.size !== size) {
          await dest.remove(workPath);
          segments = undefined;
          // Retryable: the next attempt starts over from nothing.
          throw new RemoteVerificationError("REMOTE_SIZE_MISMATCH", `The uploaded file has ${st?.size ?? 0} bytes at the destination, expected ${size}; it was removed`, {
            hint: "Run the upload again; if it happens again, the server is damaging uploads.",
            retryable: true,
          });
        }
      }

      if (!sha256 && hashing) {
        emit({ type: "step", id: "upload-hash", label: "Computing the package checksum" });
        sha256 = await hashing;
        marker = Buffer.from(`${sha256}  ${zipName}\n`, "utf8");
        emit({ type: "step-done", id: "upload-hash" });
      }

      // A zip an earlier run left without its marker is completed only after its content is checked.
      if ((input.verify || completedEarlier) && !placed) {
        await verifyRemote(dest, workPath, size, sha256, emit, input.signal, async () => {
          // Whose fault? Hash the local package: a damaged package is an input problem, not the server's.
          const local = (await hashLocalRange(input.packagePath, 0, size, undefined, input.signal)).digest("hex");
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
        if (finalStat && input.force) await dest.remove(markerPath); // The old package must not look complete while it is replaced.
        emit({ type: "step", id: "upload-finish", label: "Moving into place" });
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
      placed = true;
      await dest.writeSmall(markerPath, marker);
      const m = await dest.stat(markerPath);
      if (!m || m.size !== marker.length) throw new RemoteVerificationError("REMOTE_SIZE_MISMATCH", "The checksum file has the wrong size at the destination");
      await unlink(journalPath).catch(() => {});
      void n;
    } finally {
      await dest.close().catch(() => {});
    }

    async function writeInPlace(dest: Destination, finalPath: string, from: number): Promise<void> {
      await sendSegments(dest, finalPath, [{ start: from, end: size, done: from }], from === 0);
      const st = await dest.stat(finalPath);
      if (!st || st.size !== size) throw new RemoteVerificationError("REMOTE_SIZE_MISMATCH", "The uploaded file has the wrong size at the destination", { retryable: true });
      if (input.verify) {
        await verifyRemote(dest, finalPath, size, sha256, emit, input.signal, async () => {
          await dest.remove(finalPath);
          return undefined;
        });
      }
    }

    async function sendSegments(dest: Destination, path: string, segs: Segment[], truncate: boolean, journal = false): Promise<void> {
      const total = size;
      emit({ type: "step", id: "upload", label: label(n > 1 ? `Uploading (attempt ${n})` : "Uploading") });
      // Everything outside the still-open parts of the segments is already at the destination.
      let done = size - segs.reduce((a, s) => a + (s.end - s.done), 0);
      let lastEmit = 0;
      let lastJournal = Date.now();
      emit({ type: "progress", id: "upload", done, total, unit: "bytes" });
      const src = await open(input.packagePath, "r");
      const writers: RemoteWriter[] = [];
      try {
        const st = await src.stat();
        if (st.size !== size || st.mtimeMs !== mtimeMs) throw new InputError("PACKAGE_CHANGED", "The package changed after it was checked", { hint: "Do not edit the package while uploading it." });
        // The first writer creates/truncates; the others open the same file without truncating.
        const first = await dest.openWrite(path, { truncate, lane: 0 });
        writers.push(first);
        writers.push(...(await Promise.all(segs.slice(1).map((_, i) => dest.openWrite(path, { truncate: false, lane: i + 1 })))));
        const perWindow = { requests: dest.window.requests, chunkSize: dest.window.chunkSize };
        await Promise.all(
          segs.map((seg, i) =>
            pumpSegment(src, writers[i]!, seg, perWindow, (k) => {
              done += k;
              bytesSent += k;
              const t = Date.now();
              if (t - lastEmit > 50 || done === total) {
                lastEmit = t;
                emit({ type: "progress", id: "upload", done, total, unit: "bytes" });
              }
              if (journal && t - lastJournal > 1000) {
                lastJournal = t;
                void writeJournal(journalPath, { format: "scanbridge-upload-journal", url: dest.url, remotePath: dest.pathOf(names.final), size, mtimeMs, segments: segs }).catch(() => {});
              }
            }, input.signal),
          ),
        );
        await Promise.all(writers.splice(0).map((w) => w.close()));
        emit({ type: "step-done", id: "upload" });
      } catch (err) {
        emit({ type: "step-done", id: "upload", ok: false });
        throw err;
      } finally {
        if (journal) await writeJournal(journalPath, { format: "scanbridge-upload-journal", url: dest.url, remotePath: dest.pathOf(names.final), size, mtimeMs, segments: segs }).catch(() => {});
        for (const w of writers) await w.close().catch(() => {});
        await src.close();
      }
    }
  };

  const { attempts } = await withRetries(attempt, {
    policy,
    signal: input.signal,
    onRetry: ({ attempt: a, delayMs, error }) => {
      const why = error instanceof ScanbridgeError ? error.message : (error as Error)?.message ?? String(error);
      emit({ type: "warn", code: "UPLOAD_RETRY", message: `Attempt ${a} failed (${why}); retrying in ${(delayMs / 1000).toFixed(1)} s from where it stopped` });
    },
  }).catch((err) => {
    throw input.signal?.aborted ? new InterruptedError("Interrupted; the partial upload stays at the destination and the next run resumes it") : err;
  });

  const finished = now();
  // Counts and studies for the coordinators' notification (no names): from the package's own manifest.
  const summary = await readManifestFromZip(input.packagePath).then(summaryFromManifest, () => undefined);
  const receipt: Receipt = {
    format: "scanbridge-receipt",
    formatVersion: 1,
    package: zipName,
    destination: destUrl,
    remotePath: remoteFinal,
    size,
    sha256,
    verified: input.verify || completedEarlier ? "sha256" : "size",
    attempts,
    resumedFrom: resumedFrom > 0 ? resumedFrom : undefined,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    ...(summary ? { summary } : {}),
  };
  let receiptPath: string | undefined;
  if (input.writeReceipt !== false) {
    receiptPath = join(dirname(input.packagePath), receiptNameFor(zipName));
    try {
      const tmp = `${receiptPath}.tmp-${randomBytes(4).toString("hex")}`;
      // The receipt names the package, i.e. the patient: readable by the user only.
      await writeFile(tmp, JSON.stringify(receipt, null, 2) + "\n", { mode: 0o600 });
      await rename(tmp, receiptPath);
    } catch (err) {
      throw describeIoError(err, "the upload receipt");
    }
  }
  return {
    receipt,
    receiptPath,
    remotePath: remoteFinal,
    size,
    sha256,
    bytesSent,
    resumedFrom: Math.max(0, resumedFrom),
    attempts,
    verified: receipt.verified,
    placement,
    durationMs: finished.getTime() - started.getTime(),
    completedEarlierUpload: completedEarlier,
  };
}

async function checkPrefix(dest: Destination, remotePath: string, localPath: string, length: number, byHash: boolean, emit: Emit, signal?: AbortSignal): Promise<boolean> {
  const reader = await dest.openRead(remotePath);
  try {
    if (byHash) {
      emit({ type: "step", id: "upload-resume-check", label: "Checking the partial upload" });
      let done = 0;
      const remote = await hashRemoteRange(reader, 0, length, dest.window, (k) => {
        done += k;
        emit({ type: "progress", id: "upload-resume-check", done, total: length, unit: "bytes" });
      }, signal);
      const local = await hashLocalRange(localPath, 0, length, undefined, signal);
      emit({ type: "step-done", id: "upload-resume-check" });
      return remote.bytes === length && remote.hash.digest("hex") === local.digest("hex");
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
  emit({ type: "step", id: "upload-verify", label: "Verifying (reading back)" });
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
