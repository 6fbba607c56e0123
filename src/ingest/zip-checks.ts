/**
 * Pure structure checks of a zip, on what zip-reader.ts read: the zip must mean the same thing to every reader
 * (central directory and local headers agree, nothing hidden between entries, one end record, no overlaps), its
 * names must be safe to write, and its declared sizes must stay within the shared extraction limits. No I/O.
 */
import { classifyFile } from "../pack/classify.js";
import { MANIFEST_NAME } from "../pack/manifest.js";
import { entryRatioExceeded, totalRatioExceeded, type ExtractLimits } from "../util/extract-limits.js";
import { checkEntryName, collisionKey, S_IFDIR, S_IFLNK, S_IFREG, unixFileType, type NameProblemCode } from "./names.js";
import { NATIVE_METHODS, type ZipDirectory, type ZipEntryRecord } from "./zip-reader.js";

/** Codes of the zip structure checks (each its own code, so staff and tests can tell them apart). */
export type ZipCheckCode =
  | NameProblemCode
  | "PATH_TOO_LONG"
  | "SYMLINK_ENTRY"
  | "SPECIAL_FILE_ENTRY"
  | "DUPLICATE_ENTRY"
  | "CASE_COLLISION"
  | "FILE_FOLDER_CONFLICT"
  | "NO_ROOT_FOLDER"
  | "MULTIPLE_ROOT_FOLDERS"
  | "OUTSIDE_ROOT_FOLDER"
  | "TOO_LARGE"
  | "COMPRESSION_RATIO"
  | "OVERLAPPING_ENTRIES"
  | "ENCRYPTED_ENTRY"
  | "UNSUPPORTED_COMPRESSION"
  | "NESTED_ARCHIVE"
  | "EXECUTABLE"
  | "LOCAL_HEADER_MISSING"
  | "LOCAL_HEADER_MISMATCH"
  | "HIDDEN_ENTRY"
  | "UNREFERENCED_DATA"
  | "MULTIPLE_END_RECORDS"
  | "TRAILING_DATA";

/** One finding: `name` is the decoded entry name (PHI; the caller shows it with the root folder masked). */
export interface ZipFinding {
  code: ZipCheckCode;
  message: string;
  name?: string;
}

/** An entry with its decoded name and what the checks decided about it. */
export interface CheckedEntry {
  record: ZipEntryRecord;
  /** Decoded, NFC, "/" separators; directories end with "/". */
  name: string;
  isDir: boolean;
  /** Safe to write under the staging folder. */
  safe: boolean;
  /** Path below the root folder (single-root zips). */
  rel?: string;
}

/** Options of checkZipStructure. */
export interface ZipCheckOptions {
  limits: Pick<ExtractLimits, "maxUnpackedBytes" | "maxRatio">;
  /** Bytes a name may take on disk below the extraction folder (PATH_MAX less the folder's own path). */
  pathBudget: number;
  /**
   * Hold the package to scanbridge's own layout (sealed packages: one root folder, no archives, no programs). Off
   * for hand-made packages: intake normalises their layout instead.
   */
  strictLayout: boolean;
}

/** What the structure checks found. */
export interface ZipStructure {
  entries: CheckedEntry[];
  /** The one top-level folder, when there is exactly one and no top-level file. */
  root: string | undefined;
  /** A `<root>/manifest.json` entry is present: the package says it is sealed. */
  claimsSealed: boolean;
  findings: ZipFinding[];
}

/** `<folder>/manifest.json`: where a sealed package keeps its manifest. */
export function isManifestName(name: string): boolean {
  const i = name.indexOf("/");
  return i > 0 && name.slice(i + 1) === MANIFEST_NAME;
}

/** Linux PATH_MAX: the longest path the kernel takes. */
export const PATH_MAX = 4096;

const FLAG_BITS_COMPARED = 0x0001 | 0x0008 | 0x0040 | 0x0800; // encrypted, data descriptor, strong encryption, UTF-8

/** Does the central directory say what the local header says? (Other readers trust the local header.) */
export function localHeaderDisagreement(e: ZipEntryRecord): string | undefined {
  const l = e.local;
  if (!l) return undefined;
  if (!l.rawName.equals(e.rawName)) return "name differs between the local header and the central directory";
  if ((l.flags & FLAG_BITS_COMPARED) !== (e.flags & FLAG_BITS_COMPARED)) return "flags differ between the local header and the central directory";
  if (l.method !== e.method) return `compression method differs (local ${l.method}, central ${e.method})`;
  const streamed = (l.flags & 0x8) !== 0;
  const facts = streamed ? e.descriptor : { crc32: l.crc32, compressedSize: l.compressedSize, uncompressedSize: l.uncompressedSize };
  if (streamed && !e.descriptor) return "data descriptor missing";
  if (!facts) return undefined;
  // With a data descriptor the local header may carry zeros; when it carries values they must agree too.
  const local = streamed ? [l.crc32, l.compressedSize, l.uncompressedSize] : [];
  if (local.some((v) => v !== 0) && (l.crc32 !== e.crc32 || l.compressedSize !== e.compressedSize || l.uncompressedSize !== e.uncompressedSize)) {
    return "sizes or CRC-32 differ between the local header and the central directory";
  }
  if ((facts.crc32 >>> 0) !== (e.crc32 >>> 0)) return "CRC-32 differs between the local header and the central directory";
  if (facts.compressedSize !== e.compressedSize || facts.uncompressedSize !== e.uncompressedSize) return "sizes differ between the local header and the central directory";
  return undefined;
}

/** Byte ranges that must not overlap: every entry from its local header (extra field included) to its descriptor's end. */
function overlaps(dir: ZipDirectory): ZipEntryRecord[] {
  type Span = { start: number; end: number; entry?: ZipEntryRecord };
  const spans: Span[] = [];
  for (const e of dir.entries) {
    const end = e.local ? e.local.dataStart + e.compressedSize + (e.descriptor?.length ?? 0) : e.localHeaderOffset + 30;
    spans.push({ start: e.localHeaderOffset, end, entry: e });
  }
  spans.push({ start: dir.cdOffset, end: dir.cdOffset + dir.cdSize });
  if (dir.zip64) spans.push({ start: dir.zip64.recordOffset, end: dir.eocdOffset });
  spans.push({ start: dir.eocdOffset, end: dir.fileSize - dir.trailingBytes });
  spans.sort((a, b) => a.start - b.start || a.end - b.end);
  const bad = new Set<ZipEntryRecord>();
  let reach: Span | undefined;
  for (const s of spans) {
    if (s.end > dir.fileSize && s.entry) bad.add(s.entry);
    if (reach && s.start < reach.end) {
      if (s.entry) bad.add(s.entry);
      if (reach.entry) bad.add(reach.entry);
    }
    if (!reach || s.end > reach.end) reach = s;
  }
  return [...bad];
}

/**
 * Check a zip read by readZipDirectory, with its names already decoded (decodeZipNames). Returns every finding,
 * not just the first; entries whose own name or type is unsafe are marked `safe: false` and never written.
 */
export function checkZipStructure(dir: ZipDirectory, names: Array<{ name: string; invalid?: true }>, opts: ZipCheckOptions): ZipStructure {
  const findings: ZipFinding[] = [];
  const add = (code: ZipCheckCode, message: string, name?: string) => findings.push(name === undefined ? { code, message } : { code, message, name });
  const entries: CheckedEntry[] = [];

  // The zip means one thing to every reader.
  if (dir.extraEndRecords.length > 0) add("MULTIPLE_END_RECORDS", `${dir.extraEndRecords.length + 1} end-of-central-directory records (other readers may see other files)`);
  if (dir.trailingBytes > 0) add("TRAILING_DATA", `${dir.trailingBytes} bytes follow the end record`);
  for (const g of dir.gaps) {
    if (g.localHeader) add("HIDDEN_ENTRY", `A local entry at byte ${g.offset} is not listed in the central directory (a streaming reader would extract it)`);
    else add("UNREFERENCED_DATA", `${g.length} bytes at byte ${g.offset} belong to no entry`);
  }

  dir.entries.forEach((e, i) => {
    const decoded = names[i]!;
    if (decoded.invalid) {
      add("BAD_NAME_ENCODING", "Entry name is flagged UTF-8 but is not valid UTF-8", decoded.name);
      entries.push({ record: e, name: decoded.name, isDir: false, safe: false });
      return;
    }
    const name = decoded.name;
    const isDir = name.endsWith("/");
    let safe = true;
    if (e.localError) {
      add("LOCAL_HEADER_MISSING", `Cannot read the entry's local header: ${e.localError}`, name);
      safe = false;
    } else {
      const why = localHeaderDisagreement(e);
      if (why) {
        add("LOCAL_HEADER_MISMATCH", why, name);
        safe = false;
      }
    }
    const codes = checkEntryName(name);
    const messages: Record<string, string> = {
      ABSOLUTE_PATH: "Absolute path",
      PARENT_PATH: "Path climbs out of the folder with '..' (zip-slip)",
      BACKSLASH_PATH: "Backslash in path",
      DRIVE_LETTER: "Drive letter in path",
      CONTROL_CHARACTER: "Control character in name",
      EMPTY_PATH_SEGMENT: "Empty or '.' path segment",
      NAME_TOO_LONG: "A path segment is longer than 255 bytes (NAME_MAX)",
    };
    for (const c of codes) add(c, messages[c] ?? c, name);
    if (codes.length > 0) safe = false;
    if (Buffer.byteLength(name, "utf8") > opts.pathBudget) {
      add("PATH_TOO_LONG", `The path is longer than the file system allows (PATH_MAX ${PATH_MAX} with the ready folder's own path)`, name);
      safe = false;
    }
    const type = unixFileType(e.versionMadeBy, e.externalAttributes);
    if (type === S_IFLNK) {
      add("SYMLINK_ENTRY", "Symbolic link entry", name);
      safe = false;
    } else if (type !== undefined && type !== S_IFREG && type !== S_IFDIR) {
      add("SPECIAL_FILE_ENTRY", "Device, FIFO or socket entry", name);
      safe = false;
    }
    if ((e.flags & 0x41) !== 0) add("ENCRYPTED_ENTRY", "Encrypted entry (password-protected zip)", name);
    else if (!isDir && !NATIVE_METHODS.has(e.method) && e.method !== 9) add("UNSUPPORTED_COMPRESSION", `Compression method ${e.method} is not supported`, name);
    entries.push({ record: e, name, isDir, safe });
  });

  // Layout: one root folder, or not.
  const tops = new Set<string>();
  let topFiles = 0;
  for (const i of entries) {
    if (!i.safe) continue;
    const parts = i.name.replace(/\/$/, "").split("/");
    tops.add(parts[0]!);
    if (!i.isDir && parts.length === 1) topFiles++;
  }
  const root = tops.size === 1 && topFiles === 0 ? [...tops][0]! : undefined;
  const claimsSealed = entries.some((i) => !i.isDir && isManifestName(i.name));
  if (root !== undefined) for (const i of entries) if (i.safe && i.name.startsWith(root + "/") && i.name.length > root.length + 1) i.rel = i.name.slice(root.length + 1).replace(/\/$/, "");
  if (opts.strictLayout) {
    if (tops.size === 0) add("NO_ROOT_FOLDER", "The zip holds no root folder");
    else if (tops.size > 1) add("MULTIPLE_ROOT_FOLDERS", `The zip has ${tops.size} top-level folders or files; a package has exactly one root folder`);
    for (const i of entries) {
      if (i.safe && !i.isDir && !i.name.includes("/")) {
        add("OUTSIDE_ROOT_FOLDER", "File at the top level, outside the root folder", i.name);
        i.safe = false;
      }
    }
    // What pack never puts in a package, by name (content is classified while reading).
    for (const i of entries) {
      if (i.isDir) continue;
      const c = classifyFile(i.name, Buffer.alloc(0));
      if (c.action === "refuse") add("NESTED_ARCHIVE", "Nested archive", i.name);
      else if (c.action === "exclude" && c.reason === "executable") add("EXECUTABLE", "Program or script", i.name);
    }
  }

  // Duplicates and names that collide on case-insensitive / normalising file systems.
  const exact = new Set<string>();
  const byKey = new Set<string>();
  const dirKeys = new Set<string>();
  for (const i of entries) {
    const name = i.name.replace(/\/$/, "");
    if (exact.has(name)) {
      add("DUPLICATE_ENTRY", "The same name appears twice", i.name);
      i.safe = false;
      continue;
    }
    exact.add(name);
    const key = collisionKey(name);
    if (byKey.has(key)) {
      add("CASE_COLLISION", "Name collides with another entry on case-insensitive file systems", i.name);
      i.safe = false;
      continue;
    }
    byKey.add(key);
    if (i.isDir) dirKeys.add(key);
    const parts = key.split("/");
    for (let n = 1; n < parts.length; n++) dirKeys.add(parts.slice(0, n).join("/"));
  }
  for (const i of entries) {
    if (!i.isDir && dirKeys.has(collisionKey(i.name))) {
      add("FILE_FOLDER_CONFLICT", "A file and a folder have the same name", i.name);
      i.safe = false;
    }
  }

  // Zip-bomb limits on declared sizes (the reader refuses data that exceeds what it declares).
  let total = 0;
  let compressed = 0;
  let entryRatio = false;
  for (const i of entries) {
    const e = i.record;
    total += e.uncompressedSize;
    compressed += e.compressedSize;
    const r = entryRatioExceeded(e.uncompressedSize, e.compressedSize, opts.limits);
    if (r !== undefined) {
      entryRatio = true;
      add("COMPRESSION_RATIO", `Compression ratio ${Math.round(r)}:1 exceeds ${opts.limits.maxRatio}:1 (zip bomb?)`, i.name);
    }
  }
  if (total > opts.limits.maxUnpackedBytes) add("TOO_LARGE", `Declared uncompressed size ${total} bytes exceeds the limit of ${opts.limits.maxUnpackedBytes}`);
  const tr = totalRatioExceeded(total, compressed, opts.limits);
  if (tr !== undefined && !entryRatio) add("COMPRESSION_RATIO", `Overall compression ratio ${Math.round(tr)}:1 exceeds ${opts.limits.maxRatio}:1 (zip bomb?)`);

  for (const e of overlaps(dir)) {
    const i = entries[e.index]!;
    add("OVERLAPPING_ENTRIES", "Entry data overlaps another entry or the directory, or runs past the end of the file", i.name);
    i.safe = false;
  }
  return { entries, root, claimsSealed, findings };
}

/** Findings that make the whole zip untrustworthy: nothing is extracted or read further. */
export const FATAL_ZIP_CODES = new Set<string>([
  "TOO_LARGE",
  "COMPRESSION_RATIO",
  "OVERLAPPING_ENTRIES",
  "LOCAL_HEADER_MISSING",
  "LOCAL_HEADER_MISMATCH",
  "HIDDEN_ENTRY",
  "UNREFERENCED_DATA",
  "MULTIPLE_END_RECORDS",
  "TRAILING_DATA",
]);
