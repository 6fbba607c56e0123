/**
 * `verify` and the first step of `watch` intake: one zip read from one descriptor (zip-reader.ts), its structure
 * checked (zip-checks.ts, pure), its names decoded by evidence (names.ts), then every entry read once, CRC-32 and
 * SHA-256 checked, and written under the staging folder when nothing is wrong (extract.ts). Sealed packages are
 * held to their manifest; hand-made (unsealed) ones are extracted as they are, for intake.ts to normalise.
 */
import { constants as fsc } from "node:fs";
import { open, statfs, type FileHandle } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { InterruptedError, LocalIoError } from "../errors.js";
import type { Manifest } from "../pack/manifest.js";
import { MANIFEST_NAME, overrideWarnings } from "../pack/manifest.js";
import { classifyFile, type Classification } from "../pack/classify.js";
import type { PackageDicomSummary } from "../dicom/types.js";
import { noEmit, type Emit } from "../ui/events.js";
import { DEFAULT_EXTRACT_LIMITS } from "../util/extract-limits.js";
import { decodeZipNames, type NameEncoding, type NameProblemCode } from "./names.js";
import { hashFile, readSidecar } from "./sidecar.js";
import { readEntries } from "./extract.js";
import { FATAL_ZIP_CODES, PATH_MAX, checkZipStructure, isManifestName, type CheckedEntry, type ZipCheckCode } from "./zip-checks.js";
import { ZipFormatError, readZipDirectory } from "./zip-reader.js";

/** Stable codes of everything verify can find wrong with a package. */
export type ProblemCode =
  | NameProblemCode
  | ZipCheckCode
  | "NOT_A_ZIP"
  | "ZIP_STRUCTURE"
  | "TOO_MANY_ENTRIES"
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

/** Default limits: the shared safe-extraction limits (src/util/extract-limits.ts) and a manifest cap. */
export const defaultVerifyLimits: VerifyLimits = {
  maxEntries: DEFAULT_EXTRACT_LIMITS.maxEntries,
  maxUnpackedBytes: DEFAULT_EXTRACT_LIMITS.maxUnpackedBytes,
  maxRatio: DEFAULT_EXTRACT_LIMITS.maxRatio,
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
  /** Decoder for Deflate64 entries (Windows Explorer uses it for large files): see archives.ts. */
  openDeflate64?: (fh: FileHandle, e: import("./zip-reader.js").ZipEntryRecord) => Promise<import("node:stream").Readable>;
  /** Code pages to try first for names without the UTF-8 flag (`--zip-encodings`). */
  zipEncodings?: string[];
  /** The name the package arrived under (default: the file's own name): evidence for decoding legacy names. */
  uploadName?: string;
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
  /**
   * When extractTo was given and nothing failed: for a sealed package its root folder; for a hand-made one the
   * staging folder itself (the zip's top level), with every file written, for intake to normalise.
   */
  extracted?: { root: string; files: number; bytes: number; dirs: string[]; written: ExtractedFile[] };
  /** How entry names were decoded (shown to staff when a code page was chosen). */
  nameEncoding: NameEncoding;
  durationMs: number;
}

/** One file written by the extraction: path relative to the extraction folder (its zip name), its size, SHA-256 and classification. */
export interface ExtractedFile {
  rel: string;
  size: number;
  sha256: string;
  classification: Classification;
}

const ONE_MIB = 1024 * 1024;

/** Entry name as shown in messages: the root folder (patient name) replaced by "<root>", any top folder by "<folder>". */
function displayName(name: string, root: string | undefined): string {
  if (root !== undefined && (name === root || name.startsWith(root + "/"))) return "<root>" + name.slice(root.length);
  if (root === undefined && /^[^/.][^/]*\//.test(name) && !/^[a-zA-Z]:/.test(name)) return "<folder>" + name.slice(name.indexOf("/"));
  return name;
}

/** Open a package for reading: never through a symbolic link. */
export async function openPackage(path: string): Promise<FileHandle> {
  return open(path, fsc.O_RDONLY | (fsc.O_NOFOLLOW ?? 0));
}

/**
 * Check that a zip's end record and central directory read (the "upload is complete" signal for unmarked files).
 * Follows `path` (the watcher passes /proc/self/fd/N of a descriptor it opened with O_NOFOLLOW itself).
 */
export async function readsAsZip(path: string): Promise<boolean> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, fsc.O_RDONLY);
    await readZipDirectory(fh, defaultVerifyLimits.maxEntries);
    return true;
  } catch {
    return false;
  } finally {
    await fh?.close();
  }
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

  const fh = await openPackage(path);
  try {
    const st = await fh.stat();
    const summary: PackageSummary = { files: 0, bytes: 0, compressedBytes: 0 };
    const known = opts.knownSha256;
    const wholeHash: Promise<string> = known && known.size === st.size && known.mtimeMs === st.mtimeMs ? Promise.resolve(known.sha256) : hashFile(fh, opts.signal);
    wholeHash.catch(() => {});
    let nameEncoding: NameEncoding = { encoding: "utf-8", evidence: "ascii", legacyNames: 0 };
    let entries: CheckedEntry[] = [];
    let root: string | undefined;
    let claimsSealed = false;
    let fatal = false;
    let extracted: VerifyResult["extracted"];
    let manifestBuf: Buffer | undefined;
    const computed = new Map<string, { size: number; sha256: string }>();

    emit({ type: "step", id: "verify", label: "Checking package structure" });
    let dir;
    try {
      dir = await readZipDirectory(fh, limits.maxEntries);
    } catch (err) {
      if (!(err instanceof ZipFormatError)) throw err;
      fatal = true;
      if (/end of central directory|too short/.test(err.message)) problem("NOT_A_ZIP", `Not a readable zip file: ${err.message}`);
      else problem("ZIP_STRUCTURE", `Zip central directory is damaged: ${err.message}`);
    }
    if (dir?.truncated) {
      problem("TOO_MANY_ENTRIES", `More than ${limits.maxEntries} entries (the zip declares ${dir.declaredEntries})`);
      fatal = true;
    }
    const uploadName = (opts.uploadName ?? basename(path)).replace(/\.zip$/i, "").normalize("NFC");
    if (dir && !fatal) {
      const decoded = decodeZipNames(
        dir.entries.map((e) => ({ raw: e.rawName, flags: e.flags, versionMadeBy: e.versionMadeBy, extraFields: e.extraFields })),
        { uploadName, encodings: opts.zipEncodings },
      );
      nameEncoding = decoded.encoding;
      // Sealed packages (a manifest under one root folder) are held to scanbridge's own layout.
      const sealedClaim = decoded.names.some((n) => isManifestName(n.name));
      const budget = PATH_MAX - Buffer.byteLength(resolve(opts.extractTo ?? "/"), "utf8") - 64;
      const s = checkZipStructure(dir, decoded.names, { limits, pathBudget: budget, strictLayout: sealedClaim });
      entries = s.entries;
      root = s.root;
      claimsSealed = s.claimsSealed;
      for (const f of s.findings) problem(f.code, f.message, f.name === undefined ? undefined : printable(displayName(f.name, root)));
      fatal = s.findings.some((f) => FATAL_ZIP_CODES.has(f.code));
      if (nameEncoding.legacyNames > 0) {
        warn("NAME_ENCODING", `${nameEncoding.legacyNames} entry name(s) are not marked UTF-8; read as ${nameEncoding.encoding} (${describeEvidence(nameEncoding.evidence)})`);
      }
      summary.root = root;
      if (claimsSealed && root !== undefined && root !== uploadName) warn("ROOT_NAME_MISMATCH", "The zip file name differs from its root folder name (renamed in transit, or a mix-up)");
      const lastFile = [...entries].reverse().find((i) => !i.isDir);
      if (claimsSealed && lastFile && lastFile.name !== `${root}/${MANIFEST_NAME}`) warn("MANIFEST_NOT_LAST", "manifest.json is not the last entry (not written by scanbridge pack?)");
    }
    if (dir && !fatal && !claimsSealed) {
      const msg = "No manifest.json: the package was not made by scanbridge (unsealed, hand-made)";
      if (opts.allowUnsealed) warn("UNSEALED", msg);
      else problem("UNSEALED", `${msg}; it is refused because of --sealed-only`);
    }
    checkAbort();

    // Data pass: CRC-32 and SHA-256 of every entry; extraction only when nothing is wrong so far.
    const written: ExtractedFile[] = [];
    if (dir && !fatal) {
      const writeTo = opts.extractTo !== undefined && problems.length === 0 ? resolve(opts.extractTo) : undefined;
      if (writeTo) {
        // Refuse to start an extraction that cannot fit: a full disk is our problem, not the sender's.
        const declared = entries.reduce((s2, i) => s2 + (i.isDir ? 0 : i.record.uncompressedSize), 0);
        const fs = await statfs(writeTo);
        const free = fs.bavail * fs.bsize;
        if (declared + 64 * ONE_MIB > free) {
          throw new LocalIoError("DISK_FULL", `Not enough space to extract: ${declared} bytes needed, ${free} free`, {
            hint: "Free space on the ready folder's file system; the package stays in the queue.",
            retryable: true,
          });
        }
      }
      emit({ type: "step", id: "verify-data", label: writeTo ? "Checking and extracting files" : "Checking files" });
      const manifestName = root !== undefined ? `${root}/${MANIFEST_NAME}` : undefined;
      const r = await readEntries(fh, entries, {
        extractTo: writeTo,
        keep: (i) => claimsSealed && i.name === manifestName,
        keepMax: limits.maxManifestBytes,
        openOther: opts.openDeflate64 ? (e) => opts.openDeflate64!(fh, e) : undefined,
        signal: opts.signal,
        stopWritingOnError: true,
        onProgress: (done, total) => emit({ type: "progress", id: "verify-data", done, total, unit: "bytes" }),
      });
      emit({ type: "step-done", id: "verify-data" });
      for (const info of entries) {
        const d = r.data.get(info);
        if (!d) continue;
        const shown = printable(displayName(info.name, root));
        if (d.error) {
          problem(info.record.method === 9 && !opts.openDeflate64 ? "UNSUPPORTED_COMPRESSION" : "ENTRY_UNREADABLE", `Cannot read entry: ${d.error}`, shown);
          continue;
        }
        if (!d.crcOk) problem("CRC_MISMATCH", "CRC-32 does not match the one stored in the zip", shown);
        const isManifest = info.name === manifestName && claimsSealed;
        const c = classifyFile(info.name, d.head);
        if (claimsSealed && !isManifest) {
          if (c.action === "refuse") problem("NESTED_ARCHIVE", "File content is an archive", shown);
          if (c.action === "exclude" && c.reason === "executable") problem("EXECUTABLE", "File content is a program (executable header)", shown);
        }
        if (info.rel !== undefined && !isManifest) computed.set(info.rel, { size: d.size, sha256: d.sha256 });
        if (isManifest) {
          manifestBuf = r.kept.get(info);
          if (!manifestBuf) problem("MANIFEST_INVALID", `manifest.json is larger than ${limits.maxManifestBytes} bytes`);
        }
        summary.files += 1;
        summary.bytes += d.size;
        summary.compressedBytes += info.record.compressedSize;
        if (d.path && writeTo) written.push({ rel: info.name, size: d.size, sha256: d.sha256, classification: c });
      }
      if (writeTo && r.wrote && problems.length === 0) {
        const base = claimsSealed && root !== undefined ? join(writeTo, root) : writeTo;
        extracted = { root: base, files: summary.files, bytes: summary.bytes, dirs: r.dirs, written };
      }
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
    return { ok, sealed, sha256, id: sha256.slice(0, 12), size: st.size, sidecar, problems, warnings, summary, extracted, nameEncoding, durationMs: Date.now() - started };
  } finally {
    await fh.close();
  }
}

/** Staff-readable words for how a code page was chosen. */
export function describeEvidence(evidence: string): string {
  const words: Record<string, string> = {
    "upload-name": "it matches the upload's own file name",
    dicom: "it matches the patient's name in the DICOM files",
    "zip-encodings": "from --zip-encodings",
    detector: "the most plausible reading",
    host: "the most plausible reading for a Windows zip",
    default: "no better evidence",
    "utf-8-valid": "valid UTF-8",
  };
  return words[evidence] ?? evidence;
}

/** A name with control characters shown as \xNN, safe to print on a terminal. */
function printable(name: string): string {
  // eslint-disable-next-line no-control-regex
  return name.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
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
