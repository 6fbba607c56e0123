/*
 * A DICOMDIR (PS3.10 Media Storage Directory, PS3.3 F.3) written in TypeScript, explicit VR little endian:
 * File Meta Information, File-set Identification, and one Directory Record Sequence of explicit length whose
 * records are linked by byte offsets. Every item's size is known before any offset is filled in (offsets are
 * fixed 4-byte UL values), so the layout is computed once, then the offsets are written.
 */
import { randomUUID } from "node:crypto";

/** Media Storage SOP Class of a DICOMDIR. */
export const MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10";
/** Explicit VR Little Endian: the only transfer syntax a DICOMDIR may use. */
export const EXPLICIT_VR_LE = "1.2.840.10008.1.2.1";
/** scanbridge's implementation class UID (a UUID-derived 2.25 UID, fixed). */
export const IMPLEMENTATION_CLASS_UID = "2.25.187826871238067477955043998373562988697";

/** One data element of a directory record; strings are padded as their VR requires. */
export interface DirElement {
  tag: number;
  vr: "CS" | "DA" | "TM" | "SH" | "LO" | "PN" | "UI" | "IS";
  /** Text value (already within its VR's length); multi-valued CS values joined with "\\". */
  value: string;
}

/** A directory record and the records below it (a PATIENT's studies, a STUDY's series, a SERIES' images). */
export interface DirRecord {
  /** Directory Record Type (0004,1430): PATIENT, STUDY, SERIES, IMAGE, ... */
  type: string;
  elements: DirElement[];
  children: DirRecord[];
}

/** What goes in the DICOMDIR besides its records. */
export interface DicomdirOptions {
  /** File-set ID (0004,1130): up to 16 of A-Z 0-9 _ (see fileSetIdFrom). */
  fileSetId: string;
  /** Implementation Version Name (0002,0013), up to 16 characters. */
  implementationVersion: string;
  /** Media Storage SOP Instance UID; a new 2.25 UID when absent. */
  sopInstanceUid?: string;
  roots: DirRecord[];
}

const TAG_NEXT = 0x00041400;
const TAG_IN_USE = 0x00041410;
const TAG_LOWER = 0x00041420;
const TAG_TYPE = 0x00041430;
const SPECIFIC_CHARACTER_SET = 0x00080005;

/** A new UID under 2.25 (a UUID as a decimal integer), as PS3.5 B.2 allows. */
export function newUid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replace(/-/g, "")}`).toString()}`;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

function tagBytes(tag: number): Buffer {
  return Buffer.concat([u16(tag >>> 16), u16(tag & 0xffff)]);
}

/** One explicit VR LE element with a short (16-bit) length or, for OB/SQ/UN, the long form. */
function encodeElement(tag: number, vr: string, value: Buffer): Buffer {
  if (vr === "OB" || vr === "SQ" || vr === "UN") return Buffer.concat([tagBytes(tag), Buffer.from(vr, "latin1"), Buffer.alloc(2), u32(value.length), value]);
  if (value.length > 0xffff) throw new Error(`DICOMDIR element (${tag.toString(16)}) too long`);
  return Buffer.concat([tagBytes(tag), Buffer.from(vr, "latin1"), u16(value.length), value]);
}

/** A text value padded to even length: UI with NUL, everything else with a space. */
function textValue(vr: string, text: string, utf8: boolean): Buffer {
  const b = Buffer.from(text, utf8 ? "utf8" : "latin1");
  if (b.length % 2 === 0) return b;
  return Buffer.concat([b, Buffer.from([vr === "UI" ? 0 : 0x20])]);
}

/** The File Meta Information (with preamble and "DICM") of a DICOMDIR. */
function fileMeta(sopInstanceUid: string, version: string): Buffer {
  const rest = Buffer.concat([
    encodeElement(0x00020001, "OB", Buffer.from([0, 1])),
    encodeElement(0x00020002, "UI", textValue("UI", MEDIA_STORAGE_DIRECTORY, false)),
    encodeElement(0x00020003, "UI", textValue("UI", sopInstanceUid, false)),
    encodeElement(0x00020010, "UI", textValue("UI", EXPLICIT_VR_LE, false)),
    encodeElement(0x00020012, "UI", textValue("UI", IMPLEMENTATION_CLASS_UID, false)),
    encodeElement(0x00020013, "SH", textValue("SH", version.slice(0, 16), false)),
  ]);
  return Buffer.concat([Buffer.alloc(128), Buffer.from("DICM", "latin1"), encodeElement(0x00020000, "UL", u32(rest.length)), rest]);
}

/** Whether a text needs ISO_IR 192 (anything outside printable ASCII). */
function needsUtf8(text: string): boolean {
  return /[^\x20-\x7e]/.test(text);
}

/** A record's elements (without its three offsets), sorted by tag, the character set added when needed. */
function recordBody(r: DirRecord, offsets: { next: number; lower: number }): Buffer {
  const utf8 = r.elements.some((e) => needsUtf8(e.value));
  const els: Array<{ tag: number; bytes: Buffer }> = [
    { tag: TAG_NEXT, bytes: encodeElement(TAG_NEXT, "UL", u32(offsets.next)) },
    { tag: TAG_IN_USE, bytes: encodeElement(TAG_IN_USE, "US", u16(0xffff)) },
    { tag: TAG_LOWER, bytes: encodeElement(TAG_LOWER, "UL", u32(offsets.lower)) },
    { tag: TAG_TYPE, bytes: encodeElement(TAG_TYPE, "CS", textValue("CS", r.type, false)) },
  ];
  if (utf8) els.push({ tag: SPECIFIC_CHARACTER_SET, bytes: encodeElement(SPECIFIC_CHARACTER_SET, "CS", textValue("CS", "ISO_IR 192", false)) });
  for (const e of r.elements) els.push({ tag: e.tag, bytes: encodeElement(e.tag, e.vr, textValue(e.vr, e.value, utf8)) });
  els.sort((a, b) => a.tag - b.tag);
  return Buffer.concat(els.map((e) => e.bytes));
}

/** Records in the order they are stored: depth first, each record before the records below it. */
function depthFirst(roots: DirRecord[]): DirRecord[] {
  const out: DirRecord[] = [];
  const stack = [...roots].reverse();
  while (stack.length > 0) {
    const r = stack.pop()!;
    out.push(r);
    for (let i = r.children.length - 1; i >= 0; i--) stack.push(r.children[i]!);
  }
  return out;
}

/**
 * Encode a DICOMDIR. Offsets (first/last root record, next record, lower-level record) are byte offsets from the
 * first byte of the file (the preamble), as PS3.10 defines them; 0 means "none".
 */
export function encodeDicomdir(opts: DicomdirOptions): Buffer {
  const meta = fileMeta(opts.sopInstanceUid ?? newUid(), opts.implementationVersion);
  const order = depthFirst(opts.roots);
  // Item sizes do not depend on offset values: lay out with zeros, then encode with the real offsets.
  const sizes = order.map((r) => 8 + recordBody(r, { next: 0, lower: 0 }).length);
  const head = (first: number, last: number) =>
    Buffer.concat([
      encodeElement(0x00041130, "CS", textValue("CS", opts.fileSetId, false)),
      encodeElement(0x00041200, "UL", u32(first)),
      encodeElement(0x00041202, "UL", u32(last)),
      encodeElement(0x00041212, "US", u16(0)),
    ]);
  const seqLength = sizes.reduce((a, b) => a + b, 0);
  const sequenceHeader = Buffer.concat([tagBytes(0x00041220), Buffer.from("SQ", "latin1"), Buffer.alloc(2), u32(seqLength)]);
  const headLength = head(0, 0).length + sequenceHeader.length;
  const offsetOf = new Map<DirRecord, number>();
  let pos = meta.length + headLength;
  order.forEach((r, i) => {
    offsetOf.set(r, pos);
    pos += sizes[i]!;
  });
  const nextOf = new Map<DirRecord, number>();
  const link = (siblings: DirRecord[]) =>
    siblings.forEach((r, i) => {
      const next = siblings[i + 1];
      nextOf.set(r, next ? offsetOf.get(next)! : 0);
      link(r.children);
    });
  link(opts.roots);
  const items = order.map((r) => {
    const body = recordBody(r, { next: nextOf.get(r)!, lower: r.children[0] ? offsetOf.get(r.children[0])! : 0 });
    return Buffer.concat([tagBytes(0xfffee000), u32(body.length), body]);
  });
  const first = opts.roots[0] ? offsetOf.get(opts.roots[0])! : 0;
  const last = opts.roots.length > 0 ? offsetOf.get(opts.roots[opts.roots.length - 1]!)! : 0;
  return Buffer.concat([meta, head(first, last), sequenceHeader, ...items]);
}
