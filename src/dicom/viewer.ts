/*
 * Viewer-software triage for hospital CDs and USB exports: which files are the bundled DICOM viewer (executables,
 * libraries, Java runtime, macOS app bundles, autorun) rather than images and reports. Decided from paths alone, so
 * it is cheap; the caller must still keep any file that sniffs as DICOM or is a document, whatever its path.
 */

/** Known viewer products and the path fragments (lower case, "/" separated) that identify them. */
const KNOWN_VIEWERS: ReadonlyArray<{ name: string; pattern: RegExp }> = [
  { name: "RadiAnt", pattern: /radiant/ },
  { name: "OsiriX Lite", pattern: /osirix/ },
  { name: "Horos", pattern: /(^|\/)horos/ },
  { name: "eFilm", pattern: /efilm|merge ?healthcare/ },
  { name: "GE Centricity", pattern: /centricity|pathspeed|gehc/ },
  { name: "Carestream Vue Motion", pattern: /vue ?motion|carestream/ },
  { name: "Sectra", pattern: /sectra|uniview/ },
  { name: "Philips DICOM Viewer", pattern: /philips/ },
  { name: "Agfa IMPAX", pattern: /impax|agfa/ },
  { name: "Fujifilm Synapse", pattern: /synapse|fujifilm/ },
  { name: "Weasis", pattern: /weasis/ },
  { name: "MicroDicom", pattern: /microdicom|(^|\/)mdicom\.exe$/ },
  { name: "ClearCanvas", pattern: /clearcanvas/ },
  { name: "K-PACS", pattern: /k-?pacs/ },
  { name: "Siemens syngo fastView", pattern: /syngo|fastview/ },
  { name: "InteleViewer", pattern: /inteleviewer|intelerad/ },
  { name: "Sante DICOM Viewer", pattern: /sante ?dicom/ },
];

/** Extensions of programs and libraries. */
const EXECUTABLE_EXT = /\.(exe|dll|ocx|sys|msi|cab|bat|cmd|com|scr|jar|so|dylib|vbs|ps1|drv|cpl|manifest)$/;
/** Folder names that hold a viewer whatever the product: "Viewer", "DicomViewer", Java runtimes, macOS app bundles. */
const VIEWER_DIR = /^(.*viewer|viewers|jre[\w.-]*|java|jdk[\w.-]*|.*\.app|autorun|program files)$/;
/** Files on the CD root that belong to the viewer launcher. */
const LAUNCHER_FILE = /^(autorun\.inf|autorun\.ico|autorun\.exe|setup\.exe|start\.(exe|bat|cmd|html?)|run\.(exe|bat|cmd))$/;
/** Folders that hold the images or reports: never viewer software. */
const DATA_DIR = /^(dicom|dcm|images?|img|studies|reports?|documents?|pdf)$/;

/** What detectViewer found. */
export interface ViewerDetection {
  /** Whether any viewer software was found. */
  found: boolean;
  /** The viewer product, when recognised (e.g. "RadiAnt"). */
  name?: string;
  /** The input paths (as given) that are viewer software and can be left out. */
  viewerPaths: string[];
}

function isProtected(segments: string[], programDirs: Set<string>): boolean {
  const base = segments[segments.length - 1]!;
  if (base === "dicomdir" || /\.(dcm|dicom)$/.test(base)) return true;
  if (segments.length > 1 && DATA_DIR.test(segments[0]!)) return true;
  // A PDF is a patient's report, unless it sits in the viewer's own folder (Viewer/manual.pdf, RadiAnt/help.pdf).
  const dirs = segments.slice(0, -1);
  const inViewer = dirs.some((d) => VIEWER_DIR.test(d)) || (dirs.length > 0 && programDirs.has(dirs[0]!)) || (dirs.length > 0 && KNOWN_VIEWERS.some((v) => v.pattern.test(dirs.join("/"))));
  return /\.pdf$/.test(base) && !inViewer;
}

/**
 * Recognise the viewer software on a CD/USB export from relative paths ("/" or "\\" separated): known products,
 * generic viewer folders, Java runtimes, app bundles, executables and libraries, autorun.inf and setup.exe.
 * DICOMDIR, *.dcm, files under DICOM/ or REPORTS/ folders, and PDFs outside the viewer's folders are never counted as
 * viewer software.
 */
export function detectViewer(relativePaths: string[]): ViewerDetection {
  const entries = relativePaths.map((p) => ({ original: p, segments: p.replace(/\\/g, "/").toLowerCase().split("/").filter((s) => s !== "" && s !== ".") }));
  // Top-level folders that hold a program or library anywhere inside are the viewer's own folders.
  const programDirs = new Set<string>();
  for (const e of entries) {
    if (e.segments.length > 1 && EXECUTABLE_EXT.test(e.segments[e.segments.length - 1]!) && !DATA_DIR.test(e.segments[0]!)) programDirs.add(e.segments[0]!);
  }
  const viewerPaths: string[] = [];
  const hits = new Map<string, number>();
  for (const e of entries) {
    if (e.segments.length === 0 || isProtected(e.segments, programDirs)) continue;
    const base = e.segments[e.segments.length - 1]!;
    const dirs = e.segments.slice(0, -1);
    const lower = e.segments.join("/");
    const known = KNOWN_VIEWERS.find((v) => v.pattern.test(lower));
    const isViewer =
      EXECUTABLE_EXT.test(base) ||
      (dirs.length === 0 && LAUNCHER_FILE.test(base)) ||
      dirs.some((d) => VIEWER_DIR.test(d)) ||
      (dirs.length > 0 && programDirs.has(dirs[0]!)) ||
      (known !== undefined && dirs.length > 0);
    if (!isViewer) continue;
    viewerPaths.push(e.original);
    if (known) hits.set(known.name, (hits.get(known.name) ?? 0) + 1);
  }
  let name: string | undefined;
  let best = 0;
  for (const [n, count] of hits) {
    if (count > best) {
      name = n;
      best = count;
    }
  }
  const result: ViewerDetection = { found: viewerPaths.length > 0, viewerPaths };
  if (name) result.name = name;
  return result;
}
