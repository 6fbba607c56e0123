import type { PackageDicomSummary } from "../dicom/types.js";

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
  reason: "os-junk" | "executable" | "viewer-software" | "symlink-outside-inputs" | "symlink-loop" | "broken-symlink" | "symlinked-folder" | "special-file" | "archive-expanded";
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
  overrides?: { allowPatientMismatch?: boolean };
}

/** Name of the manifest entry inside the root folder. */
export const MANIFEST_NAME = "manifest.json";
