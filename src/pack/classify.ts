import { posix } from "node:path";
import { isPortableExecutable, sniffDicom } from "../dicom/sniff.js";
import type { FileKind } from "./manifest.js";

/**
 * THE classification table of scanbridge, shared by `pack` (what goes into a package), `verify` (what a sealed
 * package may hold) and `watch` intake (what a hand-made package is turned into): documents (OOXML/ODF too,
 * recognised by content), images, DICOM, programs, archives and OS junk. One table, so a file `pack` keeps is a
 * file `verify` accepts.
 */

/** How pack treats a file: packaged with a kind, left out (silently or with a warning), or refused. */
export type Classification =
  | { action: "include"; kind: FileKind }
  | { action: "exclude"; reason: "os-junk" | "executable" }
  | { action: "refuse"; reason: "archive" };

/** Bytes of a file's head that classification looks at. */
export const HEAD_BYTES = 132;

const JUNK_NAMES = new Set([".ds_store", "thumbs.db", "ehthumbs.db", "ehthumbs_vista.db", "desktop.ini", ".localized", "icon\r", ".directory", ".volumeicon.icns"]);
const JUNK_DIRS = new Set(["__macosx", ".spotlight-v100", ".trashes", ".fseventsd", ".temporaryitems", "system volume information", "$recycle.bin", ".documentrevisions-v100", ".git"]);
const EXECUTABLE_EXT = new Set([
  "exe", "dll", "bat", "cmd", "com", "msi", "msp", "scr", "pif", "cpl", "ocx", "sys", "drv", "ps1", "psm1", "vbs", "vbe", "wsf", "wsh",
  "hta", "jar", "lnk", "reg", "inf", "sh", "bash", "command", "so", "dylib", "dmg", "pkg", "mpkg", "deb", "rpm", "apk", "appimage",
  "js", "jse", "run", "bin", "elf", "app", "war",
]);
const ARCHIVE_EXT = new Set(["zip", "rar", "7z", "tar", "gz", "tgz", "bz2", "tbz", "tbz2", "xz", "txz", "zst", "lz", "lzma", "cab", "iso", "z", "arj", "lzh", "sit", "sitx", "zipx"]);
const DOCUMENT_EXT = new Set(["pdf", "doc", "docx", "rtf", "txt", "odt", "ods", "xls", "xlsx", "csv", "ppt", "pptx", "odp", "htm", "html", "xml", "md", "json", "pages", "eml", "msg", "docm", "xlsm", "pptm", "dotx", "odg", "ott"]);
/** Office documents that are zip files inside (OOXML, ODF): documents, never nested archives. */
const OFFICE_ZIP_EXT = new Set(["docx", "xlsx", "pptx", "docm", "xlsm", "pptm", "dotx", "odt", "ods", "odp", "odg", "ott", "pages"]);
const IMAGE_EXT = new Set(["jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "heic", "heif", "webp", "jp2", "j2k"]);
/** Extensions whose content is already compressed: deflating them wastes time. */
export const COMPRESSED_EXT = new Set(["pdf", "jpg", "jpeg", "png", "gif", "heic", "heif", "webp", "jp2", "j2k", "docx", "xlsx", "pptx", "odt", "ods", "odp", "mp4", "mov", "avi", "mkv", "mp3", "m4a"]);

/** Lower-case extension without the dot ("" when none). */
export function extOf(name: string): string {
  const base = posix.basename(name);
  const i = base.lastIndexOf(".");
  return i > 0 ? base.slice(i + 1).toLowerCase() : "";
}

/** Whether a folder name is OS junk that is left out with everything in it. */
export function isJunkDir(name: string): boolean {
  return JUNK_DIRS.has(name.toLowerCase());
}

/** Whether a folder is an application bundle (macOS .app) that is left out as an executable. */
export function isExecutableDir(name: string): boolean {
  return /\.app$/i.test(name);
}

/** Program content: Windows PE, ELF, Mach-O, or a #! script. */
export function looksExecutable(head: Buffer): boolean {
  if (head.length >= 2 && head[0] === 0x4d && head[1] === 0x5a) return true; // MZ: Windows PE
  if (head.length >= 4 && head.readUInt32BE(0) === 0x7f454c46) return true; // ELF
  if (head.length >= 4) {
    const m = head.readUInt32BE(0);
    if (m === 0xfeedface || m === 0xfeedfacf || m === 0xcefaedfe || m === 0xcffaedfe || m === 0xcafebabe) return true; // Mach-O
  }
  return head.length >= 2 && head[0] === 0x23 && head[1] === 0x21; // #! script
}

/**
 * An OOXML or ODF document recognised by content: a zip whose first entry is `[Content_Types].xml`, `_rels/`,
 * `docProps/`, `word/`, `xl/`, `ppt/` (OOXML) or `mimetype` holding an OpenDocument type (ODF).
 */
export function looksOfficeDocument(head: Buffer): boolean {
  if (head.length < 34 || head.readUInt32BE(0) !== 0x504b0304) return false;
  const nameLen = head.readUInt16LE(26);
  const extraLen = head.readUInt16LE(28);
  const name = head.toString("latin1", 30, Math.min(head.length, 30 + nameLen));
  if (name === "[Content_Types].xml" || /^(_rels|docProps|word|xl|ppt)\//.test(name)) return true;
  if (name === "mimetype") return head.toString("latin1", 30 + nameLen + extraLen, Math.min(head.length, 30 + nameLen + extraLen + 40)).startsWith("application/vnd.oasis.opendocument");
  return false;
}

/** Archive content: zip, RAR, 7z, gzip, bzip2, xz, tar. */
export function looksArchive(head: Buffer): boolean {
  if (head.length < 4) return false;
  const m = head.readUInt32BE(0);
  if (m === 0x504b0304 || m === 0x504b0506) return true; // zip
  if (head.toString("latin1", 0, 4) === "Rar!") return true;
  if (m === 0x377abcaf) return true; // 7z
  if (head[0] === 0x1f && head[1] === 0x8b) return true; // gzip
  if (head.toString("latin1", 0, 3) === "BZh") return true;
  if (m === 0xfd377a58) return true; // xz
  return head.length >= 262 && head.toString("latin1", 257, 262) === "ustar";
}

/**
 * Classify one file by its name (relative path inside its input) and its first bytes. DICOM is recognised by
 * content, so files without an extension (IM00001) are found; executables by extension or magic number.
 */
export function classifyFile(relPath: string, head: Buffer): Classification {
  const base = posix.basename(relPath);
  const lower = base.toLowerCase();
  if (JUNK_NAMES.has(lower) || lower.startsWith("._") || lower === ".ds_store") return { action: "exclude", reason: "os-junk" };
  if (lower === "autorun.inf" || lower === "autorun.exe") return { action: "exclude", reason: "executable" };
  const ext = extOf(base);
  // A DICOM preamble holding a Windows program is CVE-2019-11687 (PE/DICOM polyglot); "MZ" alone is a free preamble.
  if (sniffDicom(head) && isPortableExecutable(head)) return { action: "exclude", reason: "executable" };
  if (sniffDicom(head)) return { action: "include", kind: lower === "dicomdir" ? "dicomdir" : "dicom" };
  if (EXECUTABLE_EXT.has(ext)) return { action: "exclude", reason: "executable" };
  if (ARCHIVE_EXT.has(ext)) return { action: "refuse", reason: "archive" };
  if (looksExecutable(head)) return { action: "exclude", reason: "executable" }; // a program named .pdf is a program
  if (OFFICE_ZIP_EXT.has(ext) || looksOfficeDocument(head)) return { action: "include", kind: "document" };
  if (looksArchive(head)) return { action: "refuse", reason: "archive" };
  if (DOCUMENT_EXT.has(ext)) return { action: "include", kind: "document" };
  if (IMAGE_EXT.has(ext)) return { action: "include", kind: "image" };
  if (ext === "dcm" || ext === "dicom" || lower === "dicomdir") return { action: "include", kind: "dicom-unreadable" };
  return { action: "include", kind: "other" };
}
