/*
 * The media stage: a delivery (a ready/ folder, or a package .zip verified and extracted now) -> PDI file-set in a
 * folder or on a stick -> optionally an ISO 9660 image. Used by `scanbridge media` and by `watch --media`.
 */
import { mkdir, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { InputError } from "../errors.js";
import { verifyPackage, type PackageProblem, type VerifyLimits } from "../ingest/verify.js";
import type { Emit } from "../ui/events.js";
import { trackTemp, untrackTemp } from "../util/tempfiles.js";
import { fileSetIdFrom, MAX_SINGLE_FILE, writeFileSet, type FileSetResult } from "./fileset.js";
import { checkIsoTarget, writeIso } from "./iso.js";
import { planMedia, type MediaPlan } from "./plan.js";
import type { Medium } from "./profile.js";

/** Options of makeMedia. */
export interface MakeMediaOptions {
  /** A delivery folder or a package .zip. */
  input: string;
  /** Write the file-set into this new (or empty) folder. */
  out?: string;
  /** Write the file-set to the root of this mounted stick. */
  usb?: string;
  /** Also write an ISO 9660 image here (needs `xorriso`). */
  iso?: string;
  xorriso?: string;
  medium: Medium;
  maxSize?: number;
  fileSetId?: string;
  /** For a .zip input: accept packages without manifest.json. */
  allowUnsealed?: boolean;
  limits?: Partial<VerifyLimits>;
  /** SHA-256 of the package a ready/ folder came from, when the caller knows it (watch). */
  packageSha256?: string;
  /** Integrity lines the caller already knows (watch: "verified at intake"). */
  integrity?: string[];
  toolVersion: string;
  now?: Date;
  signal?: AbortSignal;
  emit?: Emit;
}

/** What makeMedia made. No PHI. */
export interface MakeMediaResult {
  fileSet: FileSetResult;
  /** The file-set folder, when it was kept (--out / --usb). */
  folder?: string;
  iso?: { path: string; bytes: number; level: number };
  packageSha256?: string;
  sealed: boolean;
}

/** A File-set ID without PHI: SB<date>_<first hex digits of the package SHA-256 or random>. */
export function defaultFileSetId(now: Date, sha256: string | undefined): string {
  const tag = (sha256 ?? randomBytes(3).toString("hex")).slice(0, 5).toUpperCase();
  return fileSetIdFrom(`SB${now.toISOString().slice(0, 10).replace(/-/g, "")}_${tag}`);
}

/** Integrity lines for a delivery folder, from its manifest. */
function folderIntegrity(plan: MediaPlan): string[] {
  if (!plan.manifest) return ["No manifest.json (unsealed delivery): the files were not checked against the sender's checksums."];
  return [`manifest.json lists ${plan.manifest.files.length} file(s); every size matches what was filed (SHA-256 of each file checked at intake).`];
}

/** Make the file-set (and ISO) of a delivery. */
export async function makeMedia(o: MakeMediaOptions): Promise<MakeMediaResult> {
  const now = o.now ?? new Date();
  if (!o.out && !o.usb && !o.iso) throw new InputError("MEDIA_NO_OUTPUT", "Nothing to write: give --out DIR, --usb DIR or --iso FILE");
  if (o.iso) await checkIsoTarget(o.iso);
  const temps: string[] = [];
  const cleanup = async () => {
    for (const t of temps) {
      await rm(t, { recursive: true, force: true }).catch(() => {});
      untrackTemp(t);
    }
  };
  const scratchNear = async (near: string, what: string) => {
    await mkdir(dirname(near), { recursive: true });
    const p = join(dirname(near), `.${basename(near)}.${what}-${randomBytes(4).toString("hex")}`);
    await mkdir(p, { mode: 0o700 });
    trackTemp(p);
    temps.push(p);
    return p;
  };
  try {
    let root = o.input;
    let packageSha256 = o.packageSha256;
    let sealed = true;
    const integrity: string[] = [];
    const st = await stat(o.input).catch(() => undefined);
    if (!st) throw new InputError("DELIVERY_NOT_FOUND", "No such delivery folder or package", { hint: "Give a folder in ready/ or a package .zip.", privateLines: [o.input] });
    if (st.isFile()) {
      // A package: verified and extracted now, next to where the output goes (same file system, private).
      const staging = await scratchNear(o.out ?? o.usb ?? o.iso!, "source");
      const r = await verifyPackage(o.input, { allowUnsealed: o.allowUnsealed, limits: o.limits, extractTo: staging, signal: o.signal, emit: o.emit });
      if (!r.ok || !r.extracted) {
        const list = r.problems.map((p: PackageProblem) => `[${p.code}] ${p.entry ? `${p.entry}: ` : ""}${p.message}`);
        throw new InputError(r.problems.some((p) => p.code === "NOT_A_ZIP") ? "NOT_A_DELIVERY" : "PACKAGE_INVALID", `The package was rejected, ${r.problems.length} problem(s):\n${list.map((l) => `  - ${l}`).join("\n")}`, {
          hint: r.problems.length === 1 && r.problems[0]!.code === "UNSEALED" ? "Packages made by other tools are accepted with --allow-unsealed." : "Nothing was written.",
          details: { id: r.id, problems: r.problems },
        });
      }
      root = r.extracted.root;
      packageSha256 = r.sha256;
      sealed = r.sealed;
      integrity.push(r.sealed ? `Package verified while making this medium: CRC-32 and SHA-256 of all ${r.summary.files} file(s) match its manifest.json.` : "Package verified while making this medium (zip structure and CRC-32); it has no manifest.json, so no sender's checksums.");
    }
    const plan = await planMedia(root, { signal: o.signal, emit: o.emit });
    if (!st.isFile()) {
      sealed = plan.manifest !== undefined;
      integrity.push(...folderIntegrity(plan));
    }
    integrity.push(...(o.integrity ?? []));
    const fileSetId = o.fileSetId ? fileSetIdFrom(o.fileSetId) : defaultFileSetId(now, packageSha256);
    const target = o.usb ?? o.out ?? join(await scratchNear(o.iso!, "fileset"), "FILESET");
    const fileSet = await writeFileSet(plan, target, {
      medium: o.medium,
      maxSize: o.maxSize,
      fileSetId,
      toolVersion: o.toolVersion,
      now,
      packageSha256,
      integrity,
      intoExisting: o.usb !== undefined,
      signal: o.signal,
      emit: o.emit,
    });
    let iso: MakeMediaResult["iso"];
    if (o.iso) {
      o.emit?.({ type: "step", id: "media-iso", label: "Writing the ISO image" });
      const largeFiles = [...plan.patients.flatMap((p) => p.studies.flatMap((s) => s.series.flatMap((se) => se.instances.map((i) => i.source.size)))), ...plan.records.map((r) => r.source.size)].some((n) => n > MAX_SINGLE_FILE);
      iso = await writeIso(target, o.iso, { xorriso: o.xorriso ?? "xorriso", volumeId: fileSetId, largeFiles, signal: o.signal });
      o.emit?.({ type: "step-done", id: "media-iso" });
    }
    return { fileSet, ...(o.out || o.usb ? { folder: target } : {}), ...(iso ? { iso } : {}), ...(packageSha256 ? { packageSha256 } : {}), sealed };
  } finally {
    await cleanup();
  }
}
