import { detectViewer } from "../dicom/viewer.js";
import type { ScanResult } from "./scan.js";

/** What viewer-software triage left out. */
export interface ViewerTriage {
  files: number;
  bytes: number;
  name?: string;
}

const KEEP = new Set(["dicom", "dicomdir", "dicom-unreadable"]);

/**
 * Viewer CDs and USB exports carry a DICOM viewer beside the scans. Everything detectViewer recognises as viewer
 * software (its folders, runtimes, launchers) is left out with reason "viewer-software", and so are the programs
 * inside it; DICOM files, DICOMDIR and reports are always kept. Mutates the scan result.
 */
export function triageViewerSoftware(scan: ScanResult): ViewerTriage {
  let files = 0;
  let bytes = 0;
  let name: string | undefined;
  for (let input = 0; input < scan.inputs.length; input++) {
    if (!scan.inputs[input]!.isDirectory) continue;
    const candidates = [
      ...scan.files.filter((f) => f.input === input && !KEEP.has(f.kind)).map((f) => f.relPath),
      ...scan.excluded.filter((e) => e.input === input && e.reason === "executable").map((e) => e.path),
    ];
    if (candidates.length === 0) continue;
    const found = detectViewer(candidates);
    if (!found.found) continue;
    name ??= found.name;
    const viewer = new Set(found.viewerPaths);
    scan.files = scan.files.filter((f) => {
      if (f.input !== input || KEEP.has(f.kind) || !viewer.has(f.relPath)) return true;
      scan.excluded.push({ input, path: f.relPath, reason: "viewer-software", size: f.size });
      return false;
    });
    for (const e of scan.excluded) {
      if (e.input !== input || !viewer.has(e.path)) continue;
      if (e.reason === "executable") e.reason = "viewer-software";
      if (e.reason === "viewer-software") {
        files++;
        bytes += e.size ?? 0;
      }
    }
  }
  return { files, bytes, name };
}
