import { groupPatients, type DicomEntry } from "./identity.js";
import type { PackageDicomSummary, StudySummary } from "./types.js";

/** Modalities that are not images; left out of a study's label when an image modality is present. */
const NON_IMAGE_MODALITIES = new Set(["SR", "KO", "PR", "DOC", "REG", "SEG", "RWV", "PLAN", "RTPLAN", "RTRECORD"]);

/** Format a DICOM DA value (YYYYMMDD, or the old YYYY.MM.DD) as YYYY-MM-DD; other values are returned as given. */
export function formatDicomDate(da: string | undefined): string | undefined {
  if (da === undefined) return undefined;
  const digits = da.trim().replace(/[.\-/]/g, "");
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(digits);
  return m ? `${m[1]}-${m[2]}-${m[3]}` : da.trim() || undefined;
}

interface StudyAcc {
  uid: string;
  date?: string;
  description?: string;
  modalities: Set<string>;
  series: Set<string>;
  images: Set<string>;
}

/**
 * Summarise a package's DICOM files: its patients (see groupPatients) and studies with date (YYYY-MM-DD),
 * description, modalities, and counts of distinct series and images (SOP instances). DICOMDIR files are not counted;
 * files without a Study Instance UID are gathered in one study whose UID is "".
 */
export function summarizeDicom(entries: DicomEntry[]): PackageDicomSummary {
  const files = entries.filter((e) => !e.header.isDicomdir);
  const studies = new Map<string, StudyAcc>();
  for (const { path, header: h } of files) {
    const uid = h.studyInstanceUid ?? "";
    let s = studies.get(uid);
    if (!s) {
      s = { uid, modalities: new Set(), series: new Set(), images: new Set() };
      studies.set(uid, s);
    }
    s.date ??= formatDicomDate(h.studyDate);
    s.description ??= h.studyDescription?.trim() || undefined;
    if (h.modality) s.modalities.add(h.modality.trim().toUpperCase());
    // Files without a Series Instance UID count as one unknown series of their study.
    s.series.add(h.seriesInstanceUid ?? "");
    // Distinct SOP instances, so a file copied twice on a CD counts once; a file without a UID counts by path.
    s.images.add(h.sopInstanceUid ?? `path:${path}`);
  }
  const list: StudySummary[] = [...studies.values()].map((s) => {
    const out: StudySummary = {
      studyInstanceUid: s.uid,
      modalities: [...s.modalities].sort(),
      series: s.series.size,
      images: s.images.size,
    };
    if (s.date) out.date = s.date;
    if (s.description) out.description = s.description;
    return out;
  });
  list.sort((a, b) => (a.date ?? "9999").localeCompare(b.date ?? "9999") || (a.description ?? "").localeCompare(b.description ?? "") || a.studyInstanceUid.localeCompare(b.studyInstanceUid));
  return { patients: groupPatients(files).map((g) => g.patient), studies: list };
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** A study's short label: its description, prefixed by the imaging modalities it does not already name. */
export function studyLabel(s: StudySummary): string {
  const imaging = s.modalities.filter((m) => !NON_IMAGE_MODALITIES.has(m));
  const mods = imaging.length > 0 ? imaging : s.modalities;
  const desc = s.description?.replace(/\s+/g, " ").trim();
  if (!desc) return mods.length > 0 ? mods.join("/") : "study";
  const words = new Set(desc.toUpperCase().split(/[^A-Z0-9]+/));
  return mods.length === 0 || mods.some((m) => words.has(m)) ? desc : `${mods.join("/")} ${desc}`;
}

/** One human line for the studies, e.g. "2 studies · CT CHEST 2025-03-02 (3 series, 412 images) · MR BRAIN 2025-04-11 (6 series, 980 images)". */
export function formatStudyLine(studies: StudySummary[]): string {
  if (studies.length === 0) return "no DICOM studies";
  const parts = studies.map((s) => {
    const head = s.date ? `${studyLabel(s)} ${s.date}` : studyLabel(s);
    return `${head} (${plural(s.series, "series", "series")}, ${plural(s.images, "image", "images")})`;
  });
  return [plural(studies.length, "study", "studies"), ...parts].join(" · ");
}
