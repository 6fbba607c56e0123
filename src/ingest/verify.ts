import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, stat, statfs } from "node:fs/promises";
import { basename, dirname, join, resolve, sep } from "node:path";
import { Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { crc32 } from "node:zlib";
import yauzl from "yauzl";
import { InterruptedError, LocalIoError, describeIoError } from "../errors.js";
import type { Manifest } from "../pack/manifest.js";
import { MANIFEST_NAME, overrideWarnings } from "../pack/manifest.js";
import type { PackageDicomSummary } from "../dicom/types.js";
import { noEmit, type Emit } from "../ui/events.js";
import {
  EXECUTABLE_RE,
  NESTED_ARCHIVE_RE,
  S_IFDIR,
  S_IFLNK,
  S_IFREG,
  checkEntryName,
  collisionKey,
  decodeEntryName,
  sniffDangerousContent,
  unixFileType,
  type NameProblemCode,
} from "./names.js";
import { hashFile, readSidecar } from "./sidecar.js";

/** Bytes of each entry's head kept for content sniffing: the DICOM magic at 128 and a PE header behind an MZ preamble. */
const SNIFF_HEAD = 4096;

/** Stable codes of everything verify can find wrong with a package. */
export type ProblemCode =
  | NameProblemCode
  | "NOT_A_ZIP"
  | "ZIP_STRUCTURE"
  | "SYMLINK_ENTRY"
  | "SPECIAL_FILE_ENTRY"
  | "DUPLICATE_ENTRY"
  | "CASE_COLLISION"
  | "FILE_FOLDER_CONFLICT"
  | "NO_ROOT_FOLDER"
  | "MULTIPLE_ROOT_FOLDERS"
  | "OUTSIDE_ROOT_FOLDER"
  | "TOO_MANY_ENTRIES"
  | "TOO_LARGE"
  | "COMPRESSION_RATIO"
  | "OVERLAPPING_ENTRIES"
  | "ENCRYPTED_ENTRY"
  | "UNSUPPORTED_COMPRESSION"
  | "CRC_MISMATCH"
  | "ENTRY_UNREADABLE"
  | "NESTED_ARCHIVE"
  | "EXECUTABLE"
  | "UNSEALED"
  | "MANIFEST_INVALID"
  | "MANIFEST_ROOT_MISMATCH"
  | "MISSING_FILE"
  | "EXTRA_FILE"
  | "FILE_SIZE_MISMATCH"
  | "FILE_HASH_MISMATCH"
  | "SIDECAR_INVALID"
  | "SIDECAR_MISMATCH"
  | "EXTRACT_FAILED";

/** One thing wrong with a package. `entry` shows the root folder as "<root>" so it carries no patient name. */
export interface PackageProblem {
  /** A ProblemCode for a problem; a warning carries its own code. */
  code: string;
  message: string;
  entry?: string;
}

/** Limits against zip bombs and absurd packages. */
export interface VerifyLimits {
  maxEntries: number;
  /** Total declared uncompressed bytes. */
  maxUnpackedBytes: number;
  /** Uncompressed/compressed ratio, applied to entries over 1 MiB and to the package over 16 MiB. */
  maxRatio: number;
  /** Largest manifest.json read into memory. */
  maxManifestBytes: number;
}

/** Default limits: generous for a real multi-GB study, far below what a bomb declares. */
export const defaultVerifyLimits: VerifyLimits = {
  maxEntries: 100_000,
  maxUnpackedBytes: 100e9,
  maxRatio: 100,
  maxManifestBytes: 64 * 1024 * 1024,
};

/** Options of verifyPackage. */
export interface VerifyOptions {
  /** Accept packages without manifest.json (made by other tools); they are reported as unsealed. */
  allowUnsealed?: boolean;
  limits?: Partial<VerifyLimits>;
  /** Marker file to check; default `<zip>.sha256` when it exists; false to ignore markers. */
  sidecarPath?: string | false;
  /** Extract into this (empty, existing) staging folder while checking; only when the structure is clean. */
  extractTo?: string;
  /** SHA-256 of the zip already computed for this exact file (same size and mtime); skips a second read. */
  knownSha256?: { sha256: string; size: number; mtimeMs: number };
  emit?: Emit;
  signal?: AbortSignal;
}

/** What the package says about itself (PHI: root and patientName). */
export interface PackageSummary {
  /** Root folder name (the patient name made safe): PHI. */
  root?: string;
  /** Patient name as given to pack: PHI. */
  patientName?: string;
  files: number;
  bytes: number;
  compressedBytes: number;
  byKind?: Record<string, number>;
  dicom?: PackageDicomSummary;
  createdAt?: string;
  tool?: string;
}

/** Result of verifyPackage: every problem found, not just the first. */
export interface VerifyResult {
  ok: boolean;
  /** A manifest.json was present and parsed. */
  sealed: boolean;
  sha256: string;
  /** Package id: first 12 hex digits of the zip's SHA-256 (no PHI). */
  id: string;
  size: number;
  sidecar: "absent" | "match" | "mismatch" | "invalid" | "ignored";
  problems: PackageProblem[];
  warnings: PackageProblem[];
  summary: PackageSummary;
  /** When extractTo was given and nothing failed: the extracted root folder. */
  extracted?: { root: string; files: number; bytes: number; dirs: string[] };
  durationMs: number;
}

interface EntryInfo {
  entry: yauzl.Entry;
  name: string;
  isDir: boolean;
  safe: boolean;
  /** Name relative to the root folder, for safe names under the root. */
  rel?: string;
}

interface Computed {
  size: number;
  sha256: string;
}

const ONE_MIB = 1024 * 1024;
const LOCAL_IO_CODES = new Set(["ENOSPC", "EDQUOT", "EACCES", "EPERM", "EROFS", "EIO", "EMFILE", "ENFILE", "ENOTDIR"]);

/** Entry name as shown in messages: the root folder (patient name) replaced by "<root>". */
function displayName(name: string, root: string | undefined): string {
  if (root !== undefined && (name === root || name.startsWith(root + "/") || name.startsWith(root + "\\"))) return "<root>" + name.slice(root.length);
  // Without one root folder, any top-level folder may be a patient name.
  if (root === undefined && /^[^/\\.][^/\\]*[/\\]/.test(name) && !/^[a-zA-Z]:/.test(name)) return "<folder>" + name.slice(name.search(/[/\\]/));
  return name;
}

function openZip(path: string): Promise<yauzl.ZipFile> {
  return new Promise((res, rej) =>
    yauzl.open(path, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true, strictFileNames: true }, (err, zf) =>
      err ? rej(err) : res(zf),
    ),
  );
}

/** Read the central directory (names, sizes, offsets) without touching file data. */
function readCentralDirectory(zf: yauzl.ZipFile, max: number): Promise<{ entries: yauzl.Entry[]; truncated: boolean }> {
  return new Promise((res, rej) => {
    const entries: yauzl.Entry[] = [];
    const cleanup = () => {
      zf.removeAllListeners("entry");
      zf.removeAllListeners("end");
      zf.removeAllListeners("error");
    };
    zf.on("entry", (e: yauzl.Entry) => {
      entries.push(e);
      if (entries.length > max) {
        cleanup();
        res({ entries, truncated: true });
        return;
      }
      zf.readEntry();
    });
    zf.on("end", () => {
      cleanup();
      res({ entries, truncated: false });
    });
    zf.on("error", (err: Error) => {
      cleanup();
      rej(err);
    });
    zf.readEntry();
  });
}

/** Check that a zip's end record and central directory read (the "upload is complete" signal for unmarked files). */
export async function readsAsZip(path: string): Promise<boolean> {
  let zf: yauzl.ZipFile | undefined;
  try {
    zf = await openZip(path);
    await readCentralDirectory(zf, defaultVerifyLimits.maxEntries);
    return true;
  } catch {
    return false;
  } finally {
    zf?.close();
  }
}

function openEntryStream(zf: yauzl.ZipFile, entry: yauzl.Entry): Promise<NodeJS.ReadableStream & import("node:stream").Readable> {
  return new Promise((res, rej) => zf.openReadStream(entry, (err, rs) => (err ? rej(err) : res(rs))));
}

/**
 * Check a package: structure, names, limits, CRC-32 and SHA-256 of every entry, manifest and marker, and
 * optionally extract it while reading (only into `extractTo`, only when the structure is clean). Streams;
 * memory stays flat whatever the package size. Never throws for a bad package (problems are returned);
 * throws InterruptedError when aborted and a typed I/O error when the zip itself cannot be read.
 */
export async function verifyPackage(path: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const started = Date.now();
  const emit = opts.emit ?? noEmit;
  const limits = { ...defaultVerifyLimits, ...opts.limits };
  const problems: PackageProblem[] = [];
  const warnings: PackageProblem[] = [];
  const problem = (code: ProblemCode, message: string, entry?: string) => problems.push(entry === undefined ? { code, message } : { code, message, entry });
  const warn = (code: string, message: string, entry?: string) => {
    warnings.push(entry === undefined ? { code, message } : { code, message, entry });
    emit({ type: "warn", code, message });
  };
  const checkAbort = () => {
    if (opts.signal?.aborted) throw new InterruptedError();
  };

  const st = await stat(path);
  const summary: PackageSummary = { files: 0, bytes: 0, compressedBytes: 0 };

  // Whole-file hash runs beside the entry pass (the page cache serves both reads).
  const known = opts.knownSha256;
  const wholeHash: Promise<string> =
    known && known.size === st.size && known.mtimeMs === st.mtimeMs ? Promise.resolve(known.sha256) : hashFile(path, opts.signal);
  wholeHash.catch(() => {});

  let zf: yauzl.ZipFile | undefined;
  let infos: EntryInfo[] = [];
  let root: string | undefined;
  let structuralOk = true;
  let extracted: VerifyResult["extracted"];
  let manifestBuf: Buffer | undefined;
  let manifestEntryPresent = false;
  const computed = new Map<string, Computed>();

  try {
    emit({ type: "step", id: "verify", label: "Checking package structure" });
    try {
      zf = await openZip(path);
    } catch (err) {
      problem("NOT_A_ZIP", `Not a readable zip file: ${(err as Error).message}`);
      structuralOk = false;
    }
    if (zf) {
      let entries: yauzl.Entry[] = [];
      try {
        const cd = await readCentralDirectory(zf, limits.maxEntries);
        entries = cd.entries;
        if (cd.truncated) {
          problem("TOO_MANY_ENTRIES", `More than ${limits.maxEntries} entries (the zip declares ${zf.entryCount})`);
          structuralOk = false;
        }
      } catch (err) {
        problem("ZIP_STRUCTURE", `Zip central directory is damaged: ${(err as Error).message}`);
        structuralOk = false;
      }
      if (structuralOk) {
        const r = checkStructure(entries, limits, zf.fileSize, problem, warn);
        infos = r.infos;
        root = r.root;
        structuralOk = r.ok;
      } else {
        infos = [];
      }
      summary.root = root;
      const zipBase = basename(path).replace(/\.zip$/i, "").normalize("NFC");
      if (root !== undefined && root.normalize("NFC") !== zipBase) warn("ROOT_NAME_MISMATCH", "The zip file name differs from its root folder name (renamed in transit, or a mix-up)");
      manifestEntryPresent = infos.some((i) => !i.isDir && /^[^/]+\/manifest\.json$/.test(i.name));
      const lastFile = [...infos].reverse().find((i) => !i.isDir);
      if (manifestEntryPresent && lastFile && root !== undefined && lastFile.name !== `${root}/${MANIFEST_NAME}`) warn("MANIFEST_NOT_LAST", "manifest.json is not the last entry (not written by scanbridge pack?)");
    }
    checkAbort();

    // Data pass: CRC-32 and SHA-256 of every entry; extraction only when nothing structural is wrong.
    const limitsBroken = problems.some((p) => ["TOO_MANY_ENTRIES", "TOO_LARGE", "COMPRESSION_RATIO", "OVERLAPPING_ENTRIES", "ZIP_STRUCTURE", "NOT_A_ZIP"].includes(p.code));
    let writing = opts.extractTo !== undefined && structuralOk && problems.length === 0;
    if (writing && !limitsBroken) {
      // Refuse to start an extraction that cannot fit: a full disk is our problem, not the sender's.
      const declared = infos.reduce((s, i) => s + (i.isDir ? 0 : i.entry.uncompressedSize), 0);
      const fs = await statfs(opts.extractTo!);
      const free = fs.bavail * fs.bsize;
      if (declared + 64 * ONE_MIB > free) {
        throw new LocalIoError("DISK_FULL", `Not enough space to extract: ${declared} bytes needed, ${free} free`, {
          hint: "Free space on the ready folder's file system; the package stays in the queue.",
          retryable: true,
        });
      }
    }
    const createdDirs = new Set<string>();
    const stagingRoot = opts.extractTo ? resolve(opts.extractTo) : undefined;
    if (zf && !limitsBroken) {
      const total = infos.reduce((s, i) => s + (i.isDir ? 0 : i.entry.uncompressedSize), 0);
      let done = 0;
      emit({ type: "step", id: "verify-data", label: writing ? "Checking and extracting files" : "Checking files" });
      for (const info of infos) {
        checkAbort();
        if (info.isDir) {
          if (writing && info.safe) {
            const dir = resolveInside(stagingRoot!, info.name);
            await mkdir(dir, { recursive: true });
            createdDirs.add(dir);
          }
          continue;
        }
        const e = info.entry;
        if (e.isEncrypted() || (e.compressionMethod !== 0 && e.compressionMethod !== 8)) continue;
        const isManifest = root !== undefined && info.name === `${root}/${MANIFEST_NAME}`;
        const keepManifest = isManifest && e.uncompressedSize <= limits.maxManifestBytes;
        const hash = createHash("sha256");
        let crc = 0;
        let size = 0;
        let head = Buffer.alloc(0);
        const manifestChunks: Buffer[] = [];
        const tap = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            hash.update(chunk);
            crc = crc32(chunk, crc);
            size += chunk.length;
            if (head.length < SNIFF_HEAD) head = Buffer.concat([head, chunk.subarray(0, SNIFF_HEAD - head.length)]);
            if (keepManifest) manifestChunks.push(chunk);
            done += chunk.length;
            emit({ type: "progress", id: "verify-data", done, total, unit: "bytes" });
            cb(null, chunk);
          },
        });
        let target: string | undefined;
        if (writing && info.safe) {
          target = resolveInside(stagingRoot!, info.name);
          const parent = dirname(target);
          if (!createdDirs.has(parent)) {
            await mkdir(parent, { recursive: true });
            for (let d = parent; d.startsWith(stagingRoot! + sep) && !createdDirs.has(d); d = dirname(d)) createdDirs.add(d);
          }
        }
        try {
          const rs = await openEntryStream(zf, e);
          const sink: Writable = target
            ? createWriteStream(target, { flags: "wx", mode: 0o644, flush: true, highWaterMark: 1024 * 1024 })
            : new Writable({ write: (_c, _e, cb) => cb() });
          await pipeline(rs, tap, sink, opts.signal ? { signal: opts.signal } : {});
        } catch (err) {
          checkAbort();
          const msg = (err as Error).message;
          const code = (err as NodeJS.ErrnoException).code ?? "";
          if (target && LOCAL_IO_CODES.has(code)) throw describeIoError(err, "the staging folder"); // our disk, not the package

          problem("ENTRY_UNREADABLE", `Cannot read entry: ${msg}`, displayName(info.name, root));
          writing = false;
          continue;
        }
        if ((crc >>> 0) !== (e.crc32 >>> 0)) {
          problem("CRC_MISMATCH", `CRC-32 does not match (stored ${hex8(e.crc32)}, computed ${hex8(crc)})`, displayName(info.name, root));
          writing = false;
        }
        const kind = sniffDangerousContent(head);
        if (kind === "archive" && !NESTED_ARCHIVE_RE.test(info.name)) problem("NESTED_ARCHIVE", "File content is an archive", displayName(info.name, root));
        if (kind === "executable" && !EXECUTABLE_RE.test(info.name)) problem("EXECUTABLE", "File content is a program (executable header)", displayName(info.name, root));
        if (kind) writing = false;
        if (info.rel !== undefined && !isManifest) computed.set(info.rel, { size, sha256: hash.digest("hex") });
        if (keepManifest) manifestBuf = Buffer.concat(manifestChunks);
        if (isManifest && !keepManifest) problem("MANIFEST_INVALID", `manifest.json is larger than ${limits.maxManifestBytes} bytes`);
        summary.files += 1;
        summary.bytes += size;
        summary.compressedBytes += e.compressedSize;
      }
      emit({ type: "step-done", id: "verify-data" });
      if (writing && root !== undefined) {
        extracted = { root: join(stagingRoot!, root), files: summary.files, bytes: summary.bytes, dirs: [...createdDirs] };
      }
    }
  } finally {
    zf?.close();
  }

  // The manifest: the package's own statement of what it holds.
  let sealed = false;
  if (manifestBuf) {
    const m = parseManifest(manifestBuf);
    if (typeof m === "string") problem("MANIFEST_INVALID", m);
    else {
      sealed = true;
      if (m.root !== root) problem("MANIFEST_ROOT_MISMATCH", "manifest.json names a different root folder than the zip holds");
      summary.patientName = m.patient?.name;
      summary.dicom = m.dicom;
      summary.createdAt = m.createdAt;
      summary.tool = m.tool ? `${m.tool.name} ${m.tool.version}` : undefined;
      summary.byKind = m.totals?.byKind as Record<string, number> | undefined;
      // What the sender overrode (wrong patient, unchecked files) is never silently accepted: staff see it.
      for (const w of overrideWarnings(m)) warn(w.code, w.message, w.entry);
      const listed = new Set<string>();
      for (const f of m.files) {
        if (listed.has(f.path)) problem("MANIFEST_INVALID", "manifest.json lists a file twice", `<root>/${f.path}`);
        listed.add(f.path);
        const c = computed.get(f.path);
        if (!c) problem("MISSING_FILE", "Listed in manifest.json but not in the zip", `<root>/${f.path}`);
        else if (c.size !== f.size) problem("FILE_SIZE_MISMATCH", `Size ${c.size} differs from manifest (${f.size})`, `<root>/${f.path}`);
        else if (c.sha256 !== f.sha256.toLowerCase()) problem("FILE_HASH_MISMATCH", "SHA-256 differs from manifest", `<root>/${f.path}`);
      }
      for (const rel of computed.keys()) if (!listed.has(rel)) problem("EXTRA_FILE", "In the zip but not listed in manifest.json", `<root>/${rel}`);
    }
  } else if (!manifestEntryPresent && problems.every((p) => p.code !== "NOT_A_ZIP" && p.code !== "ZIP_STRUCTURE" && p.code !== "TOO_MANY_ENTRIES")) {
    const msg = "No manifest.json: the package was not made by scanbridge (unsealed)";
    if (opts.allowUnsealed) warn("UNSEALED", msg);
    else problem("UNSEALED", `${msg}; accept it with --allow-unsealed`);
  }

  const sha256 = await wholeHash;
  checkAbort();

  // The marker beside the zip.
  let sidecar: VerifyResult["sidecar"] = "ignored";
  if (opts.sidecarPath !== false) {
    const sc = await readSidecar(opts.sidecarPath ?? `${path}.sha256`);
    if (!sc) sidecar = "absent";
    else if (!sc.parsed) {
      sidecar = "invalid";
      problem("SIDECAR_INVALID", "The .sha256 marker is not in sha256sum format");
    } else if (sc.parsed.sha256 !== sha256) {
      sidecar = "mismatch";
      problem("SIDECAR_MISMATCH", "The zip's SHA-256 does not match its .sha256 marker (damaged or incomplete transfer)");
    } else {
      sidecar = "match";
      if (sc.parsed.fileName.replace(/^\*/, "") !== basename(path)) warn("SIDECAR_NAME", "The .sha256 marker names another file");
    }
  }

  if (opts.extractTo !== undefined && problems.length === 0 && !extracted) problem("EXTRACT_FAILED", "The package checked out but was not extracted");
  const ok = problems.length === 0;
  if (!ok) extracted = undefined;
  emit({ type: "step-done", id: "verify", label: ok ? "Package verified" : "Package rejected", ok });
  return { ok, sealed, sha256, id: sha256.slice(0, 12), size: st.size, sidecar, problems, warnings, summary, extracted, durationMs: Date.now() - started };
}

/** A name with control characters shown as \xNN, safe to print on a terminal. */
function printable(name: string): string {
  // eslint-disable-next-line no-control-regex
  return name.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, "0");
}

/** Resolve an already validated entry name under the staging folder; refuses anything that would leave it. */
function resolveInside(base: string, name: string): string {
  const p = resolve(base, name.endsWith("/") ? name.slice(0, -1) : name);
  if (!p.startsWith(base + sep)) throw new Error(`refusing to write outside the staging folder: ${name}`);
  return p;
}

type ProblemFn = (code: ProblemCode, message: string, entry?: string) => void;
type WarnFn = (code: string, message: string, entry?: string) => void;

/** Checks that need only the central directory: names, types, root folder, collisions, limits, overlaps. */
function checkStructure(entries: yauzl.Entry[], limits: VerifyLimits, fileSize: number, problem: ProblemFn, warn: WarnFn): { infos: EntryInfo[]; root: string | undefined; ok: boolean } {
  const infos: EntryInfo[] = [];
  let ok = true;
  // Problems are held until the root folder is known, so messages can show it as "<root>" (no patient name).
  const found: Array<{ code: ProblemCode; message: string; name?: string; shown?: string }> = [];
  const bad = (code: ProblemCode, message: string, name?: string) => {
    ok = false;
    found.push({ code, message, name });
  };
  const badShown = (code: ProblemCode, message: string, shown: string) => {
    ok = false;
    found.push({ code, message, shown });
  };
  let legacyNames = 0;
  for (const e of entries) {
    const raw = e.fileName as unknown as Buffer;
    const decoded = decodeEntryName(e.generalPurposeBitFlag, raw, e.extraFields);
    if ("invalid" in decoded) {
      badShown("BAD_NAME_ENCODING", "Entry name is flagged UTF-8 but is not valid UTF-8", printable(decoded.invalid));
      infos.push({ entry: e, name: decoded.invalid, isDir: false, safe: false });
      continue;
    }
    if (decoded.legacyEncoding) legacyNames++;
    const name = decoded.name;
    const isDir = name.endsWith("/");
    const codes = checkEntryName(name);
    const messages: Record<string, string> = {
      ABSOLUTE_PATH: "Absolute path",
      PARENT_PATH: "Path climbs out of the folder with '..' (zip-slip)",
      BACKSLASH_PATH: "Backslash in path",
      DRIVE_LETTER: "Drive letter in path",
      CONTROL_CHARACTER: "Control character in name",
      EMPTY_PATH_SEGMENT: "Empty or '.' path segment",
      NAME_TOO_LONG: "A path segment is longer than 255 bytes",
    };
    for (const c of codes) bad(c as ProblemCode, messages[c] ?? c, name);
    const type = unixFileType(e.versionMadeBy, e.externalFileAttributes);
    let safe = codes.length === 0;
    if (type === S_IFLNK) {
      bad("SYMLINK_ENTRY", "Symbolic link entry", name);
      safe = false;
    } else if (type !== undefined && type !== S_IFREG && type !== S_IFDIR) {
      bad("SPECIAL_FILE_ENTRY", "Device, FIFO or socket entry", name);
      safe = false;
    }
    if (e.isEncrypted()) bad("ENCRYPTED_ENTRY", "Encrypted entry", name);
    else if (!isDir && e.compressionMethod !== 0 && e.compressionMethod !== 8) bad("UNSUPPORTED_COMPRESSION", `Compression method ${e.compressionMethod} is not supported`, name);
    infos.push({ entry: e, name, isDir, safe });
  }
  if (legacyNames > 0) warn("NAME_ENCODING", `${legacyNames} entry name(s) are not marked UTF-8 and were read as CP437`);

  // Exactly one root folder.
  const roots = new Set<string>();
  for (const i of infos) if (i.safe) roots.add(i.name.split("/")[0]!);
  const root = roots.size === 1 ? [...roots][0]! : undefined;
  if (roots.size === 0) bad("NO_ROOT_FOLDER", "The zip holds no root folder");
  if (roots.size > 1) bad("MULTIPLE_ROOT_FOLDERS", `The zip has ${roots.size} top-level folders or files; a package has exactly one root folder`);
  for (const i of infos) {
    if (!i.safe) continue;
    const parts = i.name.replace(/\/$/, "").split("/");
    if (!i.isDir && parts.length === 1) {
      bad("OUTSIDE_ROOT_FOLDER", "File at the top level, outside the root folder", i.name);
      i.safe = false;
    } else if (root !== undefined && parts[0] === root && parts.length > 1) i.rel = parts.slice(1).join("/");
  }

  // Duplicates and names that collide on case-insensitive / normalising file systems.
  const exact = new Set<string>();
  const byKey = new Map<string, string>();
  const fileKeys = new Set<string>();
  const dirKeys = new Set<string>();
  for (const i of infos) {
    const name = i.name.replace(/\/$/, "");
    if (exact.has(name)) {
      bad("DUPLICATE_ENTRY", "The same name appears twice", i.name);
      i.safe = false;
      continue;
    }
    exact.add(name);
    const key = collisionKey(name);
    const other = byKey.get(key);
    if (other !== undefined) {
      bad("CASE_COLLISION", "Name collides with another entry on case-insensitive file systems", i.name);
      i.safe = false;
      continue;
    }
    byKey.set(key, name);
    if (i.isDir) dirKeys.add(key);
    else fileKeys.add(key);
    const parts = key.split("/");
    for (let n = 1; n < parts.length; n++) dirKeys.add(parts.slice(0, n).join("/"));
  }
  for (const i of infos) {
    if (!i.isDir && dirKeys.has(collisionKey(i.name))) {
      bad("FILE_FOLDER_CONFLICT", "A file and a folder have the same name", i.name);
      i.safe = false;
    }
  }

  // Nested archives and programs, by name (content is sniffed while reading).
  for (const i of infos) {
    if (i.isDir) continue;
    if (NESTED_ARCHIVE_RE.test(i.name)) bad("NESTED_ARCHIVE", "Nested archive", i.name);
    else if (EXECUTABLE_RE.test(i.name)) bad("EXECUTABLE", "Program or script", i.name);
  }

  // Zip-bomb limits on declared sizes (yauzl refuses streams that exceed what they declare).
  let total = 0;
  let compressed = 0;
  for (const i of infos) {
    const e = i.entry;
    total += e.uncompressedSize;
    compressed += e.compressedSize;
    if (e.uncompressedSize > ONE_MIB && e.uncompressedSize / Math.max(e.compressedSize, 1) > limits.maxRatio) {
      bad("COMPRESSION_RATIO", `Compression ratio ${Math.round(e.uncompressedSize / Math.max(e.compressedSize, 1))}:1 exceeds ${limits.maxRatio}:1 (zip bomb?)`, i.name);
    }
  }
  if (total > limits.maxUnpackedBytes) bad("TOO_LARGE", `Declared uncompressed size ${total} bytes exceeds the limit of ${limits.maxUnpackedBytes}`);
  if (total > 16 * ONE_MIB && total / Math.max(compressed, 1) > limits.maxRatio && !infos.some((i) => i.entry.uncompressedSize > ONE_MIB && i.entry.uncompressedSize / Math.max(i.entry.compressedSize, 1) > limits.maxRatio)) {
    bad("COMPRESSION_RATIO", `Overall compression ratio ${Math.round(total / Math.max(compressed, 1))}:1 exceeds ${limits.maxRatio}:1 (zip bomb?)`);
  }

  // Entries whose data overlap (the "overlapping files" zip bomb) or run past the end of the file.
  const sorted = [...infos].sort((a, b) => a.entry.relativeOffsetOfLocalHeader - b.entry.relativeOffsetOfLocalHeader);
  for (let n = 0; n < sorted.length; n++) {
    const e = sorted[n]!.entry;
    const next = n + 1 < sorted.length ? sorted[n + 1]!.entry.relativeOffsetOfLocalHeader : fileSize;
    if (e.relativeOffsetOfLocalHeader + 30 + e.compressedSize > next) {
      bad("OVERLAPPING_ENTRIES", "Entry data overlaps another entry or runs past the end of the file", sorted[n]!.name);
    }
  }

  for (const f of found) {
    const shown = f.shown ?? (f.name === undefined ? undefined : printable(displayName(f.name, root)));
    problem(f.code, f.message, shown);
  }
  return { infos, root, ok };
}

/** Parse and shape-check manifest.json; a string explains why it is invalid. */
function parseManifest(buf: Buffer): Manifest | string {
  let m: unknown;
  try {
    m = JSON.parse(buf.toString("utf8"));
  } catch (err) {
    return `manifest.json is not valid JSON: ${(err as Error).message}`;
  }
  if (typeof m !== "object" || m === null) return "manifest.json is not an object";
  const o = m as Partial<Manifest>;
  if (o.format !== "scanbridge-package") return "manifest.json is not a scanbridge package manifest (format)";
  if (o.formatVersion !== 1) return `manifest.json has unsupported formatVersion ${String(o.formatVersion)}`;
  if (typeof o.root !== "string") return "manifest.json has no root";
  if (!Array.isArray(o.files)) return "manifest.json has no files list";
  for (const f of o.files) {
    if (typeof f?.path !== "string" || typeof f.size !== "number" || typeof f.sha256 !== "string" || !/^[0-9a-fA-F]{64}$/.test(f.sha256)) {
      return "manifest.json has a malformed files entry";
    }
  }
  return o as Manifest;
}
