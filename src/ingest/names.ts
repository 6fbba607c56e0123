import { hasDicomMagic, isPortableExecutable } from "../dicom/sniff.js";
import yauzl from "yauzl";

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

/** An entry name decoded from the raw bytes of the central directory. */
export interface DecodedName {
  name: string;
  /** The UTF-8 flag (general purpose bit 11) was set, or an Info-ZIP Unicode path field was used. */
  utf8: boolean;
  /** Non-ASCII bytes without the UTF-8 flag: decoded as CP437, probably not what the sender meant. */
  legacyEncoding: boolean;
}

const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** Decode an entry name from raw bytes, keeping backslashes so they can be rejected (yauzl would rewrite them). */
export function decodeEntryName(flags: number, raw: Buffer, extraFields: yauzl.ExtraField[]): DecodedName | { invalid: string } {
  const flagged = (flags & 0x800) !== 0;
  const hasUnicodeField = extraFields.some((f) => f.id === 0x7075);
  if (flagged && !hasUnicodeField) {
    try {
      return { name: utf8Strict.decode(raw), utf8: true, legacyEncoding: false };
    } catch {
      return { invalid: raw.toString("latin1") };
    }
  }
  const name = yauzl.getFileNameLowLevel(flags, raw, extraFields, true);
  const ascii = raw.every((b) => b < 0x80);
  return { name, utf8: flagged || hasUnicodeField, legacyEncoding: !ascii && !flagged && !hasUnicodeField };
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

/** File name suffixes of archives that must not be nested in a package. */
export const NESTED_ARCHIVE_RE = /\.(zip|zipx|7z|rar|tar|tgz|tbz2?|txz|gz|bz2|xz|zst|lz|lzma|z|cab|iso|dmg|jar|war|apk)$/i;
/** File name suffixes of programs and scripts that must not be delivered to staff. */
export const EXECUTABLE_RE = /\.(exe|com|bat|cmd|msi|msp|scr|pif|cpl|dll|sys|ps1|psm1|vbs|vbe|js|jse|wsf|wsh|hta|lnk|app|sh|command|run|bin|elf)$/i;

/** Recognise archive or executable content from the first bytes of a file, whatever its name. */
export function sniffDangerousContent(head: Buffer): "archive" | "executable" | undefined {
  // DICOM whose free preamble starts with MZ or PK is DICOM (pack packs it so too), unless the MZ leads to a PE header.
  if (hasDicomMagic(head)) return isPortableExecutable(head) ? "executable" : undefined;
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && (head[2] === 3 || head[2] === 5 || head[2] === 7) ) return "archive";
  if (head.length >= 4 && head.subarray(0, 4).toString("latin1") === "Rar!") return "archive";
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]))) return "archive";
  // "MZ" at offset 0 is a Windows program (a DICOM file with only "MZ" in its preamble returned above).
  if (head.length >= 2 && head[0] === 0x4d && head[1] === 0x5a) return "executable";
  if (head.length >= 4 && head[0] === 0x7f && head.subarray(1, 4).toString("latin1") === "ELF") return "executable";
  return undefined;
}
