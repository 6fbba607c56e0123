/*
 * Write a planned PDI file-set: DICOM files copied byte for byte under DICOM/ with their 8.3 IDs, reports under
 * REPORTS/, the page (INDEX.HTM + IHE_PDI/), README.TXT and the DICOMDIR. Everything is written into a temporary
 * sibling folder and renamed into place at the end, so a full disk or Ctrl-C never leaves half a file-set.
 */
import { constants as fsc } from "node:fs";
import { copyFile, mkdir, readdir, rename, rm, rmdir, stat, statfs, writeFile } from "node:fs/promises";
import { hostname, userInfo } from "node:os";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { describeIoError, InputError, InterruptedError, LocalIoError, SizeLimitError, throwIfAborted, ScanbridgeError } from "../errors.js";
import type { Emit } from "../ui/events.js";
import { formatBytes } from "../ui/format.js";
import { forEachConcurrent } from "../util/concurrency.js";
import { trackTemp, untrackTemp } from "../util/tempfiles.js";
import { encodeDicomdir, type DirElement, type DirRecord } from "./dicomdir.js";
import { renderPage, type PageDocument, type PageModel, type PageSeries } from "./page.js";
import type { MediaPlan, PlannedSeries } from "./plan.js";
import { chooseProfile, MEDIUM_CAPACITY, transferSyntaxName, type Medium, type ProfileChoice } from "./profile.js";
import { makeThumbnail, type ThumbnailResult } from "./thumbnail.js";

/** Names the file-set puts at the root of its medium. */
export const FILESET_ROOT_NAMES = ["DICOM", "REPORTS", "OTHER", "IHE_PDI", "INDEX.HTM", "README.TXT", "DICOMDIR"] as const;
/** Largest file FAT32 and a single-extent ISO 9660 file can hold. */
export const MAX_SINGLE_FILE = 4 * 1024 ** 3 - 1;
/** Files copied at once. */
const COPY_CONCURRENCY = 4;
/** ISO 9660 sector size: every file occupies whole sectors. */
const SECTOR = 2048;

/** Options of writeFileSet. */
export interface FileSetOptions {
  medium: Medium;
  /** Largest file-set in bytes; default the medium's capacity. */
  maxSize?: number;
  /** File-set ID (also the ISO volume ID): up to 16 of A-Z 0-9 _. */
  fileSetId: string;
  toolVersion: string;
  now: Date;
  /** SHA-256 of the package the delivery came from, when known. */
  packageSha256?: string;
  /** Integrity lines from the caller (package verified now, manifest checked, ...). */
  integrity: string[];
  /** Write into an existing folder's root (a mounted USB stick) rather than creating the output folder. */
  intoExisting?: boolean;
  signal?: AbortSignal;
  emit?: Emit;
}

/** What was written. No PHI. */
export interface FileSetResult {
  path: string;
  fileSetId: string;
  profile: string;
  /** Transfer syntax names -> files kept outside the profile (never re-encoded). */
  outsideProfile: Record<string, number>;
  patients: number;
  studies: number;
  series: number;
  instances: number;
  reports: number;
  others: number;
  bytes: number;
  thumbnails: { made: number; failed: number };
  reportsOnly: boolean;
  replacedDicomdirs: number;
}

/** A File-set ID from free text: upper-case A-Z, 0-9 and _ only, at most 16 characters. */
export function fileSetIdFrom(text: string): string {
  const id = text.toUpperCase().replace(/[^A-Z0-9_]+/g, "_").replace(/^_+|_+$/g, "").slice(0, 16);
  return id || "SCANBRIDGE";
}

/** Bytes the file-set will take on an ISO 9660 medium (whole sectors) plus room for the directory and page. */
export function mediaBytes(plan: MediaPlan): number {
  const files = [...plan.patients.flatMap((p) => p.studies.flatMap((s) => s.series.flatMap((se) => se.instances.map((i) => i.source.size)))), ...plan.records.map((r) => r.source.size)];
  const data = files.reduce((a, n) => a + Math.ceil(n / SECTOR) * SECTOR, 0);
  // DICOMDIR (about 400 bytes per image), page, thumbnails, ISO directory records and volume descriptors.
  return data + files.length * 600 + 2 * 1024 * 1024;
}

/** Refuse a delivery that does not fit the medium, with the sizes. */
export function checkCapacity(plan: MediaPlan, medium: Medium, maxSize: number | undefined): void {
  const limit = maxSize ?? MEDIUM_CAPACITY[medium];
  const need = mediaBytes(plan);
  if (limit !== undefined && need > limit) {
    throw new SizeLimitError("MEDIA_TOO_LARGE", `The delivery needs ${formatBytes(need)} on the medium; ${maxSize !== undefined ? "--max-size allows" : `a ${medium.toUpperCase()} holds`} ${formatBytes(limit)}`, {
      hint: medium === "cd" ? "Use --medium dvd (4.7 GB) or --medium usb." : "Use a larger medium (--medium usb with --usb DIR) or raise --max-size.",
      details: { needBytes: need, limitBytes: limit, medium },
    });
  }
  const big = plan.patients.flatMap((p) => p.studies.flatMap((s) => s.series.flatMap((se) => se.instances))).filter((i) => i.source.size > MAX_SINGLE_FILE).length + plan.records.filter((r) => r.source.size > MAX_SINGLE_FILE).length;
  if (big > 0 && medium === "usb") {
    throw new SizeLimitError("MEDIA_FILE_TOO_LARGE", `${big} file(s) are larger than 4 GiB, which a FAT32 USB stick cannot hold`, { hint: "Use an exFAT or NTFS stick, or --iso (ISO 9660 level 3 holds them)." });
  }
}

/** The thumbnail of each series (its middle image), in plan order. */
export async function makeSeriesThumbnails(plan: MediaPlan, signal?: AbortSignal, emit?: Emit): Promise<Map<PlannedSeries, ThumbnailResult>> {
  const out = new Map<PlannedSeries, ThumbnailResult>();
  const all = plan.patients.flatMap((p) => p.studies.flatMap((s) => s.series));
  if (all.length === 0) return out;
  emit?.({ type: "step", id: "media-thumbnails", label: "Making previews" });
  for (const [i, se] of all.entries()) {
    throwIfAborted(signal);
    const pick = se.instances[Math.floor((se.instances.length - 1) / 2)]!;
    out.set(se, await makeThumbnail(pick.source.absPath));
    emit?.({ type: "progress", id: "media-thumbnails", done: i + 1, total: all.length, unit: "files" });
  }
  emit?.({ type: "step-done", id: "media-thumbnails" });
  return out;
}

/** The page model of a plan; `link` maps each file to its href (medium paths or ready/ paths). */
export function pageModelOf(
  plan: MediaPlan,
  thumbs: Map<PlannedSeries, ThumbnailResult>,
  links: { thumbnail: (index: number) => string; report: (r: MediaPlan["records"][number]) => string; seriesFolder?: (se: PlannedSeries) => string },
  extra: { integrity: string[]; notes: string[]; madeBy: string },
): PageModel {
  let seriesIndex = 0;
  const patients = plan.patients.map((p) => ({
    name: p.name,
    id: p.id,
    birthDate: p.birthDate,
    sex: p.sex,
    studies: p.studies.map((s) => ({
      date: s.date,
      time: s.time,
      description: s.description,
      accessionNumber: s.accessionNumber,
      modalities: [...new Set(s.series.map((se) => se.modality).filter((m): m is string => !!m))],
      series: s.series.map((se): PageSeries => {
        seriesIndex++;
        const t = thumbs.get(se);
        return {
          number: se.number,
          modality: se.modality,
          description: se.description,
          images: se.instances.length,
          ...(t?.ok ? { thumbnail: { href: links.thumbnail(seriesIndex), width: t.width, height: t.height } } : { noThumbnail: t ? `No preview: ${t.reason}` : "No preview" }),
          ...(links.seriesFolder ? { folder: links.seriesFolder(se) } : {}),
        };
      }),
    })),
  }));
  const doc = (r: MediaPlan["records"][number]): PageDocument => ({ href: links.report(r), title: r.source.relPath.split("/").pop()!, bytes: r.source.size, ...(r.role === "unreadable-dicom" ? { note: "DICOM file that could not be read" } : {}) });
  return {
    title: "Imaging for specialist review",
    patients,
    reports: plan.records.filter((r) => r.role === "report").map(doc),
    others: plan.records.filter((r) => r.role !== "report").map(doc),
    integrity: extra.integrity,
    notes: extra.notes,
    madeBy: extra.madeBy,
  };
}

/** The thumbnail file of the n-th series (1-based) on the medium: IHE_PDI/S0000001.JPG. */
export function thumbnailName(n: number): string {
  return `S${String(n).padStart(7, "0")}.JPG`;
}

const LIMITS: Record<DirElement["vr"], number> = { CS: 16, DA: 8, TM: 16, SH: 16, LO: 64, PN: 64, UI: 64, IS: 12 };

function el(tag: number, vr: DirElement["vr"], value: string | undefined): DirElement {
  // Values come from untrusted files: cut to the VR's length; backslashes would split a value.
  const v = (value ?? "").replace(/\\/g, vr === "PN" ? "" : " ");
  return { tag, vr, value: vr === "PN" ? v.split("=").map((g) => g.slice(0, LIMITS.PN)).join("=") : v.slice(0, LIMITS[vr]) };
}

function personName(n: { alphabetic: string; ideographic?: string; phonetic?: string } | undefined): string {
  if (!n) return "";
  const groups = [n.alphabetic, n.ideographic ?? "", n.phonetic ?? ""];
  while (groups.length > 1 && groups[groups.length - 1] === "") groups.pop();
  return groups.join("=");
}

/** The DICOMDIR records of a plan: keys the general-purpose profiles require, missing Type 1 values filled in. */
export function dicomdirRecords(plan: MediaPlan): { roots: DirRecord[]; invented: number } {
  let invented = 0;
  const need = (v: string | undefined, fallback: string) => {
    if (v !== undefined && v.trim() !== "") return v;
    invented++;
    return fallback;
  };
  const roots = plan.patients.map((p, pi): DirRecord => ({
    type: "PATIENT",
    elements: [
      el(0x00100010, "PN", personName(p.name)),
      el(0x00100020, "LO", need(p.id, `NOID${String(pi + 1).padStart(4, "0")}`)),
      ...(p.birthDate ? [el(0x00100030, "DA", p.birthDate)] : []),
      ...(p.sex ? [el(0x00100040, "CS", p.sex)] : []),
    ],
    children: p.studies.map((s, si): DirRecord => ({
      type: "STUDY",
      elements: [
        el(0x00080020, "DA", need(s.date, "19000101")),
        el(0x00080030, "TM", need(s.time, "000000")),
        el(0x00080050, "SH", s.accessionNumber),
        el(0x00081030, "LO", s.description),
        el(0x0020000d, "UI", s.uid),
        el(0x00200010, "SH", need(s.id, String(si + 1))),
      ],
      children: s.series.map((se, sei): DirRecord => ({
        type: "SERIES",
        elements: [
          el(0x00080060, "CS", need(se.modality, "OT")),
          ...(se.description ? [el(0x0008103e, "LO", se.description)] : []),
          el(0x0020000e, "UI", se.uid),
          el(0x00200011, "IS", need(se.number, String(sei + 1))),
        ],
        children: se.instances.map((inst, ii): DirRecord => ({
          type: "IMAGE",
          elements: [
            { tag: 0x00041500, vr: "CS", value: inst.fileId.join("\\") },
            el(0x00041510, "UI", inst.header.sopClassUid),
            el(0x00041511, "UI", inst.header.sopInstanceUid),
            el(0x00041512, "UI", inst.header.transferSyntaxUid ?? "1.2.840.10008.1.2"),
            el(0x00200013, "IS", need(inst.header.instanceNumber, String(ii + 1))),
          ],
          children: [],
        })),
      })),
    })),
  }));
  return { roots, invented };
}

function readmeText(plan: MediaPlan, o: FileSetOptions, choice: ProfileChoice, counts: { studies: number; series: number; reports: number; others: number }): string {
  let who: string;
  try {
    who = `${userInfo().username} on ${hostname()}`;
  } catch {
    who = hostname();
  }
  const L: string[] = [];
  L.push(`SCANBRIDGE MEDIUM ${o.fileSetId}`);
  L.push("");
  L.push("WHAT IS ON THIS MEDIUM");
  if (plan.instances > 0) L.push(`  Medical images (DICOM): ${plan.patients.length} patient(s), ${counts.studies} study(ies), ${counts.series} series, ${plan.instances} image file(s), in DICOM/.`);
  else L.push("  No DICOM images: this delivery holds reports only.");
  L.push(`  Reports: ${counts.reports} file(s) in REPORTS/.`);
  if (counts.others > 0) L.push(`  Other files: ${counts.others} in OTHER/ (photos, unreadable DICOM files).`);
  L.push("  A page for web browsers: INDEX.HTM (with previews in IHE_PDI/).");
  L.push("  DICOMDIR: the index a DICOM viewer reads.");
  L.push("");
  L.push("WHO MADE IT AND WHEN");
  L.push(`  scanbridge ${o.toolVersion}, ${who}, ${o.now.toISOString().replace(/\.\d+Z$/, "Z")}.`);
  L.push("");
  L.push("INTEGRITY");
  L.push(`  Package SHA-256: ${o.packageSha256 ?? "not known (made from a folder; see the intake audit log)"}`);
  for (const line of o.integrity) L.push(`  ${line}`);
  L.push("  The image files are exact copies of the files received; nothing was converted or compressed.");
  L.push("");
  L.push("HOW TO OPEN IT");
  L.push("  1. In any web browser: open INDEX.HTM. It lists the studies with a preview of each series and links the reports.");
  L.push("  2. In a DICOM viewer (RadiAnt, Horos, OsiriX, Weasis, MicroDicom, your PACS import): open or import the DICOMDIR file");
  L.push("     at the top of this medium.");
  L.push("  3. Reports (PDF) are in the REPORTS folder.");
  L.push("");
  L.push("STANDARD");
  L.push(`  DICOM PS3.10/PS3.12 file-set, IHE Portable Data for Imaging (PDI). Application profile: ${choice.profile.id}.`);
  const outside = Object.entries(choice.outside);
  if (outside.length > 0) L.push(`  Kept as received, outside that profile: ${outside.map(([ts, n]) => `${n} file(s) in ${transferSyntaxName(ts)}`).join("; ")}.`);
  L.push("");
  L.push("This medium holds personal health information. Keep it safe and destroy it when no longer needed.");
  return L.join("\r\n") + "\r\n";
}

/** Count studies/series in a plan. */
export function planCounts(plan: MediaPlan): { studies: number; series: number; reports: number; others: number } {
  return {
    studies: plan.patients.reduce((a, p) => a + p.studies.length, 0),
    series: plan.patients.reduce((a, p) => a + p.studies.reduce((b, s) => b + s.series.length, 0), 0),
    reports: plan.records.filter((r) => r.role === "report").length,
    others: plan.records.filter((r) => r.role !== "report").length,
  };
}

/** Where the file-set is built: a hidden sibling of the output folder (same file system, so the final rename is atomic). */
function tempSibling(target: string, intoExisting: boolean): string {
  const tag = randomBytes(4).toString("hex").toUpperCase();
  return intoExisting ? join(target, `SBTMP${tag}`) : join(dirname(target), `.${basename(target)}.partial-${tag}`);
}

/** Refuse an output folder that has content (or, for a stick, names the file-set would overwrite). */
async function checkTarget(target: string, intoExisting: boolean): Promise<void> {
  let names: string[];
  try {
    names = await readdir(target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && !intoExisting) return;
    if (code === "ENOENT") throw new InputError("USB_NOT_FOUND", "The USB folder does not exist (is the stick mounted?)", { privateLines: [target] });
    if (code === "ENOTDIR") throw new InputError("OUTPUT_NOT_A_FOLDER", "The output path is a file, not a folder", { privateLines: [target] });
    throw describeIoError(err, "the output folder");
  }
  if (intoExisting) {
    const upper = new Set(names.map((n) => n.toUpperCase()));
    const clash = FILESET_ROOT_NAMES.filter((n) => upper.has(n));
    if (clash.length > 0) throw new InputError("OUTPUT_NOT_EMPTY", `The stick already holds a file-set (${clash.join(", ")})`, { hint: "Use an empty stick, or move the old file-set away first." });
  } else if (names.length > 0) {
    throw new InputError("OUTPUT_NOT_EMPTY", `The output folder is not empty (${names.length} entries)`, { hint: "Give a new or empty folder with --out; nothing was written.", privateLines: [target] });
  }
}

/** Refuse early when the output's file system has clearly too little room. */
async function checkFreeSpace(target: string, intoExisting: boolean, need: number): Promise<void> {
  let free: number;
  try {
    const fs = await statfs(intoExisting ? target : dirname(target));
    free = fs.bavail * fs.bsize;
  } catch {
    return; // statfs not available: the write itself will tell
  }
  if (free < need) {
    throw new LocalIoError("DISK_FULL", `Not enough space for the file-set: it needs about ${formatBytes(need)}, ${formatBytes(free)} are free`, { hint: "Free some space or choose another output folder." });
  }
}

/** Write the file-set of `plan` to `target` (created; or, with intoExisting, the root of a mounted stick). */
export async function writeFileSet(plan: MediaPlan, target: string, o: FileSetOptions): Promise<FileSetResult> {
  checkCapacity(plan, o.medium, o.maxSize);
  const intoExisting = o.intoExisting === true;
  await checkTarget(target, intoExisting);
  await checkFreeSpace(target, intoExisting, plan.bytes + 4 * 1024 * 1024);
  const choice = chooseProfile(o.medium, plan.syntaxes);
  const counts = planCounts(plan);
  const tmp = tempSibling(target, intoExisting);
  trackTemp(tmp);
  try {
    if (!intoExisting) await mkdir(dirname(target), { recursive: true });
    await mkdir(tmp, { mode: 0o700 });
    // 1. Images, byte for byte (the kernel copies; memory stays flat), in patient/study/series/instance order.
    const instances = plan.patients.flatMap((p) => p.studies.flatMap((s) => s.series.flatMap((se) => se.instances)));
    const total = plan.bytes;
    let done = 0;
    const jobs = [
      ...instances.map((i) => ({ src: i.source.absPath, rel: i.fileId.join("/"), size: i.source.size })),
      // 2. Reports and other files, outside the DICOM tree.
      ...plan.records.map((r) => ({ src: r.source.absPath, rel: r.mediaPath, size: r.source.size })),
    ];
    // Folders first, in order; then the copies, a few at a time (the kernel copies; memory stays flat).
    for (const dir of new Set(jobs.map((j) => dirname(join(tmp, ...j.rel.split("/")))))) await mkdir(dir, { recursive: true });
    // 3. The previews are decoded while the files copy (decoding is CPU, copying is the kernel's I/O).
    const thumbsMade = makeSeriesThumbnails(plan, o.signal);
    thumbsMade.catch(() => {});
    o.emit?.({ type: "step", id: "media-copy", label: "Copying files" });
    await forEachConcurrent(jobs, COPY_CONCURRENCY, async (j) => {
      await copyFile(j.src, join(tmp, ...j.rel.split("/")), fsc.COPYFILE_EXCL);
      done += j.size;
      o.emit?.({ type: "progress", id: "media-copy", done, total, unit: "bytes" });
    }, { signal: o.signal, checkAbort: throwIfAborted });
    o.emit?.({ type: "step-done", id: "media-copy" });
    o.emit?.({ type: "step", id: "media-page", label: "Writing the page and DICOMDIR" });
    const thumbs = await thumbsMade;
    await mkdir(join(tmp, "IHE_PDI"));
    let n = 0;
    for (const t of thumbs.values()) {
      n++;
      if (t.ok) await writeFile(join(tmp, "IHE_PDI", thumbnailName(n)), t.jpeg);
    }
    const notes: string[] = [];
    if (plan.instances === 0) notes.push("This delivery holds no DICOM images: reports only.");
    const outside = Object.entries(choice.outside);
    if (outside.length > 0) notes.push(`Some images are kept exactly as received in a format outside the ${choice.profile.id} profile (${outside.map(([ts, c]) => `${c} in ${transferSyntaxName(ts)}`).join("; ")}); most DICOM viewers still open them.`);
    const integrity = [...(o.packageSha256 ? [`Package SHA-256: ${o.packageSha256}`] : []), ...o.integrity];
    const model = pageModelOf(plan, thumbs, { thumbnail: (i) => `IHE_PDI/${thumbnailName(i)}`, report: (r) => r.mediaPath, seriesFolder: (se) => se.instances[0]!.fileId.slice(0, 4).join("/") }, {
      integrity,
      notes,
      madeBy: `Made by scanbridge ${o.toolVersion} on ${o.now.toISOString().slice(0, 16).replace("T", " ")} UTC · File-set ${o.fileSetId} · ${choice.profile.id}`,
    });
    await writeFile(join(tmp, "INDEX.HTM"), renderPage(model));
    await writeFile(join(tmp, "README.TXT"), readmeText(plan, o, choice, counts));
    // 4. The DICOMDIR last: a file-set is only one once its directory is there.
    const { roots } = dicomdirRecords(plan);
    await writeFile(join(tmp, "DICOMDIR"), encodeDicomdir({ fileSetId: o.fileSetId, implementationVersion: `SCANBRIDGE_${o.toolVersion}`.slice(0, 16), roots }));
    throwIfAborted(o.signal);
    await placeFileSet(tmp, target, intoExisting);
    o.emit?.({ type: "step-done", id: "media-page" });
    untrackTemp(tmp);
    const failed = [...thumbs.values()].filter((t) => !t.ok).length;
    return {
      path: target,
      fileSetId: o.fileSetId,
      profile: choice.profile.id,
      outsideProfile: Object.fromEntries(outside.map(([ts, c]) => [transferSyntaxName(ts), c])),
      patients: plan.patients.length,
      studies: counts.studies,
      series: counts.series,
      instances: plan.instances,
      reports: counts.reports,
      others: counts.others,
      bytes: plan.bytes,
      thumbnails: { made: thumbs.size - failed, failed },
      reportsOnly: plan.instances === 0,
      replacedDicomdirs: plan.replacedDicomdirs,
    };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    untrackTemp(tmp);
    if (err instanceof ScanbridgeError) throw err;
    if ((err as Error).name === "AbortError" || o.signal?.aborted) throw new InterruptedError();
    throw describeIoError(err, "the file-set");
  }
}

/** Move the finished file-set into place: one rename for a new folder, one per root entry (DICOMDIR last) on a stick. */
async function placeFileSet(tmp: string, target: string, intoExisting: boolean): Promise<void> {
  if (!intoExisting) {
    // An empty output folder is replaced; a folder that gained content meanwhile makes rename fail (ENOTEMPTY).
    await rmdir(target).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") throw err;
    });
    await rename(tmp, target);
    return;
  }
  const names = (await readdir(tmp)).sort((a, b) => (a === "DICOMDIR" ? 1 : b === "DICOMDIR" ? -1 : a < b ? -1 : 1));
  for (const name of names) {
    const exists = await stat(join(target, name)).then(() => true, () => false);
    if (exists) throw new InputError("OUTPUT_NOT_EMPTY", `The stick gained ${name} while the file-set was written`);
    await rename(join(tmp, name), join(target, name));
  }
  await rmdir(tmp);
}
