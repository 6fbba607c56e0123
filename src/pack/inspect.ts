import { checkPatient, groupPatients, matchPatientName, type DicomEntry, type PatientGroup } from "../dicom/identity.js";
import { readDicomHeader } from "../dicom/read.js";
import { formatStudyLine, summarizeDicom } from "../dicom/summary.js";
import type { DicomHeader, PackageDicomSummary, PatientSummary, PersonName, StudySummary } from "../dicom/types.js";
import { InputError, throwIfAborted } from "../errors.js";
import { msg, t, warnText } from "../i18n/index.js";
import type { Emit } from "../ui/events.js";
import { HeaderUnread, type ScanResult, type ScannedFile } from "./scan.js";
import { forEachConcurrent } from "../util/concurrency.js";

/** One patient found on the inputs, with their own studies (for `inspect` and the choice on a mixed CD). */
export interface PatientListing {
  patient: PatientSummary;
  studies: StudySummary[];
  studyLine: string;
}

/** What inspecting the DICOM headers of a package found. */
export interface DicomInspection {
  summary: PackageDicomSummary;
  /** e.g. "2 studies · CT CHEST 2025-03-02 (3 series, 412 images)". */
  studyLine: string;
  /** Every patient found on the inputs (before --only-patient), each with their studies. */
  patients: PatientListing[];
  /** DICOM-looking files whose patient could not be read (absolute paths: shown to the sender only). */
  unchecked: string[];
  /** DICOM files that end early (image incomplete) but whose patient was read and checked. */
  truncated: string[];
  /** Count of unchecked plus truncated files (packaged as dicom-unreadable). */
  unreadable: number;
  /** The DICOM patient did not match --patient, or several patients were found, and the user overrode it. */
  mismatch: boolean;
  /** Unchecked files were packaged because the sender allowed it (--allow-unchecked or at the prompt). */
  allowedUnchecked: boolean;
  /** The patient kept by --only-patient (or chosen at the terminal); the others' files were left out. */
  onlyPatient?: PatientSummary;
  /** Total bytes read from DICOM files to inspect them (bounded per file). */
  bytesRead: number;
}

/** Options for inspectDicomFiles. */
export interface InspectOptions {
  patient: string;
  strict: boolean;
  allowPatientMismatch: boolean;
  allowUnchecked?: boolean;
  /** `inspect`: report unchecked files and mixed patients without refusing or asking. */
  reportOnly?: boolean;
  /** Keep only this patient's DICOM files: a Patient ID or a name (matched like --patient). */
  onlyPatient?: string;
  confirmMismatch?: (lines: string[]) => Promise<boolean>;
  /** On a terminal: several patients found; returns the index of the one to keep, "all" (override) or "cancel". */
  choosePatient?: (patients: PatientListing[]) => Promise<number | "all" | "cancel">;
  signal?: AbortSignal;
  emit?: Emit;
  concurrency?: number;
}

/** How a person reads a DICOM name ("ÁLVAREZ^JOSÉ = 山田^太郎"). PHI: only for the sender's own screen. */
export function showName(n: PersonName | undefined): string {
  if (!n) return "(no name)";
  return [n.alphabetic, n.ideographic, n.phonetic].filter((g) => g && g.length > 0).join(" = ") || "(no name)";
}

/** One line about a patient: name, ID(s), birth date. PHI: only for the sender's own screen. */
export function describePatient(p: PatientSummary): string {
  const ids = p.ids && p.ids.length > 1 ? `IDs ${p.ids.join(", ")}` : `ID ${p.id ?? "?"}`;
  return `${showName(p.name)}  ${ids}  born ${p.birthDate ?? "?"}`;
}

function listPatients(groups: PatientGroup[], entries: DicomEntry[]): PatientListing[] {
  const byPath = new Map(entries.map((e) => [e.path, e]));
  return groups.map((g) => {
    const studies = summarizeDicom(g.paths.map((p) => byPath.get(p)!)).studies;
    return { patient: g.patient, studies, studyLine: formatStudyLine(studies) };
  });
}

interface HeaderReads {
  entries: DicomEntry[];
  unchecked: string[];
  truncated: string[];
  bytesRead: number;
}

/**
 * Read every DICOM-looking file's header (tolerating cut-off pixel data), fixing each file's kind on the way. The
 * scan already read most of them (`known`); the others (e.g. unpacked from an archive) are read here.
 */
async function readHeaders(files: ScannedFile[], known: ScanResult["dicomHeaders"], opts: InspectOptions): Promise<HeaderReads> {
  const out: HeaderReads = { entries: [], unchecked: [], truncated: [], bytesRead: 0 };
  await forEachConcurrent(files, opts.concurrency ?? 8, async (f) => {
    let header: DicomHeader;
    const path = f.absPath;
    try {
      const read = known?.get(f);
      if (read instanceof HeaderUnread) throw read.error;
      header = read ?? await readDicomHeader(path, { tolerateTruncation: true });
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      out.unchecked.push(path);
      f.kind = "dicom-unreadable";
      return;
    }
    out.bytesRead += header.bytesRead;
    if (header.truncated) out.truncated.push(path);
    // The header decides: a DICOMDIR under another name is a DICOMDIR, a cut-off image is dicom-unreadable.
    f.kind = header.isDicomdir ? "dicomdir" : header.truncated ? "dicom-unreadable" : "dicom";
    if (!header.isDicomdir) out.entries.push({ path, header });
    // On the file itself (no map entry and object per file): the manifest lists them with it.
    if (header.studyInstanceUid !== undefined) f.studyInstanceUid = header.studyInstanceUid;
    if (header.seriesInstanceUid !== undefined) f.seriesInstanceUid = header.seriesInstanceUid;
  }, { signal: opts.signal, checkAbort: throwIfAborted, onDone: (done) => opts.emit?.({ type: "progress", id: "inspect", done, total: files.length, unit: "files" }) });
  const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  out.entries.sort((a, b) => byName(a.path, b.path));
  out.unchecked.sort(byName);
  out.truncated.sort(byName);
  return out;
}

/** Refuse or warn about files whose patient could not be checked, and about cut-off images. */
function guardUnreadable(reads: HeaderReads, opts: InspectOptions): boolean {
  const { unchecked, truncated } = reads;
  if (opts.strict && unchecked.length + truncated.length > 0) {
    throw new InputError("DICOM_UNREADABLE", msg("pack.dicomUnreadable", { n: unchecked.length + truncated.length }), {
      hint: unchecked.length > 0 ? msg("pack.dicomUnreadable.hintUnchecked") : msg("pack.dicomUnreadable.hint"),
      privateLines: [...unchecked, ...truncated].slice(0, 20),
      details: { unchecked: unchecked.length, truncated: truncated.length },
    });
  }
  if (truncated.length > 0) {
    opts.emit?.({ type: "warn", code: "DICOM_TRUNCATED", ...warnText("warn.dicomTruncated", { n: truncated.length }), privateLines: truncated.slice(0, 20) });
  }
  if (unchecked.length === 0) return false;
  const what = msg("pack.dicomUnchecked", { n: unchecked.length });
  if (opts.reportOnly) {
    opts.emit?.({ type: "warn", code: "DICOM_UNCHECKED", ...warnText("warn.dicomUnchecked", { what }), privateLines: unchecked.slice(0, 20) });
    return false;
  }
  if (!opts.allowUnchecked) {
    throw new InputError("DICOM_UNCHECKED", what, {
      hint: msg("pack.dicomUnchecked.hint"),
      privateLines: unchecked.slice(0, 20),
      details: { unchecked: unchecked.length },
    });
  }
  opts.emit?.({ type: "warn", code: "DICOM_UNCHECKED_ALLOWED", ...warnText("warn.dicomUncheckedAllowed", { what }), privateLines: unchecked.slice(0, 20) });
  return true;
}

/** The patient groups that --only-patient names: an exact Patient ID, else a tolerant name match. */
function selectPatient(selector: string, groups: PatientGroup[]): PatientGroup[] {
  const s = selector.normalize("NFC").trim();
  const byId = groups.filter((g) => (g.patient.ids ?? (g.patient.id ? [g.patient.id] : [])).includes(s));
  if (byId.length > 0) return byId;
  return groups.filter((g) => g.patient.name !== undefined && matchPatientName(s, g.patient.name));
}

/**
 * Keep one patient's DICOM files: the others' files (and DICOMDIRs, which would point at files no longer there)
 * move from scan.files to scan.excluded ("other-patient", "dicomdir-other-patients"). Returns the entries kept.
 */
function keepOnlyPatient(scan: ScanResult, keep: PatientGroup, groups: PatientGroup[], entries: DicomEntry[], opts: InspectOptions): DicomEntry[] {
  const others = new Set(groups.filter((g) => g !== keep).flatMap((g) => g.paths));
  let dicomdirs = 0;
  scan.files = scan.files.filter((f) => {
    if (others.has(f.absPath)) {
      scan.excluded.push({ input: f.input, path: f.relPath, reason: "other-patient", size: f.size });
      return false;
    }
    if (f.kind === "dicomdir") {
      dicomdirs++;
      scan.excluded.push({ input: f.input, path: f.relPath, reason: "dicomdir-other-patients", size: f.size });
      return false;
    }
    return true;
  });
  const left = groups.filter((g) => g !== keep).reduce((n, g) => n + g.paths.length, 0);
  opts.emit?.({ type: "warn", code: "OTHER_PATIENTS_LEFT_OUT", ...warnText("warn.otherPatientsLeftOut", { n: left, patients: groups.length - 1 }) });
  if (dicomdirs > 0) {
    opts.emit?.({ type: "info", message: t("pack.dicomdirLeftOut") });
  }
  const docs = scan.files.filter((f) => f.kind === "document" || f.kind === "image").length;
  if (docs > 0) opts.emit?.({ type: "warn", code: "DOCUMENTS_KEPT", ...warnText("warn.documentsKept", { n: docs }) });
  return entries.filter((e) => !others.has(e.path));
}

/**
 * Read the header of every DICOM-looking file (never the pixel data), summarise patients and studies, and guard
 * against the wrong patient: all files must belong to one patient whose name matches --patient, and a file whose
 * patient cannot be read blocks the package unless --allow-unchecked. With --only-patient (or the choice offered
 * at a terminal) one patient of a mixed CD is kept. On a mismatch: refuse (exit 3) with a table of who is in which
 * files (shown to the person packing only), unless overridden.
 */
export async function inspectDicomFiles(scan: ScanResult, opts: InspectOptions): Promise<DicomInspection | undefined> {
  const dicomFiles = scan.files.filter((f) => f.kind === "dicom" || f.kind === "dicomdir" || f.kind === "dicom-unreadable");
  if (dicomFiles.length === 0) {
    if (opts.onlyPatient) throw onlyPatientNotFound(opts.onlyPatient, []);
    return undefined;
  }
  opts.emit?.({ type: "step", id: "inspect", label: msg("step.inspect") });
  const reads = await readHeaders(dicomFiles, scan.dicomHeaders, opts);
  opts.emit?.({ type: "step-done", id: "inspect", label: msg("step.inspect.done", { n: dicomFiles.length }) });
  const allowedUnchecked = guardUnreadable(reads, opts);

  let entries = reads.entries;
  const groups = groupPatients(entries);
  const patients = listPatients(groups, entries);
  let onlyPatient: PatientSummary | undefined;
  const keep = (g: PatientGroup) => {
    entries = keepOnlyPatient(scan, g, groups, entries, opts);
    onlyPatient = g.patient;
  };
  if (opts.onlyPatient !== undefined) {
    const chosen = selectPatient(opts.onlyPatient, groups);
    if (chosen.length !== 1) throw onlyPatientNotFound(opts.onlyPatient, patients, chosen.length > 1);
    keep(chosen[0]!);
  }

  let mismatch = false;
  if (entries.length > 0 && opts.patient === "") {
    // Report only (inspect without --patient): the command lists the patients; say so when several are mixed.
    if (groups.length > 1 && !onlyPatient) {
      opts.emit?.({ type: "warn", code: "MULTIPLE_PATIENTS", ...warnText("warn.multiplePatients", { n: groups.length }), privateLines: patients.map((p) => `${describePatient(p.patient)}: ${p.studyLine}`) });
    }
  } else if (entries.length > 0) {
    let check = checkPatient(opts.patient, entries);
    if (!check.ok && check.reason === "multiple-patients" && !opts.allowPatientMismatch && opts.choosePatient) {
      const choice = await opts.choosePatient(patients);
      if (choice === "cancel") throw multiplePatients(groups.length, patients);
      if (choice === "all") mismatch = true;
      else {
        keep(groups[choice]!);
        check = checkPatient(opts.patient, entries);
      }
    }
    if (check.ok && check.unverified) {
      opts.emit?.({ type: "warn", code: "PATIENT_UNVERIFIED", ...warnText("warn.patientUnverified") });
    }
    if (!check.ok && !mismatch) {
      const table = check.groups.map((g: PatientGroup) => t("pack.patientGroup", { patient: describePatient(g.patient), n: g.paths.length, path: g.paths[0]! }));
      const multiple = check.reason === "multiple-patients";
      const problem = multiple ? msg("pack.multiplePatients", { n: check.groups.length }) : msg("pack.patientMismatch");
      const lines = [t("pack.patientFlag", { name: opts.patient }), ...table];
      if (opts.allowPatientMismatch) {
        mismatch = true;
        opts.emit?.({ type: "warn", code: "PATIENT_MISMATCH_ALLOWED", ...warnText("warn.patientMismatchAllowed", { problem }), privateLines: lines });
      } else if (opts.confirmMismatch && (await opts.confirmMismatch([t(problem.id, problem.values), ...lines]))) {
        mismatch = true;
      } else if (multiple) {
        throw multiplePatients(check.groups.length, patients, lines);
      } else {
        throw new InputError("PATIENT_MISMATCH", problem, {
          hint: msg("pack.patientMismatch.hint"),
          privateLines: lines,
          details: { reason: check.reason, patients: check.groups.length },
        });
      }
    }
  }
  const summary = summarizeDicom(entries);
  return {
    summary, studyLine: formatStudyLine(summary.studies), patients, unchecked: reads.unchecked, truncated: reads.truncated,
    unreadable: reads.unchecked.length + reads.truncated.length, mismatch, allowedUnchecked, ...(onlyPatient ? { onlyPatient } : {}), bytesRead: reads.bytesRead,
  };
}

function multiplePatients(n: number, patients: PatientListing[], lines?: string[]): InputError {
  return new InputError("PATIENT_MISMATCH", msg("pack.multiplePatients", { n }), {
    hint: msg("pack.multiplePatients.hint"),
    privateLines: lines ?? patients.map((p) => `${describePatient(p.patient)}: ${p.studyLine}`),
    details: { reason: "multiple-patients", patients: n },
  });
}

function onlyPatientNotFound(selector: string, patients: PatientListing[], ambiguous = false): InputError {
  return new InputError(ambiguous ? "ONLY_PATIENT_AMBIGUOUS" : "ONLY_PATIENT_NOT_FOUND",
    msg(ambiguous ? "pack.onlyPatientAmbiguous" : "pack.onlyPatientNotFound"), {
      hint: msg(ambiguous ? "pack.onlyPatientAmbiguous.hint" : "pack.onlyPatientNotFound.hint"),
      privateLines: [`--only-patient: ${selector}`, ...patients.map((p) => `${describePatient(p.patient)}: ${p.studyLine}`)],
      details: { patients: patients.length },
    });
}
