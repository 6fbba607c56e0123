import { open, type FileHandle } from "node:fs/promises";
import { constants as zlibConstants, inflateRawSync } from "node:zlib";
import dicomParser from "dicom-parser";
import type { ByteArrayParser, Element } from "dicom-parser";
import { InputError, type ErrorOptions } from "../errors.js";
import { msg, type LocalText } from "../i18n/index.js";
import { decodePersonName, decodeText, maxValueBytes, parseSpecificCharacterSet, trimValue } from "./charset.js";
import type { DicomHeader } from "./types.js";
import { readFully, type PositionalReader } from "../util/read-fully.js";

/** Media Storage SOP Class of a DICOMDIR. */
export const DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10";

const TS_IMPLICIT_LE = "1.2.840.10008.1.2";
const TS_EXPLICIT_LE = "1.2.840.10008.1.2.1";
const TS_DEFLATED = "1.2.840.10008.1.2.1.99";
const TS_EXPLICIT_BE = "1.2.840.10008.1.2.2";

/** Bytes read first; pack's scan reads this much of every file, so one read classifies a file and parses its header. */
export const FIRST_CHUNK = 16 * 1024;
/** Default cap on header bytes read: generous for private blocks, still bounded. */
const DEFAULT_MAX_BYTES = 8 * 1024 * 1024;
/** Cap on inflated bytes for the deflated transfer syntax (protects against deflate bombs). */
const MAX_INFLATED = 64 * 1024 * 1024;
/** Parsing stops at the first element after group 0020: everything scanbridge reads lives before it. */
const LAST_WANTED_TAG = 0x0020ffff;
/** The Directory Record Sequence of a DICOMDIR can be megabytes; its records are not needed here. */
const DIRECTORY_RECORD_SEQUENCE = 0x00041220;
const PIXEL_DATA = 0x7fe00010;
const UNDEFINED_LENGTH = 0xffffffff;
const MAX_SKIM_ELEMENTS = 1024;

const VALID_VRS = new Set([
  "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "OB", "OD", "OF", "OL", "OV", "OW", "PN", "SH",
  "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US", "UT", "UV",
]);
const LONG_LENGTH_VRS = new Set(["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"]);

/** Why a DICOM file could not be read. */
export type DicomReadErrorCode = "DICOM_UNREADABLE" | "DICOM_TRUNCATED";

/** A file that looks like DICOM but cannot be parsed, or ends early. The message never contains PHI; the path is in privateLines. */
export class DicomReadError extends InputError {
  constructor(code: DicomReadErrorCode, message: string | LocalText, opts: ErrorOptions = {}) {
    super(code, message, opts);
  }
}

/** Options of readDicomHeader. */
export interface ReadDicomHeaderOptions {
  /** Most bytes read before giving up on a header (default 8 MiB). */
  maxBytes?: number;
  /**
   * Return the header of a file that ends early (cut inside its pixel data, or anywhere after its patient module)
   * with `truncated` saying what is missing, instead of throwing DICOM_TRUNCATED. The wrong-patient guard uses it:
   * a damaged image still names its patient.
   */
  tolerateTruncation?: boolean;
}

/** The tags read, with the VR used to decode them (implicit VR files do not say). */
const WANTED: ReadonlyArray<readonly [string, keyof DicomHeader | "charset", string]> = [
  ["x00080005", "charset", "CS"],
  ["x00080016", "sopClassUid", "UI"],
  ["x00080018", "sopInstanceUid", "UI"],
  ["x00080020", "studyDate", "DA"],
  ["x00080030", "studyTime", "TM"],
  ["x00080050", "accessionNumber", "SH"],
  ["x00080060", "modality", "CS"],
  ["x00080080", "institutionName", "LO"],
  ["x00080090", "referringPhysicianName", "PN"],
  ["x00081030", "studyDescription", "LO"],
  ["x0008103e", "seriesDescription", "LO"],
  ["x00100010", "patientName", "PN"],
  ["x00100020", "patientId", "LO"],
  ["x00100021", "issuerOfPatientId", "LO"],
  ["x00100030", "patientBirthDate", "DA"],
  ["x00100040", "patientSex", "CS"],
  ["x00180015", "bodyPartExamined", "CS"],
  ["x0020000d", "studyInstanceUid", "UI"],
  ["x0020000e", "seriesInstanceUid", "UI"],
  ["x00200010", "studyId", "SH"],
  ["x00200011", "seriesNumber", "IS"],
  ["x00200013", "instanceNumber", "IS"],
];

interface DatasetLayout {
  transferSyntaxUid: string;
  explicit: boolean;
  bigEndian: boolean;
  deflated: boolean;
}

type ParseOutcome =
  | { kind: "more" }
  | { kind: "truncated"; what: string }
  | { kind: "unreadable"; what: string }
  | {
      kind: "done";
      header: Omit<DicomHeader, "bytesRead">;
      /** File offset where parsing stopped (undefined when it cannot be mapped to the file, as with deflate). */
      stopOffset: number | undefined;
      layout: DatasetLayout;
      /** The file ended inside this part, after the patient module had been read. */
      truncated?: string;
    };

/** An element's value bytes, cut to its VR's maximum length before anything else touches them. */
function readRaw(bytes: Uint8Array, el: Element | undefined, vr: string): Uint8Array | undefined {
  if (!el || el.length === 0 || el.length === UNDEFINED_LENGTH) return undefined;
  const end = Math.min(el.dataOffset + Math.min(el.length, maxValueBytes(vr)), bytes.length);
  return end > el.dataOffset ? bytes.subarray(el.dataOffset, end) : undefined;
}

function readAscii(bytes: Uint8Array, el: Element | undefined, vr = "UI"): string | undefined {
  const raw = readRaw(bytes, el, vr);
  if (!raw) return undefined;
  const v = trimValue(Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString("latin1"), vr);
  return v === "" ? undefined : v;
}

/** Guess the encoding of a dataset that has no File Meta Information, from its first element. */
function guessLayout(bytes: Uint8Array, pos: number): DatasetLayout {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (pos + 6 <= b.length) {
    const vr = b.toString("latin1", pos + 4, pos + 6);
    const groupLE = b.readUInt16LE(pos);
    const groupBE = b.readUInt16BE(pos);
    if (VALID_VRS.has(vr) && groupLE <= 0x00ff && groupLE !== 0) return layoutOf(TS_EXPLICIT_LE);
    if (VALID_VRS.has(vr) && groupBE <= 0x00ff && groupBE !== 0) return layoutOf(TS_EXPLICIT_BE);
  }
  return layoutOf(TS_IMPLICIT_LE);
}

function layoutOf(ts: string): DatasetLayout {
  return {
    transferSyntaxUid: ts,
    explicit: ts !== TS_IMPLICIT_LE,
    bigEndian: ts === TS_EXPLICIT_BE,
    deflated: ts === TS_DEFLATED,
  };
}

/** Parse the File Meta Information group starting at `pos`; "more" when the buffer ends inside it. */
function parseMeta(bytes: Uint8Array, pos: number, eof: boolean): { elements: Record<string, Element>; end: number } | ParseOutcome {
  if (pos + 8 > bytes.length) return eof ? { kind: "truncated", what: "file meta information" } : { kind: "more" };
  const stream = new dicomParser.ByteStream(dicomParser.littleEndianByteArrayParser, bytes, pos);
  const elements: Record<string, Element> = {};
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  while (true) {
    if (stream.position + 8 > bytes.length) return eof ? ({ kind: "truncated", what: "file meta information" } as const) : { kind: "more" };
    if (b.readUInt16LE(stream.position) !== 0x0002) break;
    try {
      const el = dicomParser.readDicomElementExplicit(stream, []);
      elements[el.tag] = el;
    } catch {
      return eof ? { kind: "truncated", what: "file meta information" } : { kind: "more" };
    }
    if (stream.position > bytes.length) return eof ? { kind: "truncated", what: "file meta information" } : { kind: "more" };
  }
  return { elements, end: stream.position };
}

function inflateDataset(compressed: Uint8Array): Buffer {
  return inflateRawSync(compressed, { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: MAX_INFLATED });
}

/** Parse the header from the first `buf.length` bytes of a file; `eof` tells whether they are the whole file. */
function parseHeaderBytes(buf: Uint8Array, eof: boolean): ParseOutcome {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
  let pos = 0;
  let hasMeta = false;
  if (b.length >= 132 && b.toString("latin1", 128, 132) === "DICM") {
    pos = 132;
    hasMeta = true;
  } else if (b.toString("latin1", 0, 4) === "DICM") {
    pos = 4;
    hasMeta = true;
  } else if (b.length < 132 && !eof) {
    return { kind: "more" };
  } else if (b.length >= 8 && b.readUInt16LE(0) === 0x0002 && VALID_VRS.has(b.toString("latin1", 4, 6))) {
    hasMeta = true; // File Meta Information without the preamble
  }

  let meta: Record<string, Element> = {};
  if (hasMeta) {
    const m = parseMeta(buf, pos, eof);
    if ("kind" in m) return m;
    meta = m.elements;
    pos = m.end;
  }
  const metaTs = readAscii(buf, meta["x00020010"]);
  let layout = metaTs ? layoutOf(metaTs) : guessLayout(buf, pos);
  // Some writers mislabel implicit VR data as explicit or the reverse; trust the bytes of the first element.
  if (!layout.deflated && !layout.bigEndian && pos + 8 <= b.length) {
    const looksExplicit = VALID_VRS.has(b.toString("latin1", pos + 4, pos + 6));
    if (layout.explicit && !looksExplicit) layout = { ...layoutOf(TS_IMPLICIT_LE), transferSyntaxUid: layout.transferSyntaxUid };
    else if (!layout.explicit && looksExplicit && b.readUInt32LE(pos + 4) > 0xffff) {
      layout = { ...layoutOf(TS_EXPLICIT_LE), transferSyntaxUid: layout.transferSyntaxUid };
    }
  }
  if (!hasMeta && pos === 0 && b.length >= 8) {
    const group = layout.bigEndian ? b.readUInt16BE(0) : b.readUInt16LE(0);
    if (group > 0x0010 || group % 2 === 1) return { kind: "unreadable", what: "not a DICOM data set" };
  }

  let data: Uint8Array = buf;
  let dataEof = eof;
  let start = pos;
  if (layout.deflated) {
    try {
      data = inflateDataset(buf.subarray(pos));
    } catch (err) {
      if (err instanceof RangeError) return { kind: "unreadable", what: "deflated data set too large" };
      return eof ? { kind: "unreadable", what: "deflated data set is corrupt" } : { kind: "more" };
    }
    start = 0;
    dataEof = eof;
  }

  // A file that ends right after its File Meta Information has no data set: it was cut short.
  if (start >= data.length) return dataEof ? { kind: "truncated", what: "data set" } : { kind: "more" };
  const parser: ByteArrayParser = layout.bigEndian ? dicomParser.bigEndianByteArrayParser : dicomParser.littleEndianByteArrayParser;
  const stream = new dicomParser.ByteStream(parser, data, start);
  const elements: Record<string, Element> = {};
  const warnings: string[] = [];
  let stopOffset: number | undefined;
  let truncated: string | undefined;
  while (true) {
    const p = stream.position;
    if (p >= data.length) {
      if (!dataEof) return { kind: "more" };
      break;
    }
    if (p + 8 > data.length) {
      if (!dataEof) return { kind: "more" };
      truncated = "data element header";
      break;
    }
    const tag = ((parser.readUint16(data, p) << 16) | parser.readUint16(data, p + 2)) >>> 0;
    if (tag > LAST_WANTED_TAG || tag === DIRECTORY_RECORD_SEQUENCE) {
      stopOffset = p;
      break;
    }
    let el: Element;
    try {
      el = layout.explicit ? dicomParser.readDicomElementExplicit(stream, warnings) : dicomParser.readDicomElementImplicit(stream);
    } catch {
      if (!dataEof) return { kind: "more" };
      truncated = "data element";
      break;
    }
    if (stream.position > data.length) {
      if (!dataEof) return { kind: "more" };
      truncated = "data element value";
      break;
    }
    elements[el.tag] = el;
  }
  // A file cut short still names its patient when the cut comes after the patient module; before it, it cannot be checked.
  if (truncated !== undefined && !(elements["x00100010"] || elements["x00100020"])) return { kind: "truncated", what: truncated };

  const charsets = parseSpecificCharacterSet(readAscii(data, elements["x00080005"], "CS"));
  const header: Omit<DicomHeader, "bytesRead"> = { isDicomdir: false, transferSyntaxUid: layout.transferSyntaxUid };
  if (charsets.length > 0) header.specificCharacterSet = charsets;
  for (const [tag, key, vr] of WANTED) {
    if (key === "charset") continue;
    const el = elements[tag];
    if (!el) continue;
    if (vr === "PN") {
      const raw = readRaw(data, el, vr);
      if (raw) {
        const name = decodePersonName(raw, charsets);
        if (name.alphabetic || name.ideographic || name.phonetic) (header as Record<string, unknown>)[key] = name;
      }
    } else if (vr === "LO" || vr === "SH") {
      const raw = readRaw(data, el, vr);
      const text = raw ? trimValue(decodeText(raw, charsets, vr), vr) : "";
      if (text !== "") (header as Record<string, unknown>)[key] = text;
    } else {
      const text = readAscii(data, el, vr);
      if (text !== undefined) (header as Record<string, unknown>)[key] = text;
    }
  }
  const mediaClass = readAscii(buf, meta["x00020002"]);
  const mediaInstance = readAscii(buf, meta["x00020003"]);
  if (header.sopClassUid === undefined && mediaClass !== undefined) header.sopClassUid = mediaClass;
  if (header.sopInstanceUid === undefined && mediaInstance !== undefined) header.sopInstanceUid = mediaInstance;
  header.isDicomdir =
    mediaClass === DICOMDIR_SOP_CLASS ||
    header.sopClassUid === DICOMDIR_SOP_CLASS ||
    (stopOffset !== undefined && tagAt(data, parser, stopOffset) === DIRECTORY_RECORD_SEQUENCE);
  if (!hasMeta && Object.keys(elements).length === 0) return { kind: "unreadable", what: "no data elements" };
  return { kind: "done", header, stopOffset: layout.deflated ? undefined : stopOffset, layout, ...(truncated ? { truncated } : {}) };
}

function tagAt(data: Uint8Array, parser: ByteArrayParser, p: number): number {
  return ((parser.readUint16(data, p) << 16) | parser.readUint16(data, p + 2)) >>> 0;
}

/** What the header reader needs of an open file: positional reads (a FileHandle, or a synchronous descriptor's adapter). */
export type { PositionalReader };

/** Reads ranges of one open file, counting the bytes. */
class CountingReader {
  bytesRead = 0;
  constructor(private readonly fh: PositionalReader) {}

  async read(position: number, length: number): Promise<Buffer> {
    const out = await readFully(this.fh, Buffer.alloc(length), position);
    this.bytesRead += out.length;
    return out;
  }
}

/**
 * Walk element headers after the parsed part without reading values, to check that the pixel data is complete.
 * Returns a description of what is missing, or undefined when the file is whole or cannot be checked cheaply.
 */
async function findTruncationAfter(reader: CountingReader, head: Buffer, from: number, size: number, layout: DatasetLayout): Promise<string | undefined> {
  let pos = from;
  const u16 = (b: Buffer, o: number): number => (layout.bigEndian ? b.readUInt16BE(o) : b.readUInt16LE(o));
  const u32 = (b: Buffer, o: number): number => (layout.bigEndian ? b.readUInt32BE(o) : b.readUInt32LE(o));
  for (let steps = 0; steps < MAX_SKIM_ELEMENTS && pos < size; steps++) {
    const h = pos + 12 <= head.length ? head.subarray(pos, pos + 12) : await reader.read(pos, 12);
    if (h.length < 8) return "data element header";
    const tag = ((u16(h, 0) << 16) | u16(h, 2)) >>> 0;
    let headerLength = 8;
    let length: number;
    if (layout.explicit) {
      const vr = h.toString("latin1", 4, 6);
      if (!VALID_VRS.has(vr)) return undefined; // not a plain element header: do not guess
      if (LONG_LENGTH_VRS.has(vr)) {
        if (h.length < 12) return "data element header";
        headerLength = 12;
        length = u32(h, 8);
      } else {
        length = u16(h, 6);
      }
    } else {
      length = u32(h, 4);
    }
    if (length === UNDEFINED_LENGTH) {
      if (tag !== PIXEL_DATA) return undefined;
      return findFragmentTruncation(reader, pos + headerLength, size, u16, u32);
    }
    if (pos + headerLength + length > size) return tag === PIXEL_DATA ? "pixel data" : "data element value";
    if (tag === PIXEL_DATA) return undefined;
    pos += headerLength + length;
  }
  return undefined;
}

/** Most fragment items walked in encapsulated pixel data (a multi-frame CT can have thousands). */
const MAX_FRAGMENTS = 1 << 16;

/**
 * Walk the items of encapsulated pixel data (the Basic Offset Table, then one item per fragment) up to the Sequence
 * Delimitation Item (FFFE,E0DD). What follows the delimiter (trailing padding (FFFC,FFFC), vendor bytes) does not
 * matter. Returns "encapsulated pixel data" when the file ends before the delimiter, undefined otherwise (also when
 * the items cannot be walked cheaply: the header was read, so the patient is known either way).
 */
async function findFragmentTruncation(reader: CountingReader, from: number, size: number, u16: (b: Buffer, o: number) => number, u32: (b: Buffer, o: number) => number): Promise<string | undefined> {
  let pos = from;
  for (let steps = 0; steps < MAX_FRAGMENTS; steps++) {
    if (pos + 8 > size) return "encapsulated pixel data";
    const h = await reader.read(pos, 8);
    if (h.length < 8) return "encapsulated pixel data";
    const group = u16(h, 0);
    const element = u16(h, 2);
    if (group !== 0xfffe) return undefined; // not an item: do not guess
    if (element === 0xe0dd) return undefined;
    if (element !== 0xe000) return undefined;
    const length = u32(h, 4);
    if (length === UNDEFINED_LENGTH) return undefined;
    if (pos + 8 + length > size) return "encapsulated pixel data";
    pos += 8 + length;
  }
  return undefined;
}

function describeFsError(err: unknown, path: string): DicomReadError {
  const e = err as NodeJS.ErrnoException;
  return new DicomReadError("DICOM_UNREADABLE", msg("dicom.cannotOpen", { reason: e?.code ?? "error" }), {
    cause: err,
    privateLines: [path],
    details: { reason: e?.code ?? "io" },
  });
}

/**
 * Read a DICOM file's header without its pixel data: reads 16 KiB, doubling while the header goes on, up to `maxBytes`.
 * Handles Part 10 files with or without preamble, raw data sets, implicit/explicit VR, big endian, deflate and DICOMDIR.
 * Throws DicomReadError (DICOM_UNREADABLE, DICOM_TRUNCATED) when the file cannot be used.
 */
export async function readDicomHeader(path: string, opts: ReadDicomHeaderOptions = {}): Promise<DicomHeader> {
  const tolerate = opts.tolerateTruncation === true;
  const maxBytes = Math.max(opts.maxBytes ?? DEFAULT_MAX_BYTES, 256);
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (err) {
    throw describeFsError(err, path);
  }
  try {
    return await readHeaderFrom(fh, path, maxBytes, tolerate, { head: Buffer.alloc(0), size: (await fh.stat()).size });
  } catch (err) {
    throw err instanceof DicomReadError ? err : describeFsError(err, path);
  } finally {
    await fh.close();
  }
}

/**
 * readDicomHeader on a file already open, whose first bytes (`head`, from position 0) and size were already read:
 * pack's scan classifies and inspects a file with one open and one read. `fh` stays open.
 */
export async function readDicomHeaderFromOpen(fh: PositionalReader, path: string, start: { head: Buffer; size: number }, opts: ReadDicomHeaderOptions = {}): Promise<DicomHeader> {
  try {
    return await readHeaderFrom(fh, path, Math.max(opts.maxBytes ?? DEFAULT_MAX_BYTES, 256), opts.tolerateTruncation === true, start);
  } catch (err) {
    throw err instanceof DicomReadError ? err : describeFsError(err, path);
  }
}

/** The reading loop of readDicomHeader on an open file. */
async function readHeaderFrom(fh: PositionalReader, path: string, maxBytes: number, tolerate: boolean, start: { head: Buffer; size: number }): Promise<DicomHeader> {
  const size = start.size;
  const reader = new CountingReader(fh);
  let head = start.head.subarray(0, Math.min(start.head.length, maxBytes));
  reader.bytesRead = head.length;
  let want = Math.min(FIRST_CHUNK, size, maxBytes);
  const fail = (code: DicomReadErrorCode, message: string, reason: string): DicomReadError =>
    new DicomReadError(code, message, {
      privateLines: [path],
      details: { reason, bytesRead: reader.bytesRead, size },
      hint: code === "DICOM_TRUNCATED" ? msg("dicom.truncated.hint") : undefined,
    });
  while (true) {
    if (want > head.length) head = Buffer.concat([head, await reader.read(head.length, want - head.length)]);
    const eof = head.length >= size;
    let outcome: ParseOutcome;
    try {
      outcome = parseHeaderBytes(head, eof);
    } catch (err) {
      throw new DicomReadError("DICOM_UNREADABLE", msg("dicom.unparsable"), {
        cause: err,
        privateLines: [path],
        details: { reason: "parse", bytesRead: reader.bytesRead, size },
      });
    }
    if (outcome.kind === "done") {
      let missing = outcome.truncated;
      if (missing === undefined && outcome.stopOffset !== undefined && !outcome.header.isDicomdir) {
        missing = await findTruncationAfter(reader, head, outcome.stopOffset, size, outcome.layout);
      }
      if (missing && !tolerate) throw fail("DICOM_TRUNCATED", `DICOM file is truncated: it ends inside the ${missing}`, missing);
      return { ...outcome.header, ...(missing ? { truncated: missing } : {}), bytesRead: reader.bytesRead };
    }
    if (outcome.kind === "truncated") throw fail("DICOM_TRUNCATED", `DICOM file is truncated: it ends inside a ${outcome.what}`, outcome.what);
    if (outcome.kind === "unreadable") throw fail("DICOM_UNREADABLE", `DICOM file could not be read: ${outcome.what}`, outcome.what);
    if (head.length >= maxBytes) {
      throw fail("DICOM_UNREADABLE", `DICOM header is longer than ${maxBytes} bytes`, "header-too-large");
    }
    want = Math.min(head.length * 2, size, maxBytes);
  }
}
