/*
 * The specialist's page inside a ready/ delivery (index.html + index_files/ previews), and the per-delivery media
 * `watch --media` makes. Both are called by the watcher at one call site each; neither ever fails a delivery.
 */
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { makeSeriesThumbnails, pageModelOf, thumbnailName } from "./fileset.js";
import type { MakeMediaResult } from "./make.js";
import { hrefOf, renderPage } from "./page.js";
import { planMedia, type MediaPlan } from "./plan.js";
import type { Medium } from "./profile.js";

/** One DICOM instance the page read, by its path below the delivery folder: handed on so the forward need not read it again. */
export interface ReadyInstance {
  relPath: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
}

function instancesOfPlan(plan: MediaPlan): ReadyInstance[] {
  const out: ReadyInstance[] = [];
  for (const p of plan.patients) {
    for (const st of p.studies) {
      for (const se of st.series) {
        for (const i of se.instances) {
          const h = i.header;
          if (h.studyInstanceUid && h.seriesInstanceUid && h.sopInstanceUid) out.push({ relPath: i.source.relPath, studyInstanceUid: h.studyInstanceUid, seriesInstanceUid: h.seriesInstanceUid, sopInstanceUid: h.sopInstanceUid });
        }
      }
    }
  }
  return out;
}

/** The page's integrity line for a delivery filed by watch. */
export const INTAKE_VERIFIED = "Verified at intake by scanbridge watch: the package's SHA-256 and every file's SHA-256 against its manifest.json.";

/**
 * Write `index.html` (and `index_files/` with one JPEG preview per series) into a delivery folder, linking its
 * reports where they are. Written aside and renamed, so a reader never sees half a page.
 */
export async function writeReadyPage(root: string, o: { packageSha256?: string; sealed: boolean; toolVersion: string; now?: Date; signal?: AbortSignal }): Promise<{ series: number; thumbnails: number; instances: ReadyInstance[] }> {
  const now = o.now ?? new Date();
  const plan = await planMedia(root, { signal: o.signal });
  const thumbs = await makeSeriesThumbnails(plan, o.signal);
  const tag = randomBytes(4).toString("hex");
  const filesTmp = join(root, `.index_files-${tag}`);
  const pageTmp = join(root, `.index.html-${tag}`);
  try {
    await mkdir(filesTmp, { mode: 0o700 });
    let n = 0;
    let made = 0;
    for (const t of thumbs.values()) {
      n++;
      if (t.ok) {
        await writeFile(join(filesTmp, thumbnailName(n)), t.jpeg, { mode: 0o600 });
        made++;
      }
    }
    const model = pageModelOf(plan, thumbs, { thumbnail: (i) => `index_files/${thumbnailName(i)}`, report: (r) => hrefOf(r.source.relPath) }, {
      integrity: [...(o.packageSha256 ? [`Package SHA-256: ${o.packageSha256}`] : []), o.sealed ? INTAKE_VERIFIED : "Unsealed package (no manifest.json): zip structure and CRC-32 checked at intake, no sender's checksums."],
      notes: plan.instances === 0 ? ["This delivery holds no DICOM images: reports only."] : [],
      madeBy: `Made by scanbridge ${o.toolVersion} on ${now.toISOString().slice(0, 16).replace("T", " ")} UTC`,
    });
    await writeFile(pageTmp, renderPage(model), { mode: 0o600 });
    await rm(join(root, "index_files"), { recursive: true, force: true });
    await rename(filesTmp, join(root, "index_files"));
    await rename(pageTmp, join(root, "index.html"));
    return { series: thumbs.size, thumbnails: made, instances: instancesOfPlan(plan) };
  } finally {
    await rm(filesTmp, { recursive: true, force: true }).catch(() => {});
    await rm(pageTmp, { force: true }).catch(() => {});
  }
}

/** Options of `watch --media`. */
export interface WatchMediaOptions {
  /** Folder the file-sets go into: `<dir>/<package id>/` (no patient name in the path) and `<dir>/<package id>.iso`. */
  dir: string;
  iso: boolean;
  xorriso?: string;
  medium: Medium;
  maxSize?: number;
  toolVersion: string;
}

/** Make the file-set (and ISO) of a delivery just filed; returns the audit record (no PHI). */
export async function makeDeliveryMedia(readyPath: string, pkg: { id: string; sha256: string }, o: WatchMediaOptions, signal?: AbortSignal): Promise<{ event: string; [k: string]: unknown }> {
  const t0 = Date.now();
  let r: MakeMediaResult;
  try {
    const { makeMedia } = await import("./make.js");
    r = await makeMedia({
      input: readyPath,
      out: join(o.dir, pkg.id),
      iso: o.iso ? join(o.dir, `${pkg.id}.iso`) : undefined,
      xorriso: o.xorriso,
      medium: o.medium,
      maxSize: o.maxSize,
      packageSha256: pkg.sha256,
      integrity: [INTAKE_VERIFIED],
      toolVersion: o.toolVersion,
      signal,
    });
  } catch (err) {
    return { event: "media", id: pkg.id, result: "failed", code: (err as { code?: string }).code ?? "MEDIA_FAILED", durationMs: Date.now() - t0 };
  }
  const f = r.fileSet;
  return {
    event: "media",
    id: pkg.id,
    result: "made",
    fileSetId: f.fileSetId,
    profile: f.profile,
    instances: f.instances,
    reports: f.reports,
    bytes: f.bytes,
    folder: join(o.dir, pkg.id),
    ...(r.iso ? { iso: r.iso.path, isoBytes: r.iso.bytes } : {}),
    durationMs: Date.now() - t0,
  };
}
