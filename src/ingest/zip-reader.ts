/**
 * The one zip reader of the hospital side: end record(s), Zip64, central directory and every local header,
 * read from one open file descriptor (never re-opened by path), plus a decompressing stream per entry.
 * It only parses; what is wrong with a zip is decided by zip-checks.ts, which compares what this reads.
 */
import { createReadStream } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { PassThrough, Transform, type Readable } from "node:stream";
import { createInflateRaw } from "node:zlib";
import { forEachConcurrent } from "../util/concurrency.js";
import { readFully } from "../util/read-fully.js";
import { SIG_CENTRAL, SIG_DESCRIPTOR, SIG_END, SIG_END64, SIG_LOCAL, SIG_LOCATOR64 } from "../util/zip-format.js";

/** One extra field (id and its data). */
export interface ZipExtraField {
  id: number;
  data: Buffer;
}

/** A local file header as it is in the file. */
export interface LocalHeader {
  rawName: Buffer;
  flags: number;
  method: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  extraFields: ZipExtraField[];
  /** Bytes of the extra field area (overlaps hidden there count). */
  extraLength: number;
  /** Offset of the first data byte. */
  dataStart: number;
}

/** One central directory record, with its local header when it could be read. */
export interface ZipEntryRecord {
  index: number;
  rawName: Buffer;
  flags: number;
  method: number;
  versionMadeBy: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
  externalAttributes: number;
  extraFields: ZipExtraField[];
  /** Where this record sits in the central directory. */
  centralOffset: number;
  centralLength: number;
  local?: LocalHeader;
  /** The data descriptor after the data (general purpose bit 3). */
  descriptor?: { length: number; crc32: number; compressedSize: number; uncompressedSize: number };
  /** Why the local header could not be read (past the end, bad signature). */
  localError?: string;
}

/** Everything the reader found in the zip's directory. */
export interface ZipDirectory {
  fileSize: number;
  entries: ZipEntryRecord[];
  /** The central directory, as declared by the (last) end record. */
  cdOffset: number;
  cdSize: number;
  /** Offset of the end record used; the Zip64 records when present. */
  eocdOffset: number;
  zip64: { recordOffset: number; locatorOffset: number } | undefined;
  /** Other offsets in the tail that also parse as end records pointing at a central directory (fake ones in a comment). */
  extraEndRecords: number[];
  /** The end record's comment length runs past the end of the file, or bytes follow the comment. */
  trailingBytes: number;
  /** Entry count the end record declares. */
  declaredEntries: number;
  /** More entries than allowed: reading stopped. */
  truncated: boolean;
  /** Byte ranges no entry, directory or end record accounts for; `localHeader` when one hides there. */
  gaps: Array<{ offset: number; length: number; localHeader: boolean }>;
}

/** A zip whose directory cannot be read at all. */
export class ZipFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ZipFormatError";
  }
}

/** Local headers read at once, and the bytes of extra fields guessed into each header's first read. */
const LOCAL_READS_IN_FLIGHT = 8;
const LOCAL_EXTRA_GUESS = 64;
/** Largest central directory read into memory (100,000 entries of long names fit easily). */
const MAX_CD_BYTES = 256 * 1024 * 1024;

function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  return readFully(fh, Buffer.alloc(length), position);
}

/** Parse an extra field area; a malformed tail is returned as one field with id -1. */
export function parseExtraFields(buf: Buffer): ZipExtraField[] {
  const out: ZipExtraField[] = [];
  let i = 0;
  while (i + 4 <= buf.length) {
    const id = buf.readUInt16LE(i);
    const len = buf.readUInt16LE(i + 2);
    if (i + 4 + len > buf.length) {
      out.push({ id: -1, data: buf.subarray(i) });
      return out;
    }
    out.push({ id, data: buf.subarray(i + 4, i + 4 + len) });
    i += 4 + len;
  }
  if (i < buf.length) out.push({ id: -1, data: buf.subarray(i) });
  return out;
}

/** Apply a Zip64 extended information field (0x0001) to the values that are 0xFFFFFFFF. */
function applyZip64(fields: ZipExtraField[], v: { uncompressedSize: number; compressedSize: number; localHeaderOffset?: number }): void {
  const f = fields.find((x) => x.id === 0x0001);
  if (!f) return;
  let i = 0;
  const next = () => {
    if (i + 8 > f.data.length) throw new ZipFormatError("Zip64 extra field too short");
    const n = Number(f.data.readBigUInt64LE(i));
    i += 8;
    return n;
  };
  if (v.uncompressedSize === 0xffffffff) v.uncompressedSize = next();
  if (v.compressedSize === 0xffffffff) v.compressedSize = next();
  if (v.localHeaderOffset === 0xffffffff) v.localHeaderOffset = next();
}

/** The end record at `i` of the tail, if one is there. */
function endRecordAt(buf: Buffer, i: number): { cdSize: number; cdOffset: number; entries: number; commentLength: number } | undefined {
  if (i + 22 > buf.length || buf.readUInt32LE(i) !== SIG_END) return undefined;
  return { entries: buf.readUInt16LE(i + 10), cdSize: buf.readUInt32LE(i + 12), cdOffset: buf.readUInt32LE(i + 16), commentLength: buf.readUInt16LE(i + 20) };
}

/**
 * Read the directory of a zip: the last end record whose comment fits the file (as every mainstream reader
 * does), Zip64 records, the central directory (at most `maxEntries` records), and the local header of each entry.
 * Throws ZipFormatError when no central directory can be found or it is damaged.
 */
export async function readZipDirectory(fh: FileHandle, maxEntries: number): Promise<ZipDirectory> {
  const { size: fileSize } = await fh.stat();
  if (fileSize < 22) throw new ZipFormatError("file too short for a zip end record");
  const tailLen = Math.min(fileSize, 22 + 0xffff);
  const tailStart = fileSize - tailLen;
  const tail = await readAt(fh, tailStart, tailLen);
  // Every candidate end record in the tail; the one used is the last whose comment reaches the end of the file.
  const candidates: number[] = [];
  for (let i = tail.length - 22; i >= 0; i--) if (tail[i] === 0x50 && tail[i + 1] === 0x4b && tail[i + 2] === 0x05 && tail[i + 3] === 0x06) candidates.push(i);
  // As yauzl and libarchive do: the comment ends exactly at the end of the file; failing that, as Info-ZIP does,
  // the last record whose comment fits (the bytes after it are reported).
  let eocdAt = candidates.find((i) => i + 22 + endRecordAt(tail, i)!.commentLength === tail.length) ?? -1;
  if (eocdAt < 0) eocdAt = candidates.find((i) => i + 22 + endRecordAt(tail, i)!.commentLength <= tail.length) ?? -1;
  if (eocdAt < 0) throw new ZipFormatError("no end of central directory record (not a zip, or cut short)");
  const eocd = endRecordAt(tail, eocdAt)!;
  const trailingBytes = tail.length - (eocdAt + 22 + eocd.commentLength);
  let cdOffset = eocd.cdOffset;
  let cdSize = eocd.cdSize;
  let declared = eocd.entries;
  let zip64: ZipDirectory["zip64"];
  const eocdOffset = tailStart + eocdAt;
  if (eocdOffset >= 20) {
    const loc = await readAt(fh, eocdOffset - 20, 20);
    if (loc.length === 20 && loc.readUInt32LE(0) === SIG_LOCATOR64) {
      const recOffset = Number(loc.readBigUInt64LE(8));
      const rec = await readAt(fh, recOffset, 56);
      if (rec.length < 56 || rec.readUInt32LE(0) !== SIG_END64) throw new ZipFormatError("Zip64 end record missing where its locator points");
      declared = Number(rec.readBigUInt64LE(32));
      cdSize = Number(rec.readBigUInt64LE(40));
      cdOffset = Number(rec.readBigUInt64LE(48));
      zip64 = { recordOffset: recOffset, locatorOffset: eocdOffset - 20 };
    }
  }
  const cdEnd = zip64 ? zip64.recordOffset : eocdOffset;
  if (cdOffset + cdSize > cdEnd) throw new ZipFormatError("central directory runs past the end record (cut short, or data prepended)");
  if (cdSize > MAX_CD_BYTES) throw new ZipFormatError(`central directory of ${cdSize} bytes is larger than the ${MAX_CD_BYTES}-byte limit`);
  // Other end records in the tail that point at a central directory too: a second reader would pick another one.
  const extraEndRecords = candidates.filter((i) => i !== eocdAt).map((i) => tailStart + i);

  const cd = await readAt(fh, cdOffset, cdSize);
  if (cd.length < cdSize) throw new ZipFormatError("central directory cut short");
  const entries: ZipEntryRecord[] = [];
  let p = 0;
  let truncated = false;
  while (p < cd.length) {
    if (entries.length >= maxEntries) {
      truncated = true;
      break;
    }
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== SIG_CENTRAL) throw new ZipFormatError(`central directory record ${entries.length + 1} is damaged`);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    const len = 46 + nameLen + extraLen + commentLen;
    if (p + len > cd.length) throw new ZipFormatError(`central directory record ${entries.length + 1} runs past the directory`);
    const extraFields = parseExtraFields(cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen));
    const v = { uncompressedSize: cd.readUInt32LE(p + 24), compressedSize: cd.readUInt32LE(p + 20), localHeaderOffset: cd.readUInt32LE(p + 42) };
    applyZip64(extraFields, v);
    entries.push({
      index: entries.length,
      rawName: Buffer.from(cd.subarray(p + 46, p + 46 + nameLen)),
      flags: cd.readUInt16LE(p + 8),
      method: cd.readUInt16LE(p + 10),
      versionMadeBy: cd.readUInt16LE(p + 4),
      crc32: cd.readUInt32LE(p + 16),
      compressedSize: v.compressedSize,
      uncompressedSize: v.uncompressedSize,
      localHeaderOffset: v.localHeaderOffset!,
      externalAttributes: cd.readUInt32LE(p + 38),
      extraFields: extraFields.map((f) => ({ id: f.id, data: Buffer.from(f.data) })),
      centralOffset: cdOffset + p,
      centralLength: len,
    });
    p += len;
  }
  if (!truncated && entries.length !== declared && declared !== 0xffff) throw new ZipFormatError(`the end record declares ${declared} entries, the central directory holds ${entries.length}`);

  // Local headers, in file order, a few reads in flight: each header is usually one read (its fixed part, the
  // name the central directory gives and some room for extra fields), a second only for a longer header.
  const order = [...entries].sort((a, b) => a.localHeaderOffset - b.localHeaderOffset);
  await forEachConcurrent(order, LOCAL_READS_IN_FLIGHT, async (e) => {
    if (e.localHeaderOffset + 30 > fileSize) {
      e.localError = "local header past the end of the file";
      return;
    }
    const first = await readAt(fh, e.localHeaderOffset, 30 + e.rawName.length + LOCAL_EXTRA_GUESS);
    const head = first.subarray(0, 30);
    if (head.length < 30 || head.readUInt32LE(0) !== SIG_LOCAL) {
      e.localError = "no local header where the central directory points";
      return;
    }
    const nameLen = head.readUInt16LE(26);
    const extraLen = head.readUInt16LE(28);
    const rest = first.length >= 30 + nameLen + extraLen ? first.subarray(30, 30 + nameLen + extraLen) : await readAt(fh, e.localHeaderOffset + 30, nameLen + extraLen);
    if (rest.length < nameLen + extraLen) {
      e.localError = "local header cut short";
      return;
    }
    const extraFields = parseExtraFields(rest.subarray(nameLen));
    const v = { uncompressedSize: head.readUInt32LE(22), compressedSize: head.readUInt32LE(18) };
    try {
      applyZip64(extraFields, v);
    } catch (err) {
      e.localError = (err as Error).message;
      return;
    }
    e.local = {
      rawName: Buffer.from(rest.subarray(0, nameLen)),
      flags: head.readUInt16LE(6),
      method: head.readUInt16LE(8),
      crc32: head.readUInt32LE(14),
      compressedSize: v.compressedSize,
      uncompressedSize: v.uncompressedSize,
      extraFields: extraFields.map((f) => ({ id: f.id, data: Buffer.from(f.data) })),
      extraLength: extraLen,
      dataStart: e.localHeaderOffset + 30 + nameLen + extraLen,
    };
  });
  for (const e of order) if (e.local && (e.local.flags & 0x8) !== 0) e.descriptor = await dataDescriptorAt(fh, e);

  // What no record accounts for: a second reader scanning local headers (a streaming unzip) would find what hides there.
  const gaps: ZipDirectory["gaps"] = [];
  if (!truncated) {
    const spans: Array<[number, number]> = order.map((e) => [e.localHeaderOffset, e.local ? e.local.dataStart + e.compressedSize + (e.descriptor?.length ?? 0) : e.localHeaderOffset + 30]);
    spans.push([cdOffset, cdOffset + cdSize]);
    if (zip64) spans.push([zip64.recordOffset, eocdOffset]);
    spans.push([eocdOffset, fileSize - trailingBytes]);
    spans.sort((a, b) => a[0] - b[0]);
    let at = 0;
    let scanned = 0;
    for (const [s0, s1] of spans) {
      if (s0 > at) {
        const length = s0 - at;
        const look = Math.min(length, Math.max(0, 16 * 1024 * 1024 - scanned));
        scanned += look;
        const buf = look > 0 ? await readAt(fh, at, look) : Buffer.alloc(0);
        gaps.push({ offset: at, length, localHeader: buf.includes(LOCAL_SIG_BYTES) || look < length });
      }
      at = Math.max(at, s1);
    }
  }
  // An end record inside an entry's data is that entry's business (a stored zip inside the zip); one anywhere
  // else (in the comment, between entries) is a second story another reader may believe.
  const inData = (off: number) => order.some((e) => e.local !== undefined && off >= e.local.dataStart && off + 22 <= e.local.dataStart + e.compressedSize);
  const otherEnds = extraEndRecords.filter((off) => !inData(off));
  return { fileSize, entries, cdOffset, cdSize, eocdOffset, zip64, extraEndRecords: otherEnds, trailingBytes, declaredEntries: declared, truncated, gaps };
}

const LOCAL_SIG_BYTES = Buffer.alloc(4);
LOCAL_SIG_BYTES.writeUInt32LE(SIG_LOCAL, 0);

/** Length of the data descriptor that follows an entry's data (0 when bit 3 is not set); read from the file. */
export async function dataDescriptorAt(fh: FileHandle, e: ZipEntryRecord): Promise<{ length: number; crc32: number; compressedSize: number; uncompressedSize: number } | undefined> {
  if (!e.local || (e.local.flags & 0x8) === 0) return undefined;
  const at = e.local.dataStart + e.compressedSize;
  const buf = await readAt(fh, at, 24);
  let i = 0;
  if (buf.length >= 4 && buf.readUInt32LE(0) === SIG_DESCRIPTOR) i = 4;
  const zip64 = e.compressedSize >= 0xffffffff || e.uncompressedSize >= 0xffffffff || e.local.extraFields.some((f) => f.id === 0x0001);
  const need = i + (zip64 ? 20 : 12);
  if (buf.length < need) return undefined;
  return zip64
    ? { length: need, crc32: buf.readUInt32LE(i), compressedSize: Number(buf.readBigUInt64LE(i + 4)), uncompressedSize: Number(buf.readBigUInt64LE(i + 12)) }
    : { length: need, crc32: buf.readUInt32LE(i), compressedSize: buf.readUInt32LE(i + 4), uncompressedSize: buf.readUInt32LE(i + 8) };
}

/** Compression methods this reader decompresses itself. */
export const NATIVE_METHODS = new Set([0, 8]);

/**
 * The decompressed bytes of one entry, read from the open descriptor: exactly its compressed size from its data
 * start, inflated, and stopped with an error as soon as it yields more than it declares (a lying size never
 * fills a disk). Only stored and deflated entries; others go through the archive tool (see archives.ts).
 */
export function openEntryData(fh: FileHandle, e: ZipEntryRecord): Readable {
  if (!e.local) throw new ZipFormatError("entry has no readable local header");
  if (!NATIVE_METHODS.has(e.method)) throw new ZipFormatError(`compression method ${e.method} is not read natively`);
  // By descriptor number: FileHandle.createReadStream adds a "close" listener to the handle per stream and never
  // removes it (one per entry: thousands on a large package, and a MaxListenersExceededWarning on stderr).
  // Read buffers sized to the entry (at most 1 MiB): a 1 MiB buffer per small entry is garbage to collect.
  const highWaterMark = Math.min(1024 * 1024, Math.max(64 * 1024, e.compressedSize));
  const raw = createReadStream("", { fd: fh.fd, start: e.local.dataStart, end: e.local.dataStart + e.compressedSize - 1, autoClose: false, highWaterMark });
  if (e.compressedSize === 0) {
    raw.destroy();
    const empty = new PassThrough();
    empty.end();
    return empty;
  }
  const limit = e.uncompressedSize;
  let seen = 0;
  const guard = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > limit) cb(new Error(`entry holds more than the ${limit} bytes it declares`));
      else cb(null, chunk);
    },
    flush(cb) {
      cb(seen === limit ? null : new Error(`entry holds ${seen} bytes, not the ${limit} it declares`));
    },
  });
  const forward = (from: Readable, to: Transform) => from.on("error", (err) => to.destroy(err));
  if (e.method === 0) {
    forward(raw, guard);
    return raw.pipe(guard);
  }
  // Output pieces sized to the entry, up to 1 MiB: each piece is one round trip between the thread pool and the
  // main thread, and a fresh buffer (smaller pieces cost more CPU per byte than they save in memory).
  const inflate = createInflateRaw({ chunkSize: Math.min(1024 * 1024, Math.max(64 * 1024, e.uncompressedSize)) });
  forward(raw, inflate);
  forward(inflate, guard);
  return raw.pipe(inflate).pipe(guard);
}
