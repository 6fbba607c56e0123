/**
 * The data pass over a checked zip: every entry streamed once from the open descriptor, its CRC-32 and SHA-256
 * computed, its first bytes kept for classification, and (when asked) written under the staging folder, never
 * outside it. Memory stays flat whatever the package size.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { mkdir } from "node:fs/promises";
import { dirname, resolve, sep } from "node:path";
import { Transform, Writable, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { crc32 } from "node:zlib";
import { InterruptedError, describeIoError, throwIfAborted } from "../errors.js";
import { forEachConcurrent } from "../util/concurrency.js";
import type { CheckedEntry } from "./zip-checks.js";
import { openEntryData, type ZipEntryRecord } from "./zip-reader.js";
import { syncPath } from "./store.js";

/** What reading one entry found. */
export interface EntryData {
  size: number;
  sha256: string;
  crcOk: boolean;
  head: Buffer;
  /** Written to this path (when extracting). */
  path?: string;
  /** Reading failed: why. */
  error?: string;
}

/** Options of readEntries. */
export interface ReadEntriesOptions {
  /** Write safe entries under this folder (already created, empty). */
  extractTo?: string;
  /** Keep this entry's bytes in memory (manifest.json), up to `keepMax` bytes. */
  keep?: (e: CheckedEntry) => boolean;
  keepMax?: number;
  /** Decoder for entries this reader does not inflate itself (Deflate64). */
  openOther?: (e: ZipEntryRecord) => Promise<Readable>;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  /** Stop writing after the first bad entry (the package will be refused anyway). */
  stopWritingOnError?: boolean;
}

/** Bytes of each entry's head kept for classification: the DICOM magic at 128 and a PE header behind an MZ preamble. */
export const SNIFF_HEAD = 4096;

/** Files fsynced at once while the next entries are extracted (each holds one descriptor until its flush is done). */
const SYNCS_IN_FLIGHT = 8;

/** Entries read (inflated, hashed, written) at once. */
const ENTRIES_IN_FLIGHT = 3;

const LOCAL_IO_CODES = new Set(["ENOSPC", "EDQUOT", "EACCES", "EPERM", "EROFS", "EIO", "EMFILE", "ENFILE", "ENOTDIR"]);

/** Resolve an already validated entry name under `base`; refuses anything that would leave it. */
export function resolveInside(base: string, name: string): string {
  const p = resolve(base, name.endsWith("/") ? name.slice(0, -1) : name);
  if (!p.startsWith(base + sep)) throw new Error(`refusing to write outside the staging folder: ${name}`);
  return p;
}

/**
 * Read every entry (directories are created when extracting). Throws InterruptedError when aborted and a typed
 * I/O error when our own disk fails; a bad entry is reported in its EntryData, never thrown. Every file written is
 * on disk (fsynced) when this returns: each file's flush runs on the thread pool while the next entries are
 * extracted, instead of each close waiting for its own.
 */
export async function readEntries(fh: FileHandle, entries: CheckedEntry[], opts: ReadEntriesOptions = {}): Promise<{ data: Map<CheckedEntry, EntryData>; kept: Map<CheckedEntry, Buffer>; dirs: string[]; wrote: boolean }> {
  const base = opts.extractTo ? resolve(opts.extractTo) : undefined;
  let writing = base !== undefined;
  const created = new Set<string>();
  const data = new Map<CheckedEntry, EntryData>();
  const kept = new Map<CheckedEntry, Buffer>();
  const total = entries.reduce((s, i) => s + (i.isDir ? 0 : i.record.uncompressedSize), 0);
  let done = 0;
  const syncs = new Set<Promise<void>>();
  let syncError: unknown;
  const flushLater = async (path: string) => {
    while (syncs.size >= SYNCS_IN_FLIGHT) await Promise.race(syncs);
    const p: Promise<void> = syncPath(path)
      .catch((err: unknown) => void (syncError ??= err))
      .finally(() => syncs.delete(p));
    syncs.add(p);
  };
  const ensureDir = async (dir: string) => {
    if (created.has(dir)) return;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    for (let d = dir; d.startsWith(base! + sep) && !created.has(d); d = dirname(d)) created.add(d);
  };
  const readOne = async (info: CheckedEntry): Promise<void> => {
    const e = info.record;
    const hash = createHash("sha256");
    let crc = 0;
    let size = 0;
    let head = Buffer.alloc(0);
    const keep = opts.keep?.(info) === true && e.uncompressedSize <= (opts.keepMax ?? 64 * 1024 * 1024);
    const chunks: Buffer[] = [];
    const tap = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        crc = crc32(chunk, crc);
        size += chunk.length;
        if (head.length < SNIFF_HEAD) head = Buffer.concat([head, chunk.subarray(0, SNIFF_HEAD - head.length)]);
        if (keep) chunks.push(chunk);
        done += chunk.length;
        opts.onProgress?.(done, total);
        cb(null, chunk);
      },
    });
    let target: string | undefined;
    if (writing && info.safe) {
      target = resolveInside(base!, info.name);
      await ensureDir(dirname(target));
    }
    try {
      const rs = e.method === 9 && opts.openOther ? await opts.openOther(e) : openEntryData(fh, e);
      const sink: Writable = target
        ? createWriteStream(target, { flags: "wx", mode: 0o600, highWaterMark: 1024 * 1024 })
        : new Writable({ write: (_c, _e, cb) => cb() });
      await pipeline(rs, tap, sink, opts.signal ? { signal: opts.signal } : {});
    } catch (err) {
      if (opts.signal?.aborted) throw new InterruptedError();
      const code = (err as NodeJS.ErrnoException).code ?? "";
      if (target && LOCAL_IO_CODES.has(code)) throw describeIoError(err, "the staging folder"); // our disk, not the package
      data.set(info, { size, sha256: "", crcOk: false, head, error: (err as Error).message });
      if (opts.stopWritingOnError) writing = false;
      return;
    }
    const crcOk = (crc >>> 0) === (e.crc32 >>> 0);
    if (!crcOk && opts.stopWritingOnError) writing = false;
    if (target) await flushLater(target);
    data.set(info, { size, sha256: hash.digest("hex"), crcOk, head, ...(target ? { path: target } : {}) });
    if (keep) kept.set(info, Buffer.concat(chunks));
  };
  // A few entries at once: each one's inflate runs on the thread pool while the main thread hashes another's
  // bytes, so both cores work. The first failure stops new entries; those in flight finish before it is thrown,
  // so nothing is still writing when this returns. Deflate64 entries (an external decoder) go one at a time.
  try {
    await forEachConcurrent(entries, opts.openOther ? 1 : ENTRIES_IN_FLIGHT, async (info) => {
      if (!info.isDir) return readOne(info);
      if (writing && info.safe) await ensureDir(resolveInside(base!, info.name));
    }, { signal: opts.signal, checkAbort: throwIfAborted });
  } finally {
    await Promise.all(syncs); // never rejects: a failed fsync is kept in syncError
  }
  if (syncError) throw describeIoError(syncError, "the staging folder");
  return { data, kept, dirs: [...created], wrote: writing };
}
