import { crc32 } from "node:zlib";
import iconv from "iconv-lite";
import { createRequire } from "node:module";

/** Why an entry name is unsafe to extract. */
export type NameProblemCode =
  | "ABSOLUTE_PATH"
  | "PARENT_PATH"
  | "BACKSLASH_PATH"
  | "DRIVE_LETTER"
  | "CONTROL_CHARACTER"
  | "EMPTY_PATH_SEGMENT"
  | "NAME_TOO_LONG"
  | "BAD_NAME_ENCODING";

/** Code pages tried for names without the UTF-8 flag, in order of preference when the evidence ties. */
export const DEFAULT_ZIP_ENCODINGS = ["cp437", "cp850", "cp936", "cp950", "cp932", "cp949", "cp720", "cp1256", "cp866", "cp1251", "cp852", "cp1252", "cp857", "cp862", "cp737", "cp874"];

/** How the names of one zip were decoded: recorded with the package and shown to staff, never silent. */
export interface NameEncoding {
  /** "utf-8" when every name was flagged, carried a Unicode path field, or was ASCII; else the code page used. */
  encoding: string;
  /** What decided it: "utf-8-flag", "ascii", "utf-8-valid", "upload-name", "dicom", "zip-encodings", "detector", "host", "default". */
  evidence: string;
  /** Names that were not flagged UTF-8 and had non-ASCII bytes. */
  legacyNames: number;
}

/** What the evidence says about a zip's legacy names. */
export interface NameEvidence {
  /** The upload's own file name (it arrived as UTF-8 over SFTP), without .zip. */
  uploadName?: string;
  /** Code pages the office expects (`--zip-encodings`), most likely first. */
  encodings?: string[];
  /** Patient names read from the package's DICOM files (decoded with their Specific Character Set). */
  dicomNames?: string[];
}

/** One raw name as the zip stores it. */
export interface RawName {
  raw: Buffer;
  flags: number;
  versionMadeBy: number;
  extraFields: Array<{ id: number; data: Buffer }>;
}

const utf8Strict = new TextDecoder("utf-8", { fatal: true });

function strictUtf8(b: Buffer): string | undefined {
  try {
    return utf8Strict.decode(b);
  } catch {
    return undefined;
  }
}

/** The Info-ZIP Unicode Path field (0x7075), when its CRC-32 matches the stored name (else it is stale: ignored). */
function unicodePathField(n: RawName): string | undefined {
  const f = n.extraFields.find((x) => x.id === 0x7075);
  if (!f || f.data.length < 5 || f.data[0] !== 1) return undefined;
  if ((f.data.readUInt32LE(1) >>> 0) !== (crc32(n.raw) >>> 0)) return undefined;
  return strictUtf8(f.data.subarray(5));
}

const isAscii = (b: Buffer) => b.every((x) => x < 0x80);

/** Decode with a code page; undefined when the bytes are not valid in it (a multi-byte code page that fails). */
function decodeAs(raw: Buffer, enc: string): string | undefined {
  const s = iconv.decode(raw, enc);
  if (s.includes("\ufffd")) return undefined;
  if (!iconv.encode(s, enc).equals(raw)) return undefined;
  return s;
}

function scriptOf(c: string): string {
  if (/\p{Script=Latin}/u.test(c)) return "latin";
  if (/\p{Script=Han}/u.test(c)) return "han";
  if (/[\p{Script=Hiragana}\p{Script=Katakana}]/u.test(c)) return "kana";
  if (/\p{Script=Hangul}/u.test(c)) return "hangul";
  if (/\p{Script=Arabic}/u.test(c)) return "arabic";
  if (/\p{Script=Cyrillic}/u.test(c)) return "cyrillic";
  if (/\p{Script=Greek}/u.test(c)) return "greek";
  if (/\p{Script=Hebrew}/u.test(c)) return "hebrew";
  if (/\p{Script=Thai}/u.test(c)) return "thai";
  return "other";
}

/**
 * How plausible a decoded name is as something a person typed: letters of one script per word score (a CJK
 * character, two bytes in its code page, twice), box drawing, math and other symbols (what a wrong code page
 * turns letters into) cost, as do words that mix scripts or flip to upper case mid-word.
 */
export function nameScore(s: string): number {
  let score = 0;
  for (const word of s.split(/[\s/\\._\-()[\]0-9,]+/)) {
    const scripts = new Set<string>();
    let prevLower = false;
    for (const c of word) {
      if (c.charCodeAt(0) < 0x80) {
        prevLower = false;
        continue;
      }
      if (/\p{L}/u.test(c)) {
        const sc = scriptOf(c);
        score += c.charCodeAt(0) >= 0x2e80 ? 4 : 2;
        if (sc === "greek") score -= 1; // Greek letters are what CP437 makes of other scripts
        const upper = c !== c.toLowerCase();
        if (upper && prevLower) score -= 3;
        prevLower = c !== c.toUpperCase();
        scripts.add(sc);
      } else if (!/\p{M}/u.test(c)) {
        score -= 6; // symbols, box drawing, controls, private use
        prevLower = false;
      }
    }
    const real = [...scripts].filter((x) => x !== "other");
    // Han and kana share words in Japanese; anything else mixed in one word is a wrong code page.
    const mixed = real.length > 1 && !(real.length === 2 && real.includes("han") && real.includes("kana"));
    if (mixed) score -= 8;
  }
  return score;
}

/**
 * For double-byte code pages: characters from the common part of the code page (GB2312 level 1-2 in GBK, JIS
 * level 1 and kana in Shift_JIS, Big5 level 1, KS X 1001 Hangul) score, rare extension characters cost. Bytes of
 * another double-byte code page read this way land mostly in the rare part.
 */
export function commonCharScore(raw: Buffer, enc: string): number {
  if (!["cp936", "cp932", "cp950", "cp949"].includes(enc)) return 0;
  let score = 0;
  for (let i = 0; i < raw.length; ) {
    const b = raw[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    if (enc === "cp932" && b >= 0xa1 && b <= 0xdf) {
      score -= 1; // half-width katakana: rare in file names
      i++;
      continue;
    }
    const t = raw[i + 1] ?? 0;
    const code = (b << 8) | t;
    const common =
      enc === "cp936" ? b >= 0xb0 && b <= 0xf7 && t >= 0xa1
      : enc === "cp932" ? (code >= 0x889f && code <= 0x9872) || (code >= 0x829f && code <= 0x82f1) || (code >= 0x8340 && code <= 0x8396)
      : enc === "cp950" ? code >= 0xa440 && code <= 0xc67e
      : b >= 0xb0 && b <= 0xc8 && t >= 0xa1;
    score += common ? 2 : -2;
    i += 2;
  }
  return score;
}

let loaded: { detect: (s: string) => { encoding: string | null } } | undefined;
/** jschardet, loaded on first use (about 0.1 s): only zips with names not marked UTF-8 need it. */
function detector(): { detect: (s: string) => { encoding: string | null } } {
  loaded ??= createRequire(import.meta.url)("jschardet") as { detect: (s: string) => { encoding: string | null } };
  return loaded;
}

/** jschardet's name for an encoding, mapped to the code pages it points at. */
const DETECTOR_HINTS: Record<string, string[]> = {
  GB2312: ["cp936"], GB18030: ["cp936"], BIG5: ["cp950"], SHIFT_JIS: ["cp932"], "EUC-JP": ["cp932"], "EUC-KR": ["cp949"],
  "WINDOWS-1256": ["cp1256", "cp720"], IBM866: ["cp866"], "WINDOWS-1251": ["cp1251", "cp866"], "KOI8-R": ["cp866"],
  "ISO-8859-1": ["cp850", "cp1252"], "WINDOWS-1252": ["cp850", "cp1252"], "ISO-8859-2": ["cp852"], "WINDOWS-1250": ["cp852"],
  "ISO-8859-7": ["cp737"], "WINDOWS-1253": ["cp737"], "ISO-8859-8": ["cp862"], "WINDOWS-1255": ["cp862"], "TIS-620": ["cp874"],
};

/** Code pages a DICOM Specific Character Set points at (the scans were made where the sender lives). */
const DICOM_HINTS: Array<[RegExp, string[]]> = [
  [/GB18030|GBK|ISO.IR.58/i, ["cp936"]],
  [/ISO.IR.13|ISO.IR.87|ISO.2022.IR.87/i, ["cp932"]],
  [/ISO.IR.149/i, ["cp949"]],
  [/ISO.IR.127/i, ["cp720", "cp1256"]],
  [/ISO.IR.144/i, ["cp866", "cp1251"]],
  [/ISO.IR.126/i, ["cp737"]],
  [/ISO.IR.138/i, ["cp862"]],
  [/ISO.IR.100|ISO.IR.101/i, ["cp850", "cp1252", "cp852"]],
];

/** Code pages the Specific Character Set values of a package's DICOM files point at. */
export function codePagesForDicomCharsets(charsets: string[]): string[] {
  const out: string[] = [];
  for (const cs of charsets) for (const [re, cps] of DICOM_HINTS) if (re.test(cs)) out.push(...cps);
  return [...new Set(out)];
}

/**
 * Decode every name of a zip. The UTF-8 flag and the Info-ZIP Unicode Path field come first; then names that are
 * valid UTF-8 without the flag (macOS, 7-Zip, Linux); then one legacy code page for the whole zip, chosen by
 * evidence: the upload's own name decoded the same way, the DICOM patient names, the office's list of likely code
 * pages, a detector, plausibility of the result. A backslash is turned into "/" only after decoding (a CP932
 * trail byte 0x5C is not a separator), and every name is NFC-normalised. `invalid` marks a name flagged UTF-8
 * that is not UTF-8.
 */
export function decodeZipNames(names: RawName[], evidence: NameEvidence = {}): { names: Array<{ name: string; invalid?: true }>; encoding: NameEncoding } {
  const out: Array<{ name: string; invalid?: true } | undefined> = names.map(() => undefined);
  const legacy: number[] = [];
  let flagged = 0;
  names.forEach((n, i) => {
    if ((n.flags & 0x800) !== 0) {
      const s = strictUtf8(n.raw);
      out[i] = s === undefined ? { name: n.raw.toString("latin1"), invalid: true } : { name: s };
      flagged++;
      return;
    }
    const u = unicodePathField(n);
    if (u !== undefined) {
      out[i] = { name: u };
      flagged++;
      return;
    }
    if (isAscii(n.raw)) out[i] = { name: n.raw.toString("latin1") };
    else legacy.push(i);
  });
  let encoding: NameEncoding = { encoding: "utf-8", evidence: flagged > 0 ? "utf-8-flag" : "ascii", legacyNames: 0 };
  if (legacy.length > 0) {
    const raws = legacy.map((i) => names[i]!.raw);
    if (raws.every((r) => strictUtf8(r) !== undefined)) {
      encoding = { encoding: "utf-8", evidence: "utf-8-valid", legacyNames: legacy.length };
      legacy.forEach((i, k) => (out[i] = { name: strictUtf8(raws[k]!)! }));
    } else {
      const chosen = chooseCodePage(raws, names[legacy[0]!]!.versionMadeBy, evidence);
      encoding = { ...chosen, legacyNames: legacy.length };
      legacy.forEach((i, k) => (out[i] = { name: iconv.decode(raws[k]!, chosen.encoding) }));
    }
  }
  return {
    names: out.map((o) => (o!.invalid ? o! : { name: o!.name.replace(/\\/g, "/").normalize("NFC") })),
    encoding,
  };
}

const rootOf = (s: string) => s.replace(/\\/g, "/").split("/")[0]!.normalize("NFC");

function chooseCodePage(raws: Buffer[], versionMadeBy: number, ev: NameEvidence): { encoding: string; evidence: string } {
  const configured = (ev.encodings ?? []).map((e) => e.toLowerCase().replace(/^(windows|ibm)-?/, (m) => (m.startsWith("ibm") ? "cp" : "cp")));
  const candidates = [...new Set([...configured, ...DEFAULT_ZIP_ENCODINGS])].filter((e) => iconv.encodingExists(e));
  const decoded = new Map<string, string[]>();
  for (const enc of candidates) {
    const all = raws.map((r) => decodeAs(r, enc));
    if (all.every((s) => s !== undefined)) decoded.set(enc, all as string[]);
  }
  const valid = [...decoded.keys()];
  if (valid.length === 0) return { encoding: "cp437", evidence: "default" };
  // 1. The upload's own name: a folder zipped whole is usually uploaded under its own name.
  const upload = ev.uploadName?.normalize("NFC");
  if (upload && !isAscii(Buffer.from(upload, "utf8"))) {
    const hit = valid.find((enc) => decoded.get(enc)!.some((s) => rootOf(s) === upload));
    if (hit) return { encoding: hit, evidence: "upload-name" };
  }
  // 2. The patient's name in the DICOM files.
  for (const dn of ev.dicomNames ?? []) {
    const want = dn.normalize("NFC").toLowerCase().replace(/[\s^,]+/g, " ").trim();
    if (want.length === 0) continue;
    const hit = valid.find((enc) => decoded.get(enc)!.some((s) => rootOf(s).toLowerCase().replace(/[\s^,_]+/g, " ").trim() === want));
    if (hit) return { encoding: hit, evidence: "dicom" };
  }
  // 3. Plausibility, with the office's list, the detector and the "made by" host breaking ties.
  const sample = Buffer.concat(raws.slice(0, 200).flatMap((r) => [r, Buffer.from("\n")]));
  let detected: string[];
  try {
    const d = detector().detect(sample.toString("binary"));
    detected = d.encoding ? DETECTOR_HINTS[d.encoding.toUpperCase()] ?? [] : [];
  } catch {
    detected = [];
  }
  const host = versionMadeBy >> 8; // 0 MS-DOS/Windows FAT, 11 NTFS, 3 Unix, 19 OS X
  const oem = (enc: string) => /^cp(437|85\d|86\d|720|737|775|857|874|932|936|949|950)$/.test(enc);
  let best = { enc: valid[0]!, score: -Infinity, why: "default" };
  for (const enc of valid) {
    let score = decoded.get(enc)!.reduce((s, name, k) => s + nameScore(name) + commonCharScore(raws[k]!, enc), 0);
    let why = "detector";
    const ci = configured.indexOf(enc);
    if (ci >= 0) {
      score += 3 - ci * 0.01;
      why = "zip-encodings";
    }
    if (detected.includes(enc)) score += 1.5;
    if ((host === 0 || host === 11) && oem(enc)) score += 0.5;
    score -= candidates.indexOf(enc) * 0.001; // stable order on a tie
    if (score > best.score) best = { enc, score, why: ci >= 0 ? why : detected.includes(enc) ? "detector" : host === 0 || host === 11 ? "host" : "default" };
  }
  return { encoding: best.enc, evidence: best.why };
}

/** Every reason an entry name is unsafe to write to disk (empty when safe). Directory names end with "/". */
export function checkEntryName(name: string): NameProblemCode[] {
  const out = new Set<NameProblemCode>();
  if (name.includes("\\")) out.add("BACKSLASH_PATH");
  if (name.startsWith("/") || name.startsWith("\\")) out.add("ABSOLUTE_PATH");
  if (/^[a-zA-Z]:/.test(name)) out.add("DRIVE_LETTER");
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) out.add("CONTROL_CHARACTER");
  const body = name.endsWith("/") ? name.slice(0, -1) : name;
  const segments = body.split(/[\\/]/);
  if (segments.some((s) => s === "..")) out.add("PARENT_PATH");
  if (!out.has("ABSOLUTE_PATH") && segments.some((s) => s === "" || s === ".")) out.add("EMPTY_PATH_SEGMENT");
  if (segments.some((s) => Buffer.byteLength(s, "utf8") > 255)) out.add("NAME_TOO_LONG");
  return [...out];
}

/** Key under which two names collide on a case-insensitive, normalising file system (Windows, macOS). */
export function collisionKey(name: string): string {
  return name.normalize("NFC").toUpperCase().toLowerCase();
}

/** Unix file type bits of an entry made on Unix, or undefined. */
export function unixFileType(versionMadeBy: number, externalFileAttributes: number): number | undefined {
  if (versionMadeBy >> 8 !== 3) return undefined;
  const type = (externalFileAttributes >>> 16) & 0o170000;
  return type === 0 ? undefined : type;
}

/** Unix file type of a symbolic link. */
export const S_IFLNK = 0o120000;
/** Unix file type of a directory. */
export const S_IFDIR = 0o040000;
/** Unix file type of a regular file. */
export const S_IFREG = 0o100000;
