import { createRequire } from "node:module";
import type { PersonName } from "./types.js";

type Iconv = { decode(bytes: Buffer, encoding: string): string };
let iconvModule: Iconv | undefined;
/** iconv-lite, loaded on first use: files in ISO-IR 6 or ISO-IR 100 (most Western CDs) never need it. */
function iconv(): Iconv {
  return (iconvModule ??= createRequire(import.meta.url)("iconv-lite") as Iconv);
}

/*
 * Decoding of DICOM text values per Specific Character Set (0008,0005), PS3.3 C.12.1.1.2 and PS3.5 §6.1.
 *
 * Single-byte sets and the non-ISO-2022 multi-byte sets (ISO_IR 192, GB18030, GBK) decode the whole value at once.
 * ISO 2022 code extensions (any term starting "ISO 2022") run a small state machine: escape sequences designate a
 * graphic set to G0 (bytes 0x21-0x7E) or G1 (bytes 0xA0-0xFF) and stay in force until the next escape, or until a
 * delimiter/control character resets to the initial state given by value 1 of (0008,0005) (PS3.5 §6.1.2.5.3).
 * Decoding a multi-valued charset as if it were a single charset is the bug in cornerstonejs/dicomParser#89.
 */

/** How one graphic set turns its bytes into text. */
interface GraphicSet {
  /** Bytes per character inside this set (in G0). */
  width: 1 | 2;
  /** Decode a run of bytes (already in the right range) to Unicode. */
  decode(bytes: Uint8Array): string;
}

/** ISO 8859-1 is Node's own latin1 (byte n is U+00nn): no table needed. */
const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("latin1");

const ASCII_SET: GraphicSet = { width: 1, decode: latin1 };

/** JIS X 0201 Romaji in G0: ASCII except 0x5C (yen) and 0x7E (overline); kept as ASCII, as modalities and dcmtk do, so "\\" stays the VM delimiter. */
const JIS_ROMAN_SET: GraphicSet = ASCII_SET;

/** JIS X 0201 Katakana in G1: 0xA1-0xDF map to the half-width katakana block U+FF61-U+FF9F. */
const JIS_KATAKANA_SET: GraphicSet = {
  width: 1,
  decode: (b) => {
    let out = "";
    for (const byte of b) out += byte >= 0xa1 && byte <= 0xdf ? String.fromCharCode(byte + 0xfec0) : "\ufffd";
    return out;
  },
};

function singleByteUpper(encoding: string): GraphicSet {
  return { width: 1, decode: encoding === "iso-8859-1" ? latin1 : (b) => iconv().decode(Buffer.from(b), encoding) };
}

/** A 94x94 set invoked in G0 (bytes 0x21-0x7E): decoded through its EUC form by setting the high bit. */
function eucG0(encoding: string, prefix?: number): GraphicSet {
  return {
    width: 2,
    decode: (b) => {
      const out: number[] = [];
      for (let i = 0; i + 1 < b.length; i += 2) {
        if (prefix !== undefined) out.push(prefix);
        out.push(b[i]! | 0x80, b[i + 1]! | 0x80);
      }
      return iconv().decode(Buffer.from(out), encoding);
    },
  };
}

/** A 94x94 set invoked in G1 (bytes 0xA1-0xFE): the bytes are already its EUC form. */
function eucG1(encoding: string): GraphicSet {
  return { width: 2, decode: (b) => iconv().decode(Buffer.from(b), encoding) };
}

/** Escape sequences (without the leading ESC) of PS3.3 Tables C.12-3 and C.12-4, with the set they designate. */
const ESCAPES: ReadonlyArray<{ seq: number[]; g: 0 | 1; set: GraphicSet }> = [
  { seq: [0x28, 0x42], g: 0, set: ASCII_SET }, // ESC ( B  ISO-IR 6
  { seq: [0x28, 0x4a], g: 0, set: JIS_ROMAN_SET }, // ESC ( J  ISO-IR 14
  { seq: [0x29, 0x49], g: 1, set: JIS_KATAKANA_SET }, // ESC ) I  ISO-IR 13
  { seq: [0x2d, 0x41], g: 1, set: singleByteUpper("iso-8859-1") }, // ESC - A  ISO-IR 100
  { seq: [0x2d, 0x42], g: 1, set: singleByteUpper("iso-8859-2") }, // ESC - B  ISO-IR 101
  { seq: [0x2d, 0x43], g: 1, set: singleByteUpper("iso-8859-3") }, // ESC - C  ISO-IR 109
  { seq: [0x2d, 0x44], g: 1, set: singleByteUpper("iso-8859-4") }, // ESC - D  ISO-IR 110
  { seq: [0x2d, 0x4c], g: 1, set: singleByteUpper("iso-8859-5") }, // ESC - L  ISO-IR 144
  { seq: [0x2d, 0x47], g: 1, set: singleByteUpper("iso-8859-6") }, // ESC - G  ISO-IR 127
  { seq: [0x2d, 0x46], g: 1, set: singleByteUpper("iso-8859-7") }, // ESC - F  ISO-IR 126
  { seq: [0x2d, 0x48], g: 1, set: singleByteUpper("iso-8859-8") }, // ESC - H  ISO-IR 138
  { seq: [0x2d, 0x4d], g: 1, set: singleByteUpper("iso-8859-9") }, // ESC - M  ISO-IR 148
  { seq: [0x2d, 0x62], g: 1, set: singleByteUpper("iso-8859-15") }, // ESC - b  ISO-IR 203
  { seq: [0x2d, 0x54], g: 1, set: singleByteUpper("tis-620") }, // ESC - T  ISO-IR 166
  { seq: [0x24, 0x42], g: 0, set: eucG0("euc-jp") }, // ESC $ B  ISO-IR 87 (JIS X 0208)
  { seq: [0x24, 0x28, 0x44], g: 0, set: eucG0("euc-jp", 0x8f) }, // ESC $ ( D  ISO-IR 159 (JIS X 0212)
  { seq: [0x24, 0x29, 0x43], g: 1, set: eucG1("euc-kr") }, // ESC $ ) C  ISO-IR 149 (KS X 1001)
  { seq: [0x24, 0x29, 0x41], g: 1, set: eucG1("gb2312") }, // ESC $ ) A  ISO-IR 58 (GB 2312)
];

/** A defined term of (0008,0005), normalised: what it selects at the start of a value. */
interface CharsetTerm {
  /** Whole-value decoder for non-ISO-2022 sets. */
  encoding?: string;
  /** Initial G0 and G1 for ISO 2022 decoding. */
  g0: GraphicSet;
  g1?: GraphicSet;
  iso2022: boolean;
}

const SINGLE_BYTE: Record<string, string> = {
  "100": "iso-8859-1",
  "101": "iso-8859-2",
  "109": "iso-8859-3",
  "110": "iso-8859-4",
  "144": "iso-8859-5",
  "127": "iso-8859-6",
  "126": "iso-8859-7",
  "138": "iso-8859-8",
  "148": "iso-8859-9",
  "203": "iso-8859-15",
  "166": "tis-620",
};

const ISO2022_INITIAL_G1: Record<string, GraphicSet | undefined> = {
  "13": JIS_KATAKANA_SET,
  "149": eucG1("euc-kr"),
  "58": eucG1("gb2312"),
};

/** Latin-1 for the default repertoire: real files without (0008,0005) often carry Latin-1 bytes, and ASCII is its subset. */
const DEFAULT_TERM: CharsetTerm = { encoding: "iso-8859-1", g0: ASCII_SET, g1: singleByteUpper("iso-8859-1"), iso2022: false };

function resolveTerm(term: string | undefined): CharsetTerm {
  const t = (term ?? "").toUpperCase().replace(/[^A-Z0-9]/g, "");
  if (t === "" || t === "ISOIR6" || t === "ISO2022IR6") return DEFAULT_TERM;
  if (t === "ISOIR192" || t === "UTF8") return { encoding: "utf8", g0: ASCII_SET, iso2022: false };
  if (t === "GB18030") return { encoding: "gb18030", g0: ASCII_SET, iso2022: false };
  if (t === "GBK") return { encoding: "gbk", g0: ASCII_SET, iso2022: false };
  const m = /^ISO(2022)?IR(\d+)$/.exec(t);
  if (m) {
    const iso2022 = m[1] !== undefined;
    const num = m[2]!;
    if (num === "13") return { encoding: undefined, g0: JIS_ROMAN_SET, g1: JIS_KATAKANA_SET, iso2022: true };
    const single = SINGLE_BYTE[num];
    if (single) return { encoding: single, g0: ASCII_SET, g1: singleByteUpper(single), iso2022 };
    // JIS X 0208/0212 are only reached through escapes; a value still starts in ASCII.
    if (num === "87" || num === "159") return { g0: ASCII_SET, iso2022: true };
    const g1 = ISO2022_INITIAL_G1[num];
    if (g1) return { g0: ASCII_SET, g1, iso2022: true };
  }
  // An unknown term: decode tolerantly rather than refuse the file.
  return DEFAULT_TERM;
}

/** Split the raw value of (0008,0005) into its terms, keeping an empty first value ("\ISO 2022 IR 87"). */
export function parseSpecificCharacterSet(raw: string | undefined): string[] {
  if (raw === undefined) return [];
  const terms = raw.split("\\").map((s) => s.trim());
  while (terms.length > 1 && terms[terms.length - 1] === "") terms.pop();
  return terms.length === 1 && terms[0] === "" ? [] : terms;
}

const ESC = 0x1b;

function isDelimiter(byte: number, vr: string): boolean {
  if (byte === 0x5c) return vr !== "ST" && vr !== "LT" && vr !== "UT";
  if (byte === 0x5e || byte === 0x3d) return vr === "PN";
  // CR, LF, FF, TAB and other control characters except ESC.
  return byte < 0x20 && byte !== ESC;
}

const REPLACEMENT_SET: GraphicSet = { width: 1, decode: (b) => "\ufffd".repeat(b.length) };

function decodeIso2022(bytes: Uint8Array, initial: CharsetTerm, vr: string): string {
  let g0 = initial.g0;
  let g1 = initial.g1;
  // Some writers designate G1 once and rely on it after delimiters; fall back to it rather than lose the text.
  let lastG1 = initial.g1;
  let out = "";
  let runSet: GraphicSet | undefined;
  let runStart = 0;
  const flush = (end: number): void => {
    if (runSet !== undefined && end > runStart) out += runSet.decode(bytes.subarray(runStart, end));
    runSet = undefined;
  };
  const take = (set: GraphicSet, at: number): void => {
    if (set !== runSet) {
      flush(at);
      runSet = set;
      runStart = at;
    }
  };
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b === ESC) {
      flush(i);
      const hit = ESCAPES.find((e) => e.seq.every((s, k) => bytes[i + 1 + k] === s));
      if (hit) {
        if (hit.g === 0) g0 = hit.set;
        else g1 = lastG1 = hit.set;
        i += 1 + hit.seq.length;
      } else {
        out += "\ufffd";
        i += 1;
      }
      continue;
    }
    if (b >= 0x80) {
      take(g1 ?? lastG1 ?? REPLACEMENT_SET, i);
      i += 1;
      continue;
    }
    const next = bytes[i + 1];
    if (g0.width > 1 && b > 0x20 && b < 0x7f && next !== undefined && next > 0x20 && next < 0x7f) {
      take(g0, i);
      i += 2;
      continue;
    }
    // A single-byte character: space, control, or a character of a single-byte G0.
    take(g0.width === 1 ? g0 : ASCII_SET, i);
    i += 1;
    if (isDelimiter(b, vr)) {
      // PS3.5 6.1.2.5.3: the initial character sets are active again after a delimiter or control character.
      flush(i);
      g0 = initial.g0;
      g1 = initial.g1;
    }
  }
  flush(bytes.length);
  return out;
}

/**
 * Decode the bytes of one text element (all its values, "\"-separated) per Specific Character Set terms. `vr` decides
 * which bytes are delimiters ("^" and "=" only in PN, "\" not in ST/LT/UT). Trailing padding is not removed.
 */
export function decodeText(bytes: Uint8Array, charsets: readonly string[], vr = "LO"): string {
  if (bytes.length === 0) return "";
  const terms = charsets.length === 0 ? [""] : charsets;
  const first = resolveTerm(terms[0]);
  const usesIso2022 = first.iso2022 || terms.some((t) => /2022/.test(t));
  if (!usesIso2022) {
    const encoding = first.encoding ?? "iso-8859-1";
    return encoding === "iso-8859-1" ? latin1(bytes) : iconv().decode(Buffer.from(bytes), encoding);
  }
  // With code extensions an empty value 1 means ISO-IR 6 with nothing in G1 until an escape designates it.
  const initial = first === DEFAULT_TERM ? { ...first, g1: undefined } : first;
  return decodeIso2022(bytes, initial, vr);
}

/** Maximum characters of one value per VR (PS3.5 6.2); PN: three component groups of 64. Unbounded VRs get 1024. */
const VR_MAX_CHARS: Record<string, number> = {
  AE: 16, AS: 4, CS: 16, DA: 18, DS: 16, DT: 54, IS: 12, LO: 64, LT: 10240, PN: 3 * 64 + 2, SH: 16, ST: 1024, TM: 28,
  UI: 64, UC: 1024, UR: 1024, UT: 1024,
};

/**
 * Most bytes of a text element scanbridge looks at: the VR's maximum length, times 4 for multi-byte character sets
 * and ISO 2022 escapes, at least 64 (a few values of a multi-valued CS or UI). Untrusted values are cut to this
 * before anything decodes, trims or matches them, so a megabyte of padding costs nothing (issue 10).
 */
export function maxValueBytes(vr: string): number {
  return Math.max(64, (VR_MAX_CHARS[vr] ?? 1024) * 4);
}

function isPadding(code: number): boolean {
  // NUL, C0 controls, space, and the Unicode spaces \s covers that DICOM writers use (NBSP, ideographic space).
  return code <= 0x20 || code === 0xa0 || code === 0x3000 || code === 0xfeff || (code >= 0x2000 && code <= 0x200a);
}

/**
 * Remove DICOM padding: trailing spaces and NULs, and leading spaces for all but ST/LT/UT. A character loop, not a
 * regular expression: linear on any input.
 */
export function trimValue(value: string, vr = "LO"): string {
  let end = value.length;
  while (end > 0 && isPadding(value.charCodeAt(end - 1))) end--;
  let start = 0;
  if (vr !== "ST" && vr !== "LT" && vr !== "UT") while (start < end && isPadding(value.charCodeAt(start))) start++;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}

/** Split a decoded Person Name value into its alphabetic, ideographic and phonetic groups, trimming empty trailing components. */
export function splitPersonName(value: string): PersonName {
  const clean = (s: string | undefined): string | undefined => {
    if (s === undefined) return undefined;
    const parts = s.split("^").map((p) => p.trim());
    while (parts.length > 0 && parts[parts.length - 1] === "") parts.pop();
    const joined = parts.join("^");
    return joined === "" ? undefined : joined;
  };
  const [alphabetic, ideographic, phonetic] = trimValue(value, "PN").split("=");
  const name: PersonName = { alphabetic: clean(alphabetic) ?? "" };
  const ideo = clean(ideographic);
  const phon = clean(phonetic);
  if (ideo !== undefined) name.ideographic = ideo;
  if (phon !== undefined) name.phonetic = phon;
  return name;
}

/** Decode a Person Name element's bytes (first value) into its three component groups. */
export function decodePersonName(bytes: Uint8Array, charsets: readonly string[]): PersonName {
  const first = decodeText(bytes, charsets, "PN").split("\\")[0] ?? "";
  return splitPersonName(first);
}
