import { checkPatient, type PatientGroup } from "../dicom/identity.js";
import { readDicomHeader } from "../dicom/read.js";
import { formatStudyLine, summarizeDicom } from "../dicom/summary.js";
import type { DicomHeader, PackageDicomSummary, PersonName } from "../dicom/types.js";
import { InputError, throwIfAborted } from "../errors.js";
import type { Emit } from "../ui/events.js";
import type { FileKind } from "./manifest.js";
import type { ScanResult } from "./scan.js";
import { forEachConcurrent } from "../util/concurrency.js";

/** What inspecting the DICOM headers of a package found. */
export interface DicomInspection {
  summary: PackageDicomSummary;
  /** e.g. "2 studies · CT CHEST 2025-03-02 (3 series, 412 images)". */
  studyLine: string;
  /** Per source file: its final kind and study/series. */
  byPath: Map<string, { kind?: FileKind; studyInstanceUid?: string; seriesInstanceUid?: string }>;
  unreadable: number;
  /** The DICOM patient did not match --patient, or several patients were found, and the user overrode it. */
  mismatch: boolean;
  /** Total bytes read from DICOM files to inspect them (bounded per file). */
  bytesRead: number;
}

/** Options for inspectDicomFiles. */
export interface InspectOptions {
  patient: string;
  strict: boolean;
  allowPatientMismatch: boolean;
  confirmMismatch?: (lines: string[]) => Promise<boolean>;
  signal?: AbortSignal;
  emit?: Emit;
  concurrency?: number;
}

function showName(n: PersonName | undefined): string {
  if (!n) return "(no name)";
  return [n.alphabetic, n.ideographic, n.phonetic].filter((g) => g && g.length > 0).join(" = ") || "(no name)";
}

/**
 * Read the header of every DICOM file (never the pixel data), summarise patients and studies, and guard against
 * the wrong patient: all files must belong to one patient whose name matches --patient. On a mismatch: refuse
 * (exit 3) with a table of who is in which files (shown to the person packing only), unless overridden.
 */
export async function inspectDicomFiles(scan: ScanResult, opts: InspectOptions): Promise<DicomInspection | undefined> {
  const dicomFiles = scan.files.filter((f) => f.kind === "dicom" || f.kind === "dicomdir");
  if (dicomFiles.length === 0) return undefined;
  opts.emit?.({ type: "step", id: "inspect", label: "Reading DICOM headers" });
  const entries: Array<{ path: string; header: DicomHeader }> = [];
  const byPath: DicomInspection["byPath"] = new Map();
  const unreadable: string[] = [];
  let bytesRead = 0;
  await forEachConcurrent(dicomFiles, opts.concurrency ?? 8, async (f) => {
    try {
      const header = await readDicomHeader(f.absPath);
      bytesRead += header.bytesRead;
      if (!header.isDicomdir) entries.push({ path: f.absPath, header });
      byPath.set(f.absPath, { kind: header.isDicomdir ? "dicomdir" : "dicom", studyInstanceUid: header.studyInstanceUid, seriesInstanceUid: header.seriesInstanceUid });
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      unreadable.push(f.absPath);
      f.kind = "dicom-unreadable";
      byPath.set(f.absPath, { kind: "dicom-unreadable" });
    }
  }, { signal: opts.signal, checkAbort: throwIfAborted, onDone: (done) => opts.emit?.({ type: "progress", id: "inspect", done, total: dicomFiles.length, unit: "files" }) });
  entries.sort((a, b) => (a.path < b.path ? -1 : 1));
  opts.emit?.({ type: "step-done", id: "inspect", label: `Read ${dicomFiles.length} DICOM headers` });

  if (unreadable.length > 0) {
    if (opts.strict) {
      throw new InputError("DICOM_UNREADABLE", `${unreadable.length} DICOM file(s) are unreadable or truncated`, {
        hint: "Copy the files from the disc again, or drop --strict to send them as they are (marked dicom-unreadable).",
        privateLines: unreadable.slice(0, 20),
        details: { unreadable: unreadable.length },
      });
    }
    opts.emit?.({ type: "warn", code: "DICOM_UNREADABLE", message: `${unreadable.length} DICOM file(s) are unreadable or truncated; they are packaged as "dicom-unreadable"`, privateLines: unreadable.slice(0, 20) });
  }

  const summary = summarizeDicom(entries);
  let mismatch = false;
  if (entries.length > 0 && opts.patient === "") {
    // Report only (inspect without --patient): say so when several patients are mixed, refuse nothing.
    const groups = checkPatient("", entries).groups;
    if (groups.length > 1) opts.emit?.({ type: "warn", code: "MULTIPLE_PATIENTS", message: `The DICOM files belong to ${groups.length} different patients`, privateLines: groups.map((g: PatientGroup) => `${showName(g.patient.name)}  ID ${g.patient.id ?? "?"}: ${g.paths.length} file(s)`) });
  } else if (entries.length > 0) {
    const check = checkPatient(opts.patient, entries);
    if (check.ok && check.unverified) {
      opts.emit?.({ type: "warn", code: "PATIENT_UNVERIFIED", message: "The DICOM files carry no patient name, so --patient could not be checked against them" });
    }
    if (!check.ok) {
      const table = check.groups.map((g: PatientGroup) => `${showName(g.patient.name)}  ID ${g.patient.id ?? "?"}  born ${g.patient.birthDate ?? "?"}: ${g.paths.length} file(s), e.g. ${g.paths[0]}`);
      const message = check.reason === "multiple-patients"
        ? `The DICOM files belong to ${check.groups.length} different patients`
        : "The patient name in the DICOM files does not match --patient";
      const lines = [`--patient: ${opts.patient}`, ...table];
      if (opts.allowPatientMismatch) {
        mismatch = true;
        opts.emit?.({ type: "warn", code: "PATIENT_MISMATCH_ALLOWED", message: `${message}; packaging anyway (--allow-patient-mismatch, recorded in the manifest)`, privateLines: lines });
      } else if (opts.confirmMismatch && (await opts.confirmMismatch([message, ...lines]))) {
        mismatch = true;
      } else {
        throw new InputError("PATIENT_MISMATCH", message, {
          hint: "Check you have the right scans. If they are right (e.g. a name spelled differently), re-run with --allow-patient-mismatch.",
          privateLines: lines,
          details: { reason: check.reason, patients: check.groups.length },
        });
      }
    }
  }
  return { summary, studyLine: formatStudyLine(summary.studies), byPath, unreadable: unreadable.length, mismatch, bytesRead };
}
