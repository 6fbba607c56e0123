import { randomUUID } from "node:crypto";
import type { PackageDicomSummary } from "../dicom/types.js";
import { isSha256Hex } from "../util/hash.js";
import type { PlannedEntry } from "./plan.js";

/** What kind of file an entry is. `dicom-unreadable` looks like DICOM but could not be parsed. */
export type FileKind = "dicom" | "dicomdir" | "dicom-unreadable" | "document" | "image" | "other";

/** One packaged file, as listed in manifest.json. */
export interface ManifestFile {
  /** Path relative to the package's root folder, forward slashes, NFC. */
  path: string;
  size: number;
  sha256: string;
  kind: FileKind;
  /** For DICOM: the study and series it belongs to. */
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
}

/** A file that was left out of the package, and why. Paths relative to the input they came from. */
export interface ExcludedFile {
  path: string;
  reason:
    | "os-junk" | "executable" | "viewer-software" | "symlink-outside-inputs" | "symlink-loop" | "broken-symlink" | "symlinked-folder" | "special-file"
    | "archive-expanded"
    /** --only-patient: another patient's DICOM file. */
    | "other-patient"
    /** --only-patient: a DICOMDIR that also lists the other patients' files (left out so it never points at missing files). */
    | "dicomdir-other-patients";
  size?: number;
}

/** manifest.json: the contract between `pack` and `verify`/`watch`. Documented in README.md. */
export interface Manifest {
  format: "scanbridge-package";
  formatVersion: 1;
  tool: { name: "scanbridge"; version: string };
  createdAt: string;
  /** The package's root folder name (the patient name made safe for file systems). */
  root: string;
  /** The patient name exactly as given with --patient (NFC). */
  patient: { name: string };
  files: ManifestFile[];
  totals: { files: number; bytes: number; byKind: Partial<Record<FileKind, number>> };
  excluded: ExcludedFile[];
  /** DICOM summary: patients and studies found. */
  dicom?: PackageDicomSummary;
  /** Overrides the sender chose, recorded for the receiving side. */
  overrides?: {
    /** The DICOM patient did not match --patient (or several patients were found) and the sender packaged anyway. */
    allowPatientMismatch?: boolean;
    /** DICOM-looking files whose patient could not be read were packaged (--allow-unchecked); `uncheckedFiles` lists them. */
    allowUnchecked?: boolean;
    uncheckedFiles?: string[];
  };
  /** --only-patient (or the choice at a terminal): the patient kept from a disc holding several; the others are excluded as "other-patient". */
  onlyPatient?: { id?: string; ids?: string[] };
}

/** Name of the manifest entry inside the root folder. */
export const MANIFEST_NAME = "manifest.json";

/** A package warning derived from the manifest: what the sender overrode or what is damaged, for staff to see. */
export interface OverrideWarning {
  code: "PATIENT_MISMATCH_ALLOWED" | "UNCHECKED_ALLOWED" | "DICOM_UNREADABLE_FILES" | "OTHER_PATIENTS_LEFT_OUT";
  message: string;
  /** `<root>/path` of a file concerned (capped list). */
  entry?: string;
}

/** Codes of overrideWarnings, so intake can pick them out of verify's other warnings. */
export const OVERRIDE_WARNING_CODES: ReadonlySet<string> = new Set(["PATIENT_MISMATCH_ALLOWED", "UNCHECKED_ALLOWED", "DICOM_UNREADABLE_FILES", "OTHER_PATIENTS_LEFT_OUT"]);

/** Most unchecked files named one by one in warnings (the count is always given). */
const MAX_NAMED = 20;

/**
 * The overrides and damage a manifest records, as warnings for `verify`, the audit log and the staff notification.
 * The manifest is untrusted: every field is type-checked and lists are capped. No patient names in the messages.
 */
export function overrideWarnings(m: Manifest): OverrideWarning[] {
  const out: OverrideWarning[] = [];
  const o = (typeof m.overrides === "object" && m.overrides !== null ? m.overrides : {}) as Record<string, unknown>;
  const patients = Array.isArray(m.dicom?.patients) ? m.dicom!.patients.length : 0;
  if (o.allowPatientMismatch === true) {
    out.push({
      code: "PATIENT_MISMATCH_ALLOWED",
      message: patients > 1
        ? `The sender overrode the wrong-patient check: the DICOM files belong to ${patients} different patients`
        : "The sender overrode the wrong-patient check: the name in the DICOM files does not match the package's patient",
    });
  }
  const unchecked = Array.isArray(o.uncheckedFiles) ? o.uncheckedFiles.filter((p): p is string => typeof p === "string") : [];
  if (o.allowUnchecked === true) {
    out.push({ code: "UNCHECKED_ALLOWED", message: `The sender packaged ${unchecked.length} file(s) whose patient could not be checked (--allow-unchecked)` });
    for (const p of unchecked.slice(0, MAX_NAMED)) out.push({ code: "UNCHECKED_ALLOWED", message: "Patient not checked (DICOM header unreadable)", entry: `<root>/${p}` });
  }
  const uncheckedSet = new Set(unchecked);
  const damaged = (Array.isArray(m.files) ? m.files : []).filter((f) => f?.kind === "dicom-unreadable" && !uncheckedSet.has(f.path)).length;
  if (damaged > 0) out.push({ code: "DICOM_UNREADABLE_FILES", message: `${damaged} DICOM file(s) are damaged or incomplete (marked dicom-unreadable)` });
  const others = (Array.isArray(m.excluded) ? m.excluded : []).filter((e) => e?.reason === "other-patient").length;
  if (others > 0) out.push({ code: "OTHER_PATIENTS_LEFT_OUT", message: `The sender's disc held other patients too: ${others} of their file(s) were left out (--only-patient)` });
  return out;
}

/** A list of manifest records read by index: an array, or the HashedFiles of a package being written. */
export interface ManifestFileList {
  readonly length: number;
  at(i: number): ManifestFile | undefined;
}

/**
 * The manifest's file list while a package is written, in plan order: each file's SHA-256 as 32 bytes in one buffer,
 * and everything else read from its planned entry when the record is asked for. A record kept as an object with its
 * hash as a 64-character string is about 150 bytes, held from the file's turn in the zip to the end (1.5 MB at
 * 10,000 files, a large study has 50,000), and the V8 heap around it grows by about as much again; made when the
 * manifest is serialised, a chunk at a time, it is garbage right after.
 */
export class HashedFiles implements ManifestFileList, Iterable<ManifestFile> {
  private readonly digests: Buffer;
  private count = 0;
  constructor(private readonly entries: readonly PlannedEntry[]) {
    this.digests = Buffer.alloc(32 * entries.length);
  }
  /** Files hashed so far. */
  get length(): number {
    return this.count;
  }
  /** The SHA-256 (64 hex digits) of the next planned entry. */
  add(sha256: string): void {
    if (this.count >= this.entries.length) throw new Error("more hashes than planned files");
    if (!isSha256Hex(sha256)) throw new Error("not a SHA-256 in hex");
    this.digests.write(sha256, this.count * 32, 32, "hex");
    this.count++;
  }
  /** File i's record, as manifest.json lists it (the DICOM study and series from the inspection, when it has them). */
  at(i: number): ManifestFile | undefined {
    if (!(i >= 0 && i < this.count)) return undefined;
    const e = this.entries[i]!;
    const f: ManifestFile = { path: e.path, size: e.source.size, sha256: this.digests.toString("hex", i * 32, i * 32 + 32), kind: e.kind };
    if (e.source.studyInstanceUid !== undefined) f.studyInstanceUid = e.source.studyInstanceUid;
    if (e.source.seriesInstanceUid !== undefined) f.seriesInstanceUid = e.source.seriesInstanceUid;
    return f;
  }
  *[Symbol.iterator](): Iterator<ManifestFile> {
    for (let i = 0; i < this.count; i++) yield this.at(i)!;
  }
}

/** Files serialised per chunk of manifest.json (a chunk is one buffer: about 30 KB for typical entries). */
const FILES_PER_CHUNK = 128;

/**
 * manifest.json's bytes, exactly `JSON.stringify(m, null, 2) + "\n"`, in chunks of a few dozen KB, made one at a time
 * as the caller asks for them: 10,000 files make a 3 MB manifest (50,000 files 12 MB), which as one string (plus its
 * flattened copy and its buffer), or as all its chunks at once, was the largest allocation at the end of a pack. The
 * files are serialised a chunk at a time; everything else around them as one string.
 */
export function* manifestJsonChunks(m: Omit<Manifest, "files"> & { files: ManifestFileList }): Generator<Buffer, void, undefined> {
  // A placeholder that no value can contain (it is random), so the text around the list splits at it exactly once.
  const mark = `\u0000files-${randomUUID()}`;
  const around = JSON.stringify({ ...m, files: mark }, null, 2) + "\n";
  const quoted = JSON.stringify(mark);
  const at = around.indexOf(quoted);
  const head = around.slice(0, at);
  const tail = around.slice(at + quoted.length);
  if (m.files.length === 0) {
    yield Buffer.from(`${head}[]${tail}`, "utf8");
    return;
  }
  for (let i = 0; i < m.files.length; i += FILES_PER_CHUNK) {
    // An element of a list in the manifest's top-level object: indented by four spaces, its properties by six.
    const items: string[] = [];
    for (let j = i; j < Math.min(i + FILES_PER_CHUNK, m.files.length); j++) items.push(`    ${JSON.stringify(m.files.at(j), null, 2).replaceAll("\n", "\n    ")}`);
    const part = items.join(",\n");
    const first = i === 0;
    const last = i + FILES_PER_CHUNK >= m.files.length;
    yield Buffer.from(`${first ? `${head}[\n` : ",\n"}${part}${last ? `\n  ]${tail}` : ""}`, "utf8");
  }
}
