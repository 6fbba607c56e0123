/*
 * Plan a PDI file-set from a delivery folder: which files are DICOM (by content, with the one classification table
 * pack and verify use), their patient/study/series/instance order, and the 8.3 file IDs each gets on the medium.
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { InputError, throwIfAborted } from "../errors.js";
import { DicomReadError, readDicomHeader } from "../dicom/read.js";
import type { DicomHeader, PersonName } from "../dicom/types.js";
import { MANIFEST_NAME, type Manifest } from "../pack/manifest.js";
import { extOf } from "../pack/classify.js";
import { HeaderUnread, scanInputs, type ScannedFile } from "../pack/scan.js";
import type { Emit } from "../ui/events.js";
import { forEachConcurrent } from "../util/concurrency.js";

/** Files `watch` writes into a ready/ delivery itself (the page): never part of the delivery's content. */
export const READY_PAGE_NAMES = new Set(["index.html", "index_files"]);

/** One DICOM instance on the medium. */
export interface PlannedInstance {
  source: ScannedFile;
  header: DicomHeader;
  /** Referenced File ID components, e.g. ["DICOM", "PAT00001", "STU00001", "SER00001", "IMG00001"]. */
  fileId: string[];
}

/** One series: its images in instance order. */
export interface PlannedSeries {
  uid: string;
  number?: string;
  modality?: string;
  description?: string;
  instances: PlannedInstance[];
}

/** One study: its series in series-number order. */
export interface PlannedStudy {
  uid: string;
  date?: string;
  time?: string;
  id?: string;
  accessionNumber?: string;
  description?: string;
  series: PlannedSeries[];
}

/** One patient (PHI): studies in date order. */
export interface PlannedPatient {
  name?: PersonName;
  id?: string;
  birthDate?: string;
  sex?: string;
  studies: PlannedStudy[];
}

/** A file that is not a DICOM image of the file-set (a PDF report, a photo, an unreadable DICOM file). */
export interface PlannedRecord {
  source: ScannedFile;
  /** Path on the medium, e.g. "REPORTS/DOC00001.PDF". */
  mediaPath: string;
  /** Why it is outside the DICOM tree. */
  role: "report" | "other" | "unreadable-dicom";
}

/** Everything the file-set writer needs, decided before a byte is written. */
export interface MediaPlan {
  /** Absolute path of the delivery folder. */
  root: string;
  manifest?: Manifest;
  patients: PlannedPatient[];
  records: PlannedRecord[];
  /** Bytes of the delivery's files that go on the medium. */
  bytes: number;
  instances: number;
  /** Transfer syntax UID -> number of DICOM files. */
  syntaxes: Record<string, number>;
  /** The old DICOMDIRs of the delivery (a sender's CD): replaced by the new one, not copied. */
  replacedDicomdirs: number;
}

/** Options of planMedia. */
export interface PlanOptions {
  signal?: AbortSignal;
  emit?: Emit;
  /** Files read at once for headers. */
  concurrency?: number;
}

const MAX_PER_LEVEL = 99_999;

/** An 8-character file ID: a 3-letter prefix and a 5-digit number ("IMG00001"). */
export function numberedId(prefix: string, n: number): string {
  if (n > MAX_PER_LEVEL) throw new InputError("MEDIA_TOO_MANY_FILES", `More than ${MAX_PER_LEVEL} entries in one folder of the file-set`, { hint: "Split the delivery into smaller file-sets with --max-size." });
  return `${prefix}${String(n).padStart(5, "0")}`;
}

/** An 8.3 name for a record: DOC00001.PDF (extension upper-case, letters and digits only, up to 3). */
export function recordName(prefix: string, n: number, originalName: string): string {
  const ext = extOf(originalName).toUpperCase().replace(/[^A-Z0-9]/g, "").slice(0, 3);
  return numberedId(prefix, n) + (ext ? `.${ext}` : "");
}

/** Compare DICOM IS values as numbers; absent or not a number sorts last. */
function byNumber(a: string | undefined, b: string | undefined): number {
  const x = a === undefined ? NaN : Number(a);
  const y = b === undefined ? NaN : Number(b);
  if (Number.isNaN(x) || Number.isNaN(y)) return Number.isNaN(x) === Number.isNaN(y) ? 0 : Number.isNaN(x) ? 1 : -1;
  return x - y;
}

const text = (s: string | undefined) => s ?? "";
const byText = (a: string | undefined, b: string | undefined) => (text(a) < text(b) ? -1 : text(a) > text(b) ? 1 : 0);
/** Made on first use: building it loads ICU's collation data (~15 ms), which a run with one patient never needs. */
let collator: Intl.Collator | undefined;
/** Names sort as people read them (Álvarez before Smith), ties broken by code point so the order is total. */
const byName = (a: string | undefined, b: string | undefined) =>
  (collator ??= new Intl.Collator("en", { sensitivity: "base", numeric: true })).compare(text(a), text(b)) || byText(a, b);

/** Read and check manifest.json when the delivery has one (a sealed package); sizes must match what is on disk. */
async function readManifest(root: string, files: ScannedFile[]): Promise<Manifest | undefined> {
  let raw: string;
  try {
    const st = await stat(join(root, MANIFEST_NAME));
    if (st.size > 64 * 1024 * 1024) throw new InputError("MANIFEST_TOO_LARGE", "manifest.json is too large to be a scanbridge manifest");
    raw = await readFile(join(root, MANIFEST_NAME), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  let m: Manifest;
  try {
    m = JSON.parse(raw) as Manifest;
  } catch {
    throw new InputError("MANIFEST_INVALID", "The delivery's manifest.json is not valid JSON", { hint: "File the package again from archive/ with scanbridge watch." });
  }
  if (m.format !== "scanbridge-package" || !Array.isArray(m.files)) throw new InputError("MANIFEST_INVALID", "The delivery's manifest.json is not a scanbridge manifest");
  const onDisk = new Map(files.map((f) => [f.relPath.normalize("NFC"), f.size]));
  const changed = m.files.filter((f) => onDisk.get(f.path.normalize("NFC")) !== f.size).length;
  const listed = new Set(m.files.map((f) => f.path.normalize("NFC")));
  const extra = files.filter((f) => f.relPath !== MANIFEST_NAME && !listed.has(f.relPath.normalize("NFC"))).length;
  if (changed > 0 || extra > 0) {
    throw new InputError("DELIVERY_CHANGED", `The delivery folder no longer matches its manifest.json (${changed} file(s) missing or changed, ${extra} not listed)`, {
      hint: "Files were changed after intake. Make the medium from the archived package (scanbridge media archive/<Name>.zip).",
      details: { changed, extra },
    });
  }
  return m;
}

/**
 * Plan the file-set of a delivery folder. Refuses a folder that holds no DICOM and no document ("not a delivery");
 * a delivery with documents only gives a plan without patients (a reports-only file-set).
 */
export async function planMedia(root: string, opts: PlanOptions = {}): Promise<MediaPlan> {
  let st;
  try {
    st = await stat(root);
  } catch {
    throw new InputError("DELIVERY_NOT_FOUND", "No such delivery folder or package", { hint: "Give a folder in ready/ or a package .zip.", privateLines: [root] });
  }
  if (!st.isDirectory()) throw new InputError("NOT_A_DELIVERY", "Not a folder or a .zip package", { hint: "Give a folder in ready/ or a package .zip.", privateLines: [root] });
  const scan = await scanInputs([root], { cwd: root, signal: opts.signal, emit: opts.emit });
  const files = scan.files.filter((f) => !READY_PAGE_NAMES.has(f.relPath.split("/")[0]!));
  const manifest = await readManifest(root, files);
  const content = files.filter((f) => !(manifest && f.relPath === MANIFEST_NAME));
  if (!content.some((f) => f.kind === "dicom" || f.kind === "document")) {
    throw new InputError("NOT_A_DELIVERY", "This folder holds no DICOM files and no documents: it is not a delivery", {
      hint: "Give a patient's folder in ready/ (made by scanbridge watch) or a package .zip.",
      privateLines: [root],
    });
  }
  const headers = new Map<ScannedFile, DicomHeader>();
  const unreadable: ScannedFile[] = [];
  const candidates = content.filter((f) => f.kind === "dicom" || f.kind === "dicomdir");
  let replacedDicomdirs = 0;
  opts.emit?.({ type: "step", id: "media-headers", label: "Reading DICOM headers" });
  const place = (f: ScannedFile, h: DicomHeader) => {
    if (h.isDicomdir) replacedDicomdirs++;
    else if (!h.sopInstanceUid) unreadable.push(f);
    else headers.set(f, h);
  };
  await forEachConcurrent(candidates, opts.concurrency ?? 8, async (f) => {
    // The scan parsed each DICOM header from the same read that classified the file: the file is read again only
    // when the scan could not parse it. A header the scan found cut short is one a strict read refuses.
    const scanned = scan.dicomHeaders?.get(f);
    if (scanned && !(scanned instanceof HeaderUnread)) {
      if (scanned.truncated !== undefined) unreadable.push(f);
      else place(f, scanned);
      return;
    }
    try {
      place(f, await readDicomHeader(f.absPath));
    } catch (err) {
      if (!(err instanceof DicomReadError)) throw err;
      unreadable.push(f);
    }
  }, { signal: opts.signal, checkAbort: throwIfAborted, onDone: (done) => opts.emit?.({ type: "progress", id: "media-headers", done, total: candidates.length, unit: "files" }) });
  opts.emit?.({ type: "step-done", id: "media-headers" });

  const patients = groupInstances([...headers.entries()]);
  const syntaxes: Record<string, number> = {};
  let instances = 0;
  patients.forEach((p, pi) =>
    p.studies.forEach((s, si) =>
      s.series.forEach((se, sei) =>
        se.instances.forEach((inst, ii) => {
          inst.fileId = ["DICOM", numberedId("PAT", pi + 1), numberedId("STU", si + 1), numberedId("SER", sei + 1), numberedId("IMG", ii + 1)];
          const ts = inst.header.transferSyntaxUid ?? "1.2.840.10008.1.2";
          syntaxes[ts] = (syntaxes[ts] ?? 0) + 1;
          instances++;
        }),
      ),
    ),
  );
  const records: PlannedRecord[] = [];
  const unreadableSet = new Set(unreadable);
  let reports = 0;
  let others = 0;
  for (const f of content) {
    if (f.kind === "dicom" && !unreadableSet.has(f)) continue;
    if (f.kind === "dicomdir" && !unreadableSet.has(f)) continue;
    if (f.kind === "document") records.push({ source: f, mediaPath: `REPORTS/${recordName("DOC", ++reports, f.relPath)}`, role: "report" });
    else records.push({ source: f, mediaPath: `OTHER/${recordName("FIL", ++others, f.relPath)}`, role: f.kind === "dicom" || f.kind === "dicom-unreadable" || f.kind === "dicomdir" ? "unreadable-dicom" : "other" });
  }
  const bytes = [...headers.keys()].reduce((a, f) => a + f.size, 0) + records.reduce((a, r) => a + r.source.size, 0);
  return { root, manifest, patients, records, bytes, instances, syntaxes, replacedDicomdirs };
}

/** Group instances into patients, studies and series, each level in a stable, meaningful order. */
function groupInstances(entries: Array<[ScannedFile, DicomHeader]>): PlannedPatient[] {
  const patients = new Map<string, PlannedPatient>();
  const studies = new Map<string, PlannedStudy>();
  const series = new Map<string, PlannedSeries>();
  for (const [source, h] of entries) {
    const pKey = `${h.patientId ?? ""}\0${h.patientName?.alphabetic ?? ""}\0${h.patientName?.ideographic ?? ""}`;
    let p = patients.get(pKey);
    if (!p) {
      p = { name: h.patientName, id: h.patientId, birthDate: h.patientBirthDate, sex: h.patientSex, studies: [] };
      patients.set(pKey, p);
    }
    const sKey = `${pKey}\0${h.studyInstanceUid ?? ""}`;
    let s = studies.get(sKey);
    if (!s) {
      s = { uid: h.studyInstanceUid ?? "", date: h.studyDate, time: h.studyTime, id: h.studyId, accessionNumber: h.accessionNumber, description: h.studyDescription, series: [] };
      studies.set(sKey, s);
      p.studies.push(s);
    }
    const seKey = `${sKey}\0${h.seriesInstanceUid ?? ""}`;
    let se = series.get(seKey);
    if (!se) {
      se = { uid: h.seriesInstanceUid ?? "", number: h.seriesNumber, modality: h.modality, description: h.seriesDescription, instances: [] };
      series.set(seKey, se);
      s.series.push(se);
    }
    se.instances.push({ source, header: h, fileId: [] });
  }
  const out = [...patients.values()].sort((a, b) => byName(a.name?.alphabetic, b.name?.alphabetic) || byText(a.id, b.id));
  for (const p of out) {
    p.studies.sort((a, b) => byText(a.date, b.date) || byText(a.time, b.time) || byText(a.uid, b.uid));
    for (const s of p.studies) {
      s.series.sort((a, b) => byNumber(a.number, b.number) || byText(a.uid, b.uid));
      for (const se of s.series) {
        se.instances.sort((a, b) => byNumber(a.header.instanceNumber, b.header.instanceNumber) || byText(a.header.sopInstanceUid, b.header.sopInstanceUid) || byText(a.source.relPath, b.source.relPath));
      }
    }
  }
  return out;
}
