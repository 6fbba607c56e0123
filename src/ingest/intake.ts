/**
 * Intake of hand-made (unsealed) packages: what verify extracted as the zip had it is turned into one patient
 * folder. OS junk is left out, archives inside (a zip per image, a zip in the zip) are unpacked in place under the
 * same limits, programs and viewer software are left out and recorded, the layout (no root folder, one wrapper
 * folder) is settled, the DICOM headers are read for identity (same reader and matching rules as `pack`), and
 * scanbridge writes its own manifest (`scanbridge-intake.json`) so the integrity chain starts here.
 */
import { copyFile, link, mkdir, mkdtemp, readdir, rename, rm, rmdir, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, posix, resolve } from "node:path";
import { checkPatient, groupPatients, type DicomEntry } from "../dicom/identity.js";
import { readDicomHeader } from "../dicom/read.js";
import { summarizeDicom } from "../dicom/summary.js";
import type { DicomHeader, PackageDicomSummary, PersonName } from "../dicom/types.js";
import { detectViewer } from "../dicom/viewer.js";
import { InterruptedError } from "../errors.js";
import { isJunkDir, type Classification } from "../pack/classify.js";
import type { FileKind } from "../pack/manifest.js";
import { sanitizeComponent } from "../pack/name.js";
import { forEachConcurrent } from "../util/concurrency.js";
import { DEFAULT_EXTRACT_LIMITS, type ExtractLimits } from "../util/extract-limits.js";
import type { NameEncoding } from "./names.js";
import { deflate64Decoder, extractOtherArchive, type ArchiveFormat } from "./archives.js";
import { hashFile } from "./sidecar.js";
import { sniffUpload } from "./upload-format.js";
import { verifyPackage, type ExtractedFile, type PackageProblem, type VerifyLimits, type VerifyOptions, type VerifyResult } from "./verify.js";

/** The manifest scanbridge writes into every hand-made package it files. */
export const INTAKE_MANIFEST_NAME = "scanbridge-intake.json";
/** The marker put in a ready folder that a person must look at before use. */
export const NEEDS_REVIEW_NAME = "NEEDS-REVIEW.txt";

/** Why a file of a hand-made package was left out. */
export type LeftOutReason = "os-junk" | "executable" | "viewer-software" | "archive-expanded";

/** Why a hand-made package needs a person to look at it. */
export type ReviewReason = "multiple-patients" | "name-mismatch" | "no-dicom-name";

/** Where the ready folder's name came from. */
export type NameSource = "root-folder" | "upload-name" | "dicom-name" | "package-id";

/** What intake made of a hand-made package. PHI: readyName, files' paths, dicom. */
export interface IntakeResult {
  /** The folder (in staging) to rename into ready/. */
  folder: string;
  /** The ready folder's name: NFC, made safe. */
  readyName: string;
  nameSource: NameSource;
  files: Array<{ path: string; size: number; sha256: string; kind: FileKind; studyInstanceUid?: string; seriesInstanceUid?: string }>;
  leftOut: Array<{ path: string; reason: LeftOutReason; size?: number }>;
  /** Archives inside the package that were unpacked. */
  expanded: number;
  viewer?: string;
  dicom?: PackageDicomSummary;
  unreadableDicom: number;
  review: ReviewReason[];
  /** For staff only: who is in which files (with the review marker and notification). */
  patientTable: string[];
  byKind: Partial<Record<FileKind, number>>;
}

/** Options of intakeHandmade. */
export interface IntakeOptions {
  /** The staging folder verify extracted into (the zip's top level). */
  staging: string;
  written: ExtractedFile[];
  /** The upload's own file name (e.g. "王小明.zip"). */
  uploadName: string;
  id: string;
  sha256: string;
  nameEncoding: NameEncoding;
  limits?: Partial<VerifyLimits & ExtractLimits>;
  signal?: AbortSignal;
  /** Unpack an archive found inside the package into `dest` (verify + extraction, under the same limits). */
  unpackNested: (archive: string, dest: string, depth: number) => Promise<{ written: ExtractedFile[]; problems: PackageProblem[] }>;
  /** Nesting depth of this package (1 for an upload). */
  depth?: number;
}

/** Folder names that say nothing about the patient: the ready folder is then named after the upload or the DICOM. */
const GENERIC_NAMES = /^(dicom|dcm|images?|img|scans?|files?|export|exports|data|cd|dvd|disc|disk|usb|pacs|studies|study|series|viewer|new folder( \(\d+\))?|nueva carpeta|nouveau dossier|neuer ordner|nuova cartella|nova pasta|新建文件夹|新しいフォルダー|새 폴더|مجلد جديد|archive|compressed|untitled( folder)?|download(s)?|documents?|desktop|package|patient|medical|records?)$/i;

/** Whether a folder or upload name is a real name for the package (not "DICOM", "New folder", "Archive"). */
export function isMeaningfulName(s: string): boolean {
  const t = s.normalize("NFC").trim();
  return t.length > 0 && !GENERIC_NAMES.test(t) && /\p{L}/u.test(t);
}

const DICOM_KINDS = new Set<FileKind>(["dicom", "dicomdir"]);

function personName(n: PersonName | undefined): string {
  if (!n) return "";
  return (n.alphabetic || n.ideographic || n.phonetic || "").replace(/\^+/g, " ").replace(/\s+/g, " ").trim();
}

/** Remove empty folders left after files were taken out, deepest first. */
async function pruneEmpty(dir: string): Promise<boolean> {
  let empty = true;
  for (const d of await readdir(dir, { withFileTypes: true })) {
    if (d.isDirectory()) {
      if (await pruneEmpty(join(dir, d.name))) await rmdir(join(dir, d.name));
      else empty = false;
    } else empty = false;
  }
  return empty;
}

/**
 * Turn what verify extracted into one patient folder. Returns problems (the package is then quarantined) when an
 * archive inside cannot be unpacked safely or the limits are exceeded across nesting.
 */
export async function intakeHandmade(opts: IntakeOptions): Promise<{ ok: true; result: IntakeResult } | { ok: false; problems: PackageProblem[] }> {
  const limits = { ...DEFAULT_EXTRACT_LIMITS, ...opts.limits };
  const depth = opts.depth ?? 1;
  const problems: PackageProblem[] = [];
  const leftOut: IntakeResult["leftOut"] = [];
  type F = { rel: string; size: number; sha256: string; classification: Classification; depth?: number };
  let files: F[] = opts.written.map((w) => ({ ...w, depth }));
  let expanded = 0;
  const abort = () => {
    if (opts.signal?.aborted) throw new InterruptedError();
  };

  // 1. OS junk: __MACOSX/, ._ files, .DS_Store, Thumbs.db (the table pack uses).
  const isJunk = (f: F) => f.rel.split("/").slice(0, -1).some(isJunkDir) || (f.classification.action === "exclude" && f.classification.reason === "os-junk");
  for (const f of files.filter(isJunk)) {
    leftOut.push({ path: f.rel, reason: "os-junk", size: f.size });
    await rm(join(opts.staging, f.rel), { force: true });
  }
  files = files.filter((f) => !isJunk(f));

  // 2. Archives inside: unpacked in place (scans.zip -> scans/), one level deeper each, same limits.
  let totalFiles = files.length;
  let totalBytes = files.reduce((s, f) => s + f.size, 0);
  const failed = new Set<F>();
  for (let a = files.find((f) => f.classification.action === "refuse"); a; a = files.find((f) => f.classification.action === "refuse" && !failed.has(f))) {
    abort();
    const at = a.depth ?? depth;
    failed.add(a);
    if (at >= limits.maxDepth) {
      problems.push({ code: "NESTED_TOO_DEEP", message: `Archives nested more than ${limits.maxDepth} deep`, entry: maskTop(a.rel) });
      continue;
    }
    const abs = join(opts.staging, a.rel);
    const base = a.rel.replace(/\.(zip|7z|rar|tar|tgz|tar\.gz|gz)$/i, "");
    const destRel = base === a.rel ? `${a.rel}-unpacked` : base;
    const tmp = await mkdtemp(join(dirname(abs), ".unpack-"));
    const inner = await opts.unpackNested(abs, tmp, at + 1);
    if (inner.problems.length > 0) {
      for (const p of inner.problems) problems.push({ ...p, entry: `${maskTop(a.rel)} > ${p.entry ?? ""}`.replace(/ > $/, "") });
      await rm(tmp, { recursive: true, force: true });
      continue;
    }
    totalFiles += inner.written.length - 1;
    totalBytes += inner.written.reduce((s, f) => s + f.size, 0) - a.size;
    if (totalFiles > limits.maxEntries || totalBytes > limits.maxUnpackedBytes) {
      problems.push({ code: "TOO_LARGE", message: "Archives inside the package unpack to more than the limits allow", entry: maskTop(a.rel) });
      await rm(tmp, { recursive: true, force: true });
      continue;
    }
    // A zip of one folder named like the zip (scans.zip holding scans/) lands as that folder, not scans/scans/.
    const innerTops = new Set(inner.written.map((w) => w.rel.split("/")[0]!));
    const strip = innerTops.size === 1 && inner.written.every((w) => w.rel.includes("/")) && [...innerTops][0] === basename(destRel) ? `${[...innerTops][0]}/` : "";
    await rm(abs, { force: true });
    leftOut.push({ path: a.rel, reason: "archive-expanded", size: a.size });
    for (const w of inner.written) {
      const rel = posix.join(destRel, strip ? w.rel.slice(strip.length) : w.rel);
      const target = join(opts.staging, rel);
      if (await stat(target).then(() => true, () => false)) {
        problems.push({ code: "DUPLICATE_ENTRY", message: "A file unpacked from an archive inside the package collides with another file", entry: maskTop(rel) });
        continue;
      }
      await mkdir(dirname(target), { recursive: true, mode: 0o700 });
      await rename(join(tmp, w.rel), target);
      files.push({ ...w, rel, depth: at + 1 });
    }
    await rm(tmp, { recursive: true, force: true });
    expanded++;
    files = files.filter((f) => f !== a);
  }
  if (problems.length > 0) return { ok: false, problems };
  // Junk found inside the unpacked archives goes the same way.
  for (const f of files.filter(isJunk)) {
    leftOut.push({ path: f.rel, reason: "os-junk", size: f.size });
    await rm(join(opts.staging, f.rel), { force: true });
  }
  files = files.filter((f) => !isJunk(f));

  // 3. Programs and viewer software (a copied viewer CD): left out and recorded, like pack's triage.
  // Paths as on the CD: below the patient's folder when the zip has one.
  const tops0 = new Set(files.map((f) => f.rel.split("/")[0]!));
  const prefix = tops0.size === 1 && files.every((f) => f.rel.includes("/")) ? `${[...tops0][0]}/` : "";
  const candidates = files.filter((f) => !(f.classification.action === "include" && DICOM_KINDS.has(f.classification.kind))).map((f) => f.rel.slice(prefix.length));
  const viewer = detectViewer(candidates);
  const viewerPaths = new Set(viewer.found ? viewer.viewerPaths.map((p) => prefix + p) : []);
  const isProgram = (f: F) => viewerPaths.has(f.rel) || (f.classification.action === "exclude" && f.classification.reason === "executable");
  for (const f of files.filter(isProgram)) {
    leftOut.push({ path: f.rel, reason: viewerPaths.has(f.rel) ? "viewer-software" : "executable", size: f.size });
    await rm(join(opts.staging, f.rel), { force: true });
  }
  files = files.filter((f) => !isProgram(f));
  if (files.some((f) => f.rel === INTAKE_MANIFEST_NAME || f.rel === NEEDS_REVIEW_NAME || f.rel.endsWith(`/${INTAKE_MANIFEST_NAME}`))) {
    return { ok: false, problems: [{ code: "RESERVED_NAME", message: `The package holds a file named ${INTAKE_MANIFEST_NAME} or ${NEEDS_REVIEW_NAME}, which scanbridge writes itself` }] };
  }
  await pruneEmpty(opts.staging);

  // 4. Layout: one top-level folder (the patient's folder, or a wrapper) is the root; else the top level is.
  const tops = new Set(files.map((f) => f.rel.split("/")[0]!));
  const single = tops.size === 1 && files.every((f) => f.rel.includes("/"));
  const rootName = single ? [...tops][0]! : undefined;
  const folder = rootName ? join(opts.staging, rootName) : opts.staging;
  const relInFolder = (rel: string) => (rootName ? rel.slice(rootName.length + 1) : rel);
  if (files.length === 0) return { ok: false, problems: [{ code: "EMPTY_PACKAGE", message: "Nothing is left once OS junk and programs are left out" }] };

  // 5. Identity: DICOM headers of every DICOM file (never pixel data), same reader and rules as pack.
  const entries: DicomEntry[] = [];
  const uids = new Map<string, { studyInstanceUid?: string; seriesInstanceUid?: string }>();
  let unreadable = 0;
  await forEachConcurrent(files.filter((f) => f.classification.action === "include" && DICOM_KINDS.has(f.classification.kind)), 4, async (f) => {
    let h: DicomHeader;
    try {
      h = await readDicomHeader(join(opts.staging, f.rel));
    } catch {
      unreadable++;
      f.classification = { action: "include", kind: "dicom-unreadable" };
      return;
    }
    if (!h.isDicomdir) entries.push({ path: f.rel, header: h });
    uids.set(f.rel, { studyInstanceUid: h.studyInstanceUid, seriesInstanceUid: h.seriesInstanceUid });
  }, { signal: opts.signal, checkAbort: abort });
  entries.sort((a, b) => (a.path < b.path ? -1 : 1));
  const dicom = entries.length > 0 ? summarizeDicom(entries) : undefined;
  const groups = entries.length > 0 ? groupPatients(entries) : [];

  // 6. The ready folder's name: as the patient wrote it (root folder, else upload name, else DICOM name).
  const upload = opts.uploadName.replace(/\.(zip|7z|rar|tar|tgz|tar\.gz)$/i, "").normalize("NFC");
  let nameSource: NameSource = "package-id";
  let given = "";
  if (rootName && isMeaningfulName(rootName)) [nameSource, given] = ["root-folder", rootName];
  else if (isMeaningfulName(upload)) [nameSource, given] = ["upload-name", upload];
  else if (groups.length > 0 && personName(groups[0]!.patient.name)) [nameSource, given] = ["dicom-name", personName(groups[0]!.patient.name)];
  let readyName = sanitizeComponent(given);
  if (readyName === "") [nameSource, readyName] = ["package-id", `Package ${opts.id}`];

  const review: ReviewReason[] = [];
  if (groups.length > 1) review.push("multiple-patients");
  else if (entries.length > 0 && (nameSource === "root-folder" || nameSource === "upload-name")) {
    const check = checkPatient(given, entries);
    if (!check.ok) review.push("name-mismatch");
  }
  const patientTable = groups.map((g) => `${personName(g.patient.name) || "(no name)"}  ID ${g.patient.id ?? "?"}  born ${g.patient.birthDate ?? "?"}: ${g.paths.length} file(s), e.g. ${relInFolder(g.paths[0]!)}`);

  // 7. scanbridge's own manifest: SHA-256 of every file it files, the DICOM summary, what was left out and why.
  const listed: IntakeResult["files"] = [];
  const byKind: IntakeResult["byKind"] = {};
  for (const f of files.sort((a, b) => (a.rel < b.rel ? -1 : 1))) {
    const kind: FileKind = f.classification.action === "include" ? f.classification.kind : "other";
    byKind[kind] = (byKind[kind] ?? 0) + 1;
    const sha = f.sha256 || (await hashFile(join(opts.staging, f.rel)));
    listed.push({ path: relInFolder(f.rel), size: f.size, sha256: sha, kind, ...(uids.get(f.rel) ?? {}) });
  }
  const result: IntakeResult = {
    folder,
    readyName,
    nameSource,
    files: listed,
    leftOut,
    expanded,
    ...(viewer.found ? { viewer: viewer.name ?? "viewer software" } : {}),
    ...(dicom ? { dicom } : {}),
    unreadableDicom: unreadable,
    review,
    patientTable,
    byKind,
  };
  const manifest = {
    format: "scanbridge-intake",
    formatVersion: 1,
    note: "Written by scanbridge watch when it filed this hand-made (unsealed) package: the sender's zip had no manifest.",
    sealed: false,
    received: { file: opts.uploadName, id: opts.id, sha256: opts.sha256, at: new Date().toISOString() },
    root: readyName,
    nameSource,
    nameEncoding: opts.nameEncoding,
    files: listed,
    totals: { files: listed.length, bytes: listed.reduce((s, f) => s + f.size, 0), byKind },
    leftOut,
    expandedArchives: expanded,
    ...(dicom ? { dicom } : {}),
    review: { needed: review.length > 0, reasons: review },
  };
  await writeFile(join(folder, INTAKE_MANIFEST_NAME), JSON.stringify(manifest, null, 2) + "\n", { flag: "wx", mode: 0o600 });
  if (review.length > 0) {
    const lines = [
      "NEEDS REVIEW: check this package before it is used for care.",
      "",
      ...review.map((r) => `- ${REVIEW_TEXT[r]}`),
      "",
      "Patients in the DICOM files:",
      ...patientTable.map((l) => `  ${l}`),
      "",
      `Folder named after: ${nameSource.replace("-", " ")}. Package id ${opts.id}.`,
    ];
    await writeFile(join(folder, NEEDS_REVIEW_NAME), lines.join("\n") + "\n", { flag: "wx", mode: 0o600 });
  }
  return { ok: true, result };
}

/** Staff wording of each review reason. */
export const REVIEW_TEXT: Record<ReviewReason, string> = {
  "multiple-patients": "The DICOM files belong to more than one patient.",
  "name-mismatch": "The folder or upload name does not match the patient's name in the DICOM files.",
  "no-dicom-name": "The DICOM files carry no patient name.",
};

/** A path shown in problems: its first folder (often the patient's name) masked. */
function maskTop(rel: string): string {
  const i = rel.indexOf("/");
  return i > 0 ? `<folder>${rel.slice(i)}` : rel;
}

/** Options of verifyUpload: verify's, plus the upload's own name. */
export type UploadCheckOptions = VerifyOptions & { uploadName: string; depth?: number };

/**
 * Check (and extract) one upload whatever its format: a zip through verify, a .7z/.rar/.tar(.gz) through 7-Zip
 * (WASM) under the same limits, anything else refused at once. Deflate64 zip entries are decoded by 7-Zip.
 */
export async function verifyUpload(path: string, opts: UploadCheckOptions): Promise<VerifyResult> {
  const started = Date.now();
  let format: ArchiveFormat;
  try {
    format = await sniffUpload(path);
  } catch {
    format = "unknown";
  }
  if (format === "zip" || format === "unknown") {
    const d64 = deflate64Decoder(path, opts.extractTo ? dirname(resolve(opts.extractTo)) : dirname(path));
    try {
      const r = await verifyPackage(path, { ...opts, openDeflate64: d64.open });
      if (format === "unknown" && r.problems.some((p) => p.code === "NOT_A_ZIP")) {
        r.problems = [{ code: "UNKNOWN_ARCHIVE", message: "The upload is not a zip, 7z, RAR or tar archive (or it is cut short)" }];
      }
      return r;
    } finally {
      await d64.cleanup();
    }
  }
  // Not a zip: no manifest can be checked, so it is a hand-made package.
  const sha256 = await hashFile(path, opts.signal);
  const size = (await stat(path)).size;
  const base: VerifyResult = {
    ok: false,
    sealed: false,
    sha256,
    id: sha256.slice(0, 12),
    size,
    sidecar: "ignored",
    problems: [],
    warnings: [{ code: "UNSEALED", message: `A ${format} archive, not a scanbridge package (unsealed, hand-made)` }],
    summary: { files: 0, bytes: 0, compressedBytes: size },
    nameEncoding: { encoding: "utf-8", evidence: format, legacyNames: 0 },
    durationMs: 0,
  };
  if (!opts.allowUnsealed) base.problems.push({ code: "UNSEALED", message: `A ${format} archive is not a scanbridge package; it is refused because of --sealed-only` });
  else {
    // 7-Zip names what it unpacks from a .gz after the archive: give it the upload's own name (a private hard link).
    const alias = await mkdtemp(join(dirname(path), ".sb-named-"));
    const named = join(alias, sanitizeComponent(opts.uploadName) || "upload");
    try {
      await link(path, named).catch(() => copyFile(path, named));
      const dest = opts.extractTo ? resolve(opts.extractTo) : await mkdtemp(join(alias, "x-"));
      const x = await extractOtherArchive(named, dest, opts.limits);
      base.problems.push(...x.problems);
      if (x.problems.length === 0 && opts.extractTo) {
        base.summary.files = x.written.length;
        base.summary.bytes = x.written.reduce((s, f) => s + f.size, 0);
        base.extracted = { root: dest, files: base.summary.files, bytes: base.summary.bytes, dirs: [], written: x.written };
      }
    } finally {
      await rm(alias, { recursive: true, force: true });
    }
  }
  base.ok = base.problems.length === 0;
  base.durationMs = Date.now() - started;
  return base;
}

/** What goes into ready/: the folder to rename, the name to give it, and for hand-made packages what intake found. */
export type ReadyPlan = { ok: true; from: string; name: string; intake?: IntakeResult } | { ok: false; problems: PackageProblem[] };

/**
 * After a clean verify: a sealed package goes to ready/ as it is; a hand-made one through intakeHandmade (archives
 * inside unpacked with verifyUpload one level deeper, same limits).
 */
export async function planReady(r: VerifyResult, o: { uploadName: string; limits?: Partial<VerifyLimits>; zipEncodings?: string[]; signal?: AbortSignal }): Promise<ReadyPlan> {
  if (!r.extracted) return { ok: false, problems: [{ code: "EXTRACT_FAILED", message: "The package checked out but was not extracted" }] };
  if (r.sealed) return { ok: true, from: r.extracted.root, name: r.summary.root! };
  const i = await intakeHandmade({
    staging: r.extracted.root,
    written: r.extracted.written,
    uploadName: o.uploadName,
    id: r.id,
    sha256: r.sha256,
    nameEncoding: r.nameEncoding,
    limits: o.limits,
    signal: o.signal,
    unpackNested: async (archive, dest, depth) => {
      const inner = await verifyUpload(archive, { allowUnsealed: true, extractTo: dest, sidecarPath: false, limits: o.limits, zipEncodings: o.zipEncodings, uploadName: basename(archive), signal: o.signal, depth });
      // A sealed package inside a hand-made one is unpacked like any other zip (its manifest stays as a file).
      return { written: inner.extracted?.written ?? [], problems: inner.ok ? [] : inner.problems };
    },
  });
  if (!i.ok) return i;
  return { ok: true, from: i.result.folder, name: i.result.readyName, intake: i.result };
}
