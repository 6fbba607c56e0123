import { posix } from "node:path";
import { COMPRESSED_EXT, extOf } from "./classify.js";
import { MANIFEST_NAME, type ExcludedFile, type FileKind } from "./manifest.js";
import { entryNameFor } from "./name.js";
import type { ScanResult, ScannedFile } from "./scan.js";

/** One file to write into the zip. */
export interface PlannedEntry {
  source: ScannedFile;
  /** Path inside the root folder (forward slashes, safe components). */
  path: string;
  kind: FileKind;
  /** Store without compression (already-compressed content). Undefined: decide by sampling. */
  store?: boolean;
}

/** Everything needed to write a package. */
export interface PackagePlan {
  root: string;
  entries: PlannedEntry[];
  excluded: ExcludedFile[];
}

function splitExt(name: string): [string, string] {
  const i = name.lastIndexOf(".");
  return i > 0 ? [name.slice(0, i), name.slice(i)] : [name, ""];
}

/**
 * Decide every entry's path inside `<root>/`. With one folder input its content sits directly in the root (so a
 * CD's DICOMDIR still resolves); several folder inputs each get a sub-folder named after them; file inputs sit
 * in the root. Names that would collide (also case-insensitively, as on Windows and macOS) get " (2)".
 * Entries are sorted for a deterministic zip.
 */
export function planPackage(scan: ScanResult, opts: { root: string; ascii: boolean; excluded?: ExcludedFile[] }): PackagePlan {
  const folderInputs = scan.inputs.filter((i) => i.isDirectory).length;
  const prefixes = new Map<number, string>();
  const used = new Set<string>([MANIFEST_NAME.toLowerCase()]);
  const claim = (wanted: string): string => {
    const dir = posix.dirname(wanted);
    const [stem, ext] = splitExt(posix.basename(wanted));
    let candidate = wanted;
    for (let n = 2; used.has(candidate.toLowerCase()); n++) candidate = (dir === "." ? "" : `${dir}/`) + `${stem} (${n})${ext}`;
    used.add(candidate.toLowerCase());
    return candidate;
  };
  if (folderInputs > 1) {
    const taken = new Set<string>();
    scan.inputs.forEach((input, i) => {
      if (!input.isDirectory) return;
      let name = entryNameFor(posix.basename(input.real.replace(/\\/g, "/")) || `input-${i + 1}`, opts);
      const baseName = name;
      for (let n = 2; taken.has(name.toLowerCase()); n++) name = `${baseName} (${n})`;
      taken.add(name.toLowerCase());
      prefixes.set(i, name);
    });
  }
  const entries: PlannedEntry[] = [];
  // Folders that collide case-insensitively must map to one spelling so their files stay together.
  const dirSpelling = new Map<string, string>();
  for (const f of scan.files) {
    const parts = f.relPath.split("/").map((p) => entryNameFor(p, opts));
    const prefix = prefixes.get(f.input);
    const all = prefix ? [prefix, ...parts] : parts;
    for (let i = 1; i < all.length; i++) {
      const key = all.slice(0, i).join("/").toLowerCase();
      const spelled = dirSpelling.get(key);
      if (spelled) all.splice(0, i, ...spelled.split("/"));
      else dirSpelling.set(key, all.slice(0, i).join("/"));
    }
    const joined = all.join("/");
    // Usually the same text as the scanned path: keep that one string (50,000 files: 2.4 MB less for the zip).
    const path = claim(joined === f.relPath ? f.relPath : joined);
    const ext = extOf(path);
    entries.push({ source: f, path, kind: f.kind, store: COMPRESSED_EXT.has(ext) ? true : undefined });
  }
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { root: opts.root, entries, excluded: opts.excluded ?? scan.excluded.map(({ input: _i, ...e }) => e) };
}
