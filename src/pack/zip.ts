import { randomBytes } from "node:crypto";
import { open, unlink, type FileHandle } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import { describeIoError, InputError, InterruptedError, ScanbridgeError } from "../errors.js";
import { msg } from "../i18n/index.js";
import type { Emit } from "../ui/events.js";
import { youngCollector } from "../util/heap.js";
import { SIG_CENTRAL, SIG_DESCRIPTOR, SIG_END, SIG_END64, SIG_LOCAL, SIG_LOCATOR64 } from "../util/zip-format.js";
import { trackTemp, untrackTemp } from "../util/tempfiles.js";
import { HashedFiles, MANIFEST_NAME } from "./manifest.js";
import { inlineLoader, PieceLoadError, workerLoader, type PieceDigest, type PieceLoader } from "./piece-loader.js";
import type { PackagePlan, PlannedEntry } from "./plan.js";
import { ZipOutput, type OutputMode } from "./zip-output.js";

/** Options for writeZip. */
export interface WriteZipOptions {
  outDir: string;
  /** Final file name, used for the temporary name. */
  fileName: string;
  level: number;
  store: boolean;
  maxSize?: number;
  signal?: AbortSignal;
  emit?: Emit;
  /**
   * Builds manifest.json from the hashed file list (called once every file is in the zip), as chunks that are asked
   * for one at a time, as the zip takes them (a generator: the whole manifest is never in memory at once).
   */
  buildManifest: (files: HashedFiles) => Iterable<Buffer>;
  /** Deflate jobs in flight (default: from the CPU count); tests use 1 to show the output does not depend on it. */
  parallel?: number;
  /** Date of the manifest.json entry (default: now); pack passes the manifest's createdAt. */
  manifestTime?: Date;
  /** Write Zip64 records even when not needed (tests; pack decides from the sizes and the entry count). */
  forceZip64?: boolean;
  /** Read and hash the files (CRC-32, SHA-256) on a worker thread (default: when there are 32 MB or more to read). */
  readThread?: boolean;
  /**
   * A reading thread started earlier (pack starts one while it scans, so that it is up by the time the zip begins):
   * writeZip owns it from here, uses it if it reads on a thread and closes it in any case.
   */
  startedLoader?: PieceLoader;
  /** Write with O_DIRECT where possible ("auto", the default), never ("buffered"), or misaligned (tests of the fallback). */
  directIo?: "auto" | "buffered" | "misaligned";
}

/** A zip written under a temporary name, ready to be moved into place. */
export interface WrittenZip {
  tmpPath: string;
  size: number;
  sha256: string;
  /** Every file's record for the manifest (its SHA-256, kept compactly). */
  files: HashedFiles;
  /** Entries stored rather than deflated because they do not shrink. */
  storedEntries: number;
  /** Time spent in the final fsync (milliseconds), reported apart from the writing itself. */
  fsyncMs: number;
  /** How the zip reached the disk: "direct" (O_DIRECT, not through the page cache) or "buffered". */
  output: OutputMode;
}

/**
 * Why not archiver: archiver (zip-stream → compress-commons) deflates one entry at a time through one zlib stream,
 * on one core, and has no way to append data that was already deflated elsewhere. This writer reads the files in
 * plan order on the main thread (hashing them: CRC-32 with zlib's native crc32, SHA-256 for the manifest), cuts
 * them into pieces of PIECE_BYTES, and deflates the pieces on libuv's thread pool, several at once (zlib's
 * asynchronous deflate). Each non-final piece ends with a sync flush, so the pieces of one file concatenate into
 * one valid deflate stream (as pigz does). The writer takes the pieces back in plan order and appends them to the
 * zip, so the output is byte-for-byte independent of timing. Memory is bounded by the pieces in flight.
 */

/** Bytes per deflate job; one-piece files get exact local headers, longer ones a data descriptor. */
const PIECE_BYTES = 1 << 20;
/** Store mode copies in larger pieces (no deflate: fewer calls). */
const STORE_PIECE_BYTES = 4 << 20;
/** Files larger than this are sampled to decide between deflate and store; smaller ones are deflated and compared. */
const SAMPLE_BYTES = 64 * 1024;
/** Output writes are gathered up to this size (larger when storing: fewer, bigger writes cost far less system time). */
const COALESCE_BYTES = 1 << 20;
const STORE_COALESCE_BYTES = 8 << 20;
/**
 * Read buffers in flight when storing, written through the page cache: the write being gathered and the one being
 * written (24 MiB, room for read-ahead too, was no faster and cost 6-8 MB of RSS). Written directly, a piece is
 * copied into a staging buffer as soon as it is hashed and its buffer comes back at once: 8 MiB of read-ahead then
 * kept the same pace (6 interleaved runs each: 369-545 ms against 414-547 ms for 200 MB) with 9 MB less RSS.
 */
const STORE_BUFFER_BUDGET = 16 << 20;
const STORE_DIRECT_BUFFER_BUDGET = 8 << 20;

const deflateRaw = promisify(zlib.deflateRaw) as (buf: Buffer, opts: zlib.ZlibOptions) => Promise<Buffer>;
const crc32 = (zlib as unknown as { crc32: (data: Buffer, value?: number) => number }).crc32;

const ZIP64_LIMIT = 0xffffffff;
const FLAG_DESCRIPTOR = 0x0008;
const FLAG_UTF8 = 0x0800;
const MADE_BY_UNIX = 3 << 8;
/** Regular file, rw-r--r--, in the high half of the external attributes (Unix). */
const EXTERNAL_ATTRS = ((0o100000 | 0o644) << 16) >>> 0;

/** SAMPLE_BYTES from the middle of a file. */
async function readSample(path: string, size: number): Promise<Buffer> {
  const fh = await open(path, "r");
  try {
    const sample = Buffer.allocUnsafe(SAMPLE_BYTES);
    const { bytesRead } = await fh.read(sample, 0, SAMPLE_BYTES, Math.max(0, Math.min(size - SAMPLE_BYTES, Math.floor(size / 2))));
    return sample.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Entry data: one buffer, or a deflater's chunks in order. */
type Deflated = Buffer[];
type EntryData = Buffer | Deflated;
const dataLength = (d: EntryData): number => (Array.isArray(d) ? d.reduce((n, b) => n + b.length, 0) : d.length);

/**
 * Deflate jobs on a few long-lived zlib streams, reset before each piece: every piece is still deflated on its own
 * (the same bytes as a one-shot deflateRaw), but zlib's state (about 270 KB at level 6) is allocated once per
 * stream instead of once per piece, which kept the allocator's heaps, and so peak RSS, growing with the package.
 * Each job is one write: the streams are made with the flush mode their pieces end with (Z_FINISH for an entry's
 * last piece, Z_SYNC_FLUSH before it), so zlib gets the piece and the flush in one call on the thread pool. A write
 * followed by a flush() was two calls, two callbacks through the stream, two wake-ups of a pool thread: with small
 * files (10,000 of 20 KB) the main thread's cost per file. The output is the same bytes either way.
 */
class Deflaters {
  /** Idle streams, by the flush mode they were made with. */
  private free = new Map<number, zlib.DeflateRaw[]>([[zlib.constants.Z_FINISH, []], [zlib.constants.Z_SYNC_FLUSH, []]]);
  private running = 0;
  private waiting: Array<() => void> = [];
  private all: zlib.DeflateRaw[] = [];
  constructor(private readonly count: number, private readonly level: number) {}

  /**
   * The deflated bytes as zlib handed them out, in 64 KiB chunks, not joined (no copy of up to 1 MiB per piece):
   * the writer appends them one by one and drops them, and they are collected every few MiB (youngCollector).
   */
  async deflate(buf: Buffer, last: boolean): Promise<Deflated> {
    const flush = last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH;
    // At most `count` jobs at once, started in the order asked for (a finished job hands its slot to the first one
    // waiting). A stream of the right flush mode is reused, or made (idle streams of the other mode stay: an entry of
    // several pieces needs both kinds, so there are at most 2 × count streams).
    if (this.running >= this.count) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    const free = this.free.get(flush)!;
    const d = free.pop() ?? this.make(flush);
    let failed = false;
    try {
      return await new Promise<Deflated>((resolve, reject) => {
        const out: Buffer[] = [];
        const onData = (chunk: Buffer) => out.push(chunk);
        d.on("data", onData);
        d.reset();
        d.write(buf, (err) => {
          d.off("data", onData);
          failed = Boolean(err);
          if (err) reject(err);
          else resolve(out);
        });
      });
    } finally {
      if (failed) d.close(); // a stream that failed is not used again
      else free.push(d);
      const next = this.waiting.shift();
      if (next) next(); // the slot passes on
      else this.running--;
    }
  }

  private make(flush: number): zlib.DeflateRaw {
    const d = zlib.createDeflateRaw({ level: this.level, chunkSize: 64 * 1024, flush });
    // A failed write is reported to its callback (above); the 'error' event would otherwise be unhandled.
    d.on("error", () => {});
    this.all.push(d);
    return d;
  }

  close(): void {
    for (const d of this.all) d.close();
  }
}

/** Whether deflating a sample of the data gains less than 5%: already-compressed content is stored. */
async function sampleIncompressible(sample: Buffer): Promise<boolean> {
  if (sample.length < 4096) return false;
  return (await deflateRaw(sample, { level: 1 })).length > sample.length * 0.95;
}

/** MS-DOS date and time (local time, 2-second resolution), as Info-ZIP and archiver write them. */
function dosDateTime(d: Date): number {
  const year = Math.min(Math.max(d.getFullYear(), 1980), 2107);
  const date = ((year - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate();
  const time = (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1);
  return ((date << 16) | time) >>> 0;
}

/** One entry's central-directory facts. */
interface CentralRecord {
  name: Buffer;
  flags: number;
  method: 0 | 8;
  dos: number;
  crc: number;
  size: number;
  csize: number;
  offset: number;
}

/**
 * Read buffers: pieces of one arena allocated once, whose size is the budget. Taking one is also what bounds the data
 * in flight: bytes rather than a count of buffers, so many small files can be in flight at once (bigger writes), a few
 * large pieces no more than the budget. Pieces are handed out in plan order and come back in nearly the same order
 * (written, then hashed), so the arena is used as a ring: a new piece goes after the newest one, or at the start of
 * the arena once that part is free again; space is reclaimed from the oldest piece onwards. Nothing is ever
 * allocated or dropped after the start: the memory is the arena, whatever the sizes of the files. (Buffers allocated
 * per piece size and dropped when the sizes changed were shared memory that V8 frees only when both threads happen
 * to collect garbage: 200 files of 25 MB took the peak RSS from about 100 MB to 190 MB, and to 467-493 MB as DICOM.)
 */
class BufferPool {
  private waiting: Array<{ bytes: number; resolve: (b: Buffer) => void; reject: (e: unknown) => void }> = [];
  /** Pieces handed out, oldest first (a given-back piece stays until every older one is back too). */
  private used: Array<{ start: number; end: number; back: boolean }> = [];
  private readonly byBuffer = new Map<Buffer, { start: number; end: number; back: boolean }>();
  private failed: { error: unknown } | undefined;
  constructor(private readonly arena: Buffer) {}

  /** The arena's size for a budget, when no piece is larger than `largest` bytes: room for two of those at least. */
  static arenaBytes(budget: number, largest: number): number {
    return Math.max(budget, 2 * BufferPool.round(largest));
  }

  private static round(bytes: number): number {
    return Math.max(64, Math.ceil(bytes / 64) * 64);
  }

  /** A buffer of at least `bytes` now, or undefined when the arena has no room for it yet. */
  tryTake(bytes: number): Buffer | undefined {
    if (this.failed || this.waiting.length > 0) return undefined;
    return this.grab(bytes);
  }

  async take(bytes: number): Promise<Buffer> {
    if (this.failed) throw this.failed.error;
    if (BufferPool.round(bytes) > this.arena.length) throw new Error(`a read buffer of ${bytes} bytes does not fit the pool's ${this.arena.length}`);
    return this.tryTake(bytes) ?? new Promise<Buffer>((resolve, reject) => this.waiting.push({ bytes, resolve, reject }));
  }

  give(b: Buffer): void {
    const piece = this.byBuffer.get(b);
    if (!piece) return;
    this.byBuffer.delete(b);
    piece.back = true;
    while (this.used.length > 0 && this.used[0]!.back) this.used.shift();
    while (this.waiting.length > 0) {
      const got = this.grab(this.waiting[0]!.bytes);
      if (!got) return;
      this.waiting.shift()!.resolve(got);
    }
  }

  private grab(bytes: number): Buffer | undefined {
    const size = BufferPool.round(bytes);
    const oldest = this.used[0];
    const newest = this.used.at(-1);
    let start: number | undefined;
    if (!oldest || !newest) start = size <= this.arena.length ? 0 : undefined;
    else if (newest.start >= oldest.start) {
      // Not wrapped: free space after the newest piece, and before the oldest.
      if (newest.end + size <= this.arena.length) start = newest.end;
      else if (size <= oldest.start) start = 0;
    } else if (newest.end + size <= oldest.start) {
      start = newest.end; // wrapped: the free space lies between the newest and the oldest
    }
    if (start === undefined) return undefined;
    const piece = { start, end: start + size, back: false };
    this.used.push(piece);
    const buf = this.arena.subarray(start, start + size);
    this.byBuffer.set(buf, piece);
    return buf;
  }

  /** Fail every waiting and later take (the zip is abandoned). */
  fail(error: unknown): void {
    this.failed ??= { error };
    for (const w of this.waiting.splice(0)) w.reject(error);
  }
}

/** What the reader hands the writer, in plan order. `buf` is a pooled read buffer to give back once written. */
type Piece =
  /** A whole entry in one piece: exact local header, no data descriptor. */
  | { kind: "whole"; name: Buffer; dos: number; crc: number; size: number; raw: Buffer | undefined; data: Promise<EntryData> | EntryData; deflated: boolean; buf?: Buffer; manifest?: true }
  /** Start of a longer entry (local header with a data descriptor to follow). */
  | { kind: "begin"; name: Buffer; dos: number; deflated: boolean }
  | { kind: "part"; data: Promise<EntryData> | EntryData; rawBytes: number; buf?: Buffer; hashed?: Promise<unknown>; manifest?: true }
  | { kind: "end"; crc: number; size: number };

/** Header builders (little-endian, APPNOTE 6.3). */
type HeaderFields = { name: Buffer; flags: number; method: number; dos: number; crc: number; size: number; csize: number };

/**
 * The fields the local and central headers share, from "version needed" to the extra field's length, written at
 * `at` (4 in a local header, 6 in a central one), then the name; with Zip64, the extra field's sizes (`more`: the
 * central header's offset) after the name.
 */
function sharedFields(b: Buffer, at: number, r: HeaderFields, zip64: boolean, more: bigint[]): void {
  const extra = zip64 ? 4 + 8 * (2 + more.length) : 0;
  b.writeUInt16LE(zip64 ? 45 : 20, at);
  b.writeUInt16LE(r.flags, at + 2);
  b.writeUInt16LE(r.method, at + 4);
  b.writeUInt32LE(r.dos, at + 6);
  b.writeUInt32LE(r.crc >>> 0, at + 10);
  b.writeUInt32LE(zip64 ? ZIP64_LIMIT : r.csize, at + 14);
  b.writeUInt32LE(zip64 ? ZIP64_LIMIT : r.size, at + 18);
  b.writeUInt16LE(r.name.length, at + 22);
  b.writeUInt16LE(extra, at + 24);
  const nameAt = b.length - r.name.length - extra;
  r.name.copy(b, nameAt);
  if (zip64) {
    const e = nameAt + r.name.length;
    b.writeUInt16LE(0x0001, e);
    b.writeUInt16LE(extra - 4, e + 2);
    [BigInt(r.size), BigInt(r.csize), ...more].forEach((v, i) => b.writeBigUInt64LE(v, e + 4 + 8 * i));
  }
}

function localHeader(r: HeaderFields, zip64: boolean): Buffer {
  const b = Buffer.alloc(30 + r.name.length + (zip64 ? 20 : 0));
  b.writeUInt32LE(SIG_LOCAL, 0);
  sharedFields(b, 4, r, zip64, []);
  return b;
}

function dataDescriptor(crc: number, csize: number, size: number, zip64: boolean): Buffer {
  const b = Buffer.alloc(zip64 ? 24 : 16);
  b.writeUInt32LE(SIG_DESCRIPTOR, 0);
  b.writeUInt32LE(crc >>> 0, 4);
  if (zip64) {
    b.writeBigUInt64LE(BigInt(csize), 8);
    b.writeBigUInt64LE(BigInt(size), 16);
  } else {
    b.writeUInt32LE(csize, 8);
    b.writeUInt32LE(size, 12);
  }
  return b;
}

const centralHeaderLength = (r: CentralRecord, zip64: boolean): number => 46 + r.name.length + (zip64 ? 28 : 0);

/**
 * The central directory, written entry by entry as each one is complete, into blocks of 64 KiB: nothing per entry is
 * kept until the end (with 10,000 entries, a record object and a name buffer each were about 2 MB of heap).
 */
class CentralDirectory {
  private static readonly BLOCK = 65536;
  private readonly full: Buffer[] = [];
  // Zero-filled: the header leaves the fields that are zero unwritten.
  private block = Buffer.alloc(CentralDirectory.BLOCK);
  private at = 0;
  count = 0;
  constructor(private readonly zip64: boolean) {}

  add(r: CentralRecord): void {
    const length = centralHeaderLength(r, this.zip64);
    if (this.at + length > this.block.length) {
      this.full.push(this.block.subarray(0, this.at));
      this.block = Buffer.alloc(Math.max(CentralDirectory.BLOCK, length));
      this.at = 0;
    }
    centralHeader(this.block.subarray(this.at, this.at + length), r, this.zip64);
    this.at += length;
    this.count++;
  }

  /** The directory's bytes, in order. */
  blocks(): Buffer[] {
    return [...this.full, this.block.subarray(0, this.at)];
  }
}

/** One central header, into `b` (exactly its length). */
function centralHeader(b: Buffer, r: CentralRecord, zip64: boolean): void {
  b.writeUInt32LE(SIG_CENTRAL, 0);
  b.writeUInt16LE(MADE_BY_UNIX | 45, 4);
  sharedFields(b, 6, r, zip64, [BigInt(r.offset)]);
  // comment length, disk number start, internal attributes: 0
  b.writeUInt32LE(EXTERNAL_ATTRS, 38);
  b.writeUInt32LE(zip64 ? ZIP64_LIMIT : r.offset, 42);
}

function endRecords(entries: number, cdOffset: number, cdSize: number, zip64: boolean): Buffer {
  const end = Buffer.alloc(22);
  end.writeUInt32LE(SIG_END, 0);
  end.writeUInt16LE(zip64 ? 0xffff : entries, 8);
  end.writeUInt16LE(zip64 ? 0xffff : entries, 10);
  end.writeUInt32LE(zip64 ? ZIP64_LIMIT : cdSize, 12);
  end.writeUInt32LE(zip64 ? ZIP64_LIMIT : cdOffset, 16);
  if (!zip64) return end;
  const end64 = Buffer.alloc(56);
  end64.writeUInt32LE(SIG_END64, 0);
  end64.writeBigUInt64LE(44n, 4);
  end64.writeUInt16LE(MADE_BY_UNIX | 45, 12);
  end64.writeUInt16LE(45, 14);
  end64.writeBigUInt64LE(BigInt(entries), 24);
  end64.writeBigUInt64LE(BigInt(entries), 32);
  end64.writeBigUInt64LE(BigInt(cdSize), 40);
  end64.writeBigUInt64LE(BigInt(cdOffset), 48);
  const locator = Buffer.alloc(20);
  locator.writeUInt32LE(SIG_LOCATOR64, 0);
  locator.writeBigUInt64LE(BigInt(cdOffset + cdSize), 8);
  locator.writeUInt32LE(1, 16);
  return Buffer.concat([end64, locator, end]);
}

/** Deflated bytes dropped between two young-generation collections (see youngCollector). */
const DEFLATED_COLLECT_BYTES = 8 * 1024 * 1024;

/** From this many bytes to read, the files are read and hashed on a worker thread (starting one costs about 40 ms). */
export const READ_THREAD_BYTES = 32e6;

/**
 * Write every planned file into `<outDir>/.<fileName>.<random>.tmp` as a zip with one root folder, hashing each
 * file on the way, then append manifest.json; deflate runs on several threads (see above). One-piece files are
 * read ahead, several at once, into pooled buffers (one read per file, which also shows whether it grew); a worker
 * thread computes their CRC-32 and SHA-256 in place (shared memory) while the main thread computes the zip's own
 * SHA-256 and drives the I/O, and one write is in flight while the next pieces are prepared. Memory stays flat: the
 * read buffers in flight are bounded in bytes (`parallel` pieces of 1 MiB when deflating, 16 MiB when storing,
 * where writes are gathered to 8 MiB), and at most `parallel` deflate jobs run at once. On any failure or
 * interrupt the temporary file is removed.
 */
export async function writeZip(plan: PackagePlan, opts: WriteZipOptions): Promise<WrittenZip> {
  const tmpPath = join(opts.outDir, `.${opts.fileName}.${randomBytes(4).toString("hex")}.tmp`);
  const entries = plan.entries;
  const totalBytes = entries.reduce((s, e) => s + e.source.size, 0);
  // Zip64 from the start when it will be needed, so local headers carry Zip64 sizes (wider tool support).
  const zip64 = Boolean(opts.forceZip64) || totalBytes >= 0xfffff000 || entries.length + 1 >= 0xffff;
  const parallel = Math.max(1, opts.parallel ?? Math.min(8, availableParallelism() * 2));
  const pieceBytes = opts.store ? STORE_PIECE_BYTES : PIECE_BYTES;
  const level = opts.level;
  const storeAll = opts.store || level === 0;
  // The reader, chosen first: from here it is ours to close on every path (a thread left running would keep the
  // process alive), including a reading thread that pack started during its scan and that is not needed after all.
  const usesThread = opts.readThread ?? totalBytes >= READ_THREAD_BYTES;
  if (!usesThread) opts.startedLoader?.close();
  const loader = usesThread ? (opts.startedLoader ?? workerLoader()) : inlineLoader();
  let fh: FileHandle;
  try {
    fh = await open(tmpPath, "wx", 0o600);
    trackTemp(tmpPath);
  } catch (err) {
    loader.close();
    throw describeIoError(err, msg("what.package"));
  }
  const out = await ZipOutput.open(fh, tmpPath, { maxSize: opts.maxSize, coalesce: opts.store ? STORE_COALESCE_BYTES : COALESCE_BYTES, direct: opts.directIo });
  const files = new HashedFiles(entries);
  const central = new CentralDirectory(zip64);
  let storedEntries = 0;
  let doneBytes = 0;
  // Wrapped: the first error wins, whatever was thrown.
  let failure: { error: unknown } | undefined;
  /** Wakes the reader waiting for room in the queue (see roomInQueue). */
  let roomWake: (() => void) | undefined;
  const budget = opts.store ? (out.mode === "direct" ? STORE_DIRECT_BUFFER_BUDGET : STORE_BUFFER_BUDGET) : parallel * (pieceBytes + 65536);
  // No read is longer than a piece plus the byte that shows whether a one-piece file grew.
  const pool = new BufferPool(loader.buffer(BufferPool.arenaBytes(budget, pieceBytes + 1)));
  const fail = (err: unknown) => {
    failure ??= { error: err };
    pool.fail(failure.error);
    roomWake?.();
  };
  const onAbort = () => fail(new InterruptedError());
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  if (opts.signal?.aborted) onAbort();
  const check = () => {
    if (failure) throw failure.error;
  };

  // The queue between reader and writer, in plan order.
  const queue: Piece[] = [];
  let queueWake: (() => void) | undefined;
  let readerDone = false;
  const push = (p: Piece) => {
    queue.push(p);
    queueWake?.();
  };
  // Pieces that hold no pool buffer (manifest chunks) are paced by the queue instead: a few at most wait in it.
  const roomInQueue = async () => {
    while (queue.length > 2 && !failure) await new Promise<void>((resolve) => (roomWake = resolve));
  };
  const deflaters = new Deflaters(parallel, level);
  const deflatePiece = (buf: Buffer, last: boolean): Promise<Deflated> => {
    const p = deflaters.deflate(buf, last);
    p.catch(() => {}); // awaited by the writer
    return p;
  };
  const readFailed = (entry: PlannedEntry, e: unknown) => new InputError("INPUT_READ_FAILED", msg("pack.readFailed", { reason: (e as NodeJS.ErrnoException).code ?? (e as Error).message }), {
    hint: msg("pack.readFailed.hint"),
    privateLines: [entry.source.absPath],
  });
  const changed = (entry: PlannedEntry) => new InputError("INPUT_CHANGED", msg("pack.inputChanged"), {
    hint: msg("pack.inputChanged.hint"),
    privateLines: [entry.source.absPath],
  });
  /** Files are hashed in plan order (entry i's hash is the i-th). */
  const recordFile = (sha256: string) => files.add(sha256);

  /** Read and hash a piece of file i on the loader, with the pack's own errors. */
  const loadPiece = (i: number, buf: Buffer, position: number, length: number, first: boolean, last: boolean, crc = true): Promise<PieceDigest> => {
    const entry = entries[i]!;
    return loader.load(i, entry.source.absPath, buf, position, length, first, last, crc).catch((e: unknown) => {
      throw e instanceof PieceLoadError && e.reason === "changed" ? changed(entry) : readFailed(entry, e instanceof PieceLoadError ? { code: e.code } : e);
    });
  };
  /** A one-piece file, read whole in one call (plus one byte to see whether it grew), with its CRC and hash. */
  interface Loaded { raw: Buffer; buf: Buffer; crc: number; sha: string }
  // Storing on the reading thread, that thread does most of the work (read, SHA-256, CRC-32) while this one hashes
  // the zip and writes: the CRC-32 of every other one-piece file is computed here instead, which evens them out.
  const crcHere = (i: number) => usesThread && storeAll && i % 2 === 1;
  const loadWhole = async (i: number, buf: Buffer): Promise<Loaded> => {
    const size = entries[i]!.source.size;
    const digest = await loadPiece(i, buf, 0, size, true, true, !crcHere(i));
    const raw = buf.subarray(0, size);
    return { raw, buf, crc: crcHere(i) ? crc32(raw, 0) : digest.crc, sha: digest.sha256! };
  };
  const isWhole = (i: number) => entries[i]!.source.size <= pieceBytes;
  // Read-ahead of one-piece files, never past a longer file (its pieces need the buffers to move on).
  const ahead = new Map<number, Promise<Loaded>>();
  let nextAhead = 0;
  const readAhead = (from: number) => {
    nextAhead = Math.max(nextAhead, from);
    while (nextAhead < entries.length && isWhole(nextAhead) && !failure) {
      const buf = pool.tryTake(entries[nextAhead]!.source.size + 1);
      if (!buf) return;
      const p = loadWhole(nextAhead, buf);
      p.catch(() => {}); // awaited in order below
      ahead.set(nextAhead++, p);
    }
  };

  const readLong = async (i: number, name: Buffer, dos: number) => {
    const entry = entries[i]!;
    const size = entry.source.size;
    let store = storeAll || entry.store === true;
    if (!store && entry.store === undefined) {
      store = await sampleIncompressible(await readSample(entry.source.absPath, size).catch((e: unknown) => {
        throw readFailed(entry, e);
      }));
      if (store) storedEntries++;
    } else if (entry.store === true && !opts.store) storedEntries++;
    push({ kind: "begin", name, dos, deflated: !store });
    let digest: Promise<PieceDigest> | undefined;
    for (let pos = 0; pos < size;) {
      check();
      const len = Math.min(pieceBytes, size - pos);
      const buf = await pool.take(len + 1);
      // Not awaited: the next pieces are read meanwhile (the loader keeps their order); the writer waits for each.
      const loaded = loadPiece(i, buf, pos, len, pos === 0, pos + len >= size);
      loaded.catch(() => {}); // awaited by the writer, and below for the last piece
      digest = loaded;
      pos += len;
      const last = pos >= size;
      const raw = buf.subarray(0, len);
      const data = store ? loaded.then(() => raw) : loaded.then(() => deflatePiece(raw, last));
      data.catch(() => {}); // awaited by the writer
      push({ kind: "part", data, rawBytes: len, buf, hashed: loaded });
    }
    const { crc, sha256 } = await digest!;
    push({ kind: "end", crc, size });
    recordFile(sha256!);
  };

  const reader = async () => {
    for (let i = 0; i < entries.length; i++) {
      check();
      const entry = entries[i]!;
      const name = Buffer.from(`${plan.root}/${entry.path}`, "utf8");
      const dos = dosDateTime(new Date(entry.source.mtimeMs));
      if (!isWhole(i)) {
        await readLong(i, name, dos);
        continue;
      }
      let loading = ahead.get(i);
      if (loading) ahead.delete(i);
      else loading = loadWhole(i, await pool.take(entry.source.size + 1));
      readAhead(i + 1);
      const { raw, buf, crc, sha } = await loading;
      const size = raw.length;
      // Small files: deflate the whole file and compare (exact), unless it is known to be compressed already.
      const store = storeAll || entry.store === true || size === 0;
      if (entry.store === true && !opts.store) storedEntries++;
      push({ kind: "whole", name, dos, crc, size, raw: store ? undefined : raw, data: store ? raw : deflatePiece(raw, true), deflated: !store, buf });
      recordFile(sha);
      readAhead(i + 1);
    }
    // manifest.json last: it lists every file's hash. In one piece when small; else in its chunks, as a longer entry,
    // each chunk made only when the queue has room for it.
    const chunks = opts.buildManifest(files)[Symbol.iterator]();
    const manifestName = Buffer.from(`${plan.root}/${MANIFEST_NAME}`, "utf8");
    const manifestDos = dosDateTime(opts.manifestTime ?? new Date());
    const first = chunks.next();
    let following = chunks.next();
    if (first.done || following.done) {
      const m = first.done ? Buffer.alloc(0) : first.value;
      push({ kind: "whole", name: manifestName, dos: manifestDos, crc: crc32(m, 0), size: m.length, raw: m, data: storeAll ? m : deflatePiece(m, true), deflated: !storeAll, manifest: true });
      return;
    }
    push({ kind: "begin", name: manifestName, dos: manifestDos, deflated: !storeAll });
    let crc = 0;
    let size = 0;
    for (let m = first.value; ;) {
      crc = crc32(m, crc);
      size += m.length;
      const last = following.done === true;
      push({ kind: "part", data: storeAll ? m : deflatePiece(m, last), rawBytes: m.length, manifest: true });
      if (following.done) break;
      m = following.value;
      await roomInQueue();
      check();
      following = chunks.next();
    }
    push({ kind: "end", crc, size });
  };

  // Deflated output is allocated afresh and dropped once appended: collected every 8 MiB (src/util/heap.ts).
  const dropped = storeAll ? undefined : youngCollector(DEFLATED_COLLECT_BYTES);
  /** Append an entry's data; `release` (the read buffer's return) goes with its last bytes. */
  const appendData = async (data: EntryData, release: (() => void) | undefined) => {
    if (!Array.isArray(data)) return out.append(data, release);
    if (data.length === 0) return release?.();
    for (let k = 0; k < data.length; k++) await out.append(data[k]!, k === data.length - 1 ? release : undefined);
    dropped?.(dataLength(data));
  };

  const writer = async () => {
    let current: { record: CentralRecord; csize: number } | undefined;
    for (;;) {
      if (queue.length === 0) {
        if (readerDone) return;
        // Nothing to do until the reader pushes: write what is pending, so its buffers come back.
        await out.flush();
        if (queue.length > 0 || readerDone) continue;
        await new Promise<void>((resolve) => (queueWake = resolve));
        queueWake = undefined;
        continue;
      }
      check();
      const piece = queue.shift()!;
      roomWake?.();
      const buf = "buf" in piece ? piece.buf : undefined;
      // A piece's buffer goes back to the pool once written and hashed.
      const hashed = piece.kind === "part" ? piece.hashed : undefined;
      const release = buf ? () => (hashed ? void hashed.then(() => pool.give(buf), () => {}) : pool.give(buf)) : undefined;
      if (piece.kind === "whole") {
        let data = await piece.data;
        let method: 0 | 8 = piece.deflated ? 8 : 0;
        // The store-when-incompressible rule: a file that deflates by less than 5% is stored as it is.
        if (piece.deflated && piece.raw && dataLength(data) > piece.raw.length * 0.95) {
          data = piece.raw;
          method = 0;
          if (!piece.manifest) storedEntries++;
        }
        const record: CentralRecord = { name: piece.name, flags: FLAG_UTF8, method, dos: piece.dos, crc: piece.crc, size: piece.size, csize: dataLength(data), offset: out.offset };
        await out.append(localHeader(record, zip64));
        await appendData(data, release);
        central.add(record);
        if (!piece.manifest) doneBytes += piece.size;
      } else if (piece.kind === "begin") {
        const record: CentralRecord = { name: piece.name, flags: FLAG_UTF8 | FLAG_DESCRIPTOR, method: piece.deflated ? 8 : 0, dos: piece.dos, crc: 0, size: 0, csize: 0, offset: out.offset };
        await out.append(localHeader(record, zip64));
        current = { record, csize: 0 };
        continue;
      } else if (piece.kind === "part") {
        const data = await piece.data;
        await appendData(data, release);
        current!.csize += dataLength(data);
        if (!piece.manifest) doneBytes += piece.rawBytes;
      } else {
        const rec = current!.record;
        rec.crc = piece.crc;
        rec.size = piece.size;
        rec.csize = current!.csize;
        await out.append(dataDescriptor(rec.crc, rec.csize, rec.size, zip64));
        central.add(rec);
        current = undefined;
      }
      opts.emit?.({ type: "progress", id: "zip", done: doneBytes, total: totalBytes, unit: "bytes" });
    }
  };

  opts.emit?.({ type: "step", id: "zip", label: msg("step.zip") });
  try {
    const readerRun = reader().catch(fail).finally(() => {
      readerDone = true;
      queueWake?.();
    });
    const writerRun = writer().catch(fail);
    await Promise.all([readerRun, writerRun]);
    check();
    // Pieces left in the queue after a failure are dropped; their deflate jobs finish on their own.
    const cdOffset = out.offset;
    for (const block of central.blocks()) await out.append(block);
    await out.append(endRecords(central.count, cdOffset, out.offset - cdOffset, zip64));
    await out.finish();
    const output = out.mode;
    const t0 = performance.now();
    await fh.sync();
    const fsyncMs = performance.now() - t0;
    await out.close();
    await fh.close();
    opts.emit?.({ type: "step-done", id: "zip", label: msg("step.zip.done", { n: files.length }) });
    return { tmpPath, size: out.offset, sha256: out.hash.digest("hex"), files, storedEntries, fsyncMs, output };
  } catch (err) {
    opts.emit?.({ type: "step-done", id: "zip", ok: false, label: msg("step.zip.failed") });
    await out.drain().catch(() => {});
    await out.close();
    await fh.close().catch(() => {});
    await unlink(tmpPath).catch(() => {});
    untrackTemp(tmpPath);
    throw err instanceof ScanbridgeError ? err : describeIoError(err, msg("what.package"));
  } finally {
    loader.close();
    deflaters.close();
    opts.signal?.removeEventListener("abort", onAbort);
  }
}
