import { link, mkdir, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { describeIoError, InputError, SizeLimitError, throwIfAborted, UsageError } from "../errors.js";
import { msg, warnText } from "../i18n/index.js";
import type { Emit } from "../ui/events.js";
import { VERSION } from "../version.js";
import { formatBytes } from "../ui/format.js";
import { formatSha256Line, hashFile, parseSha256Line } from "../util/hash.js";
import { trackTemp, untrackTemp } from "../util/tempfiles.js";
import { manifestJsonChunks, type ExcludedFile, type FileKind, type HashedFiles, type Manifest } from "./manifest.js";
import { folderNameFor } from "./name.js";
import { planPackage } from "./plan.js";
import { scanInputs, type ScanResult } from "./scan.js";
import { triageViewerSoftware } from "./triage.js";
import { tmpdir } from "node:os";
import { READ_THREAD_BYTES, writeZip } from "./zip.js";
import type { OutputMode } from "./zip-output.js";
import { workerLoader, type PieceLoader } from "./piece-loader.js";
import { inspectDicomFiles, type DicomInspection, type InspectOptions } from "./inspect.js";

/** What pack needs to know. */
export interface PackOptions {
  inputs: string[];
  patient: string;
  outDir: string;
  cwd: string;
  ascii: boolean;
  store: boolean;
  level: number;
  emailLimit: number;
  maxSize?: number;
  force: boolean;
  dryRun: boolean;
  strict: boolean;
  allowPatientMismatch: boolean;
  /** Package DICOM-looking files whose patient cannot be read (recorded in the manifest). */
  allowUnchecked?: boolean;
  /** Keep only this patient's DICOM files (Patient ID or name). */
  onlyPatient?: string;
  /** Asked on a TTY when the DICOM files belong to several patients; undefined = not interactive. */
  choosePatient?: InspectOptions["choosePatient"];
  /** `inspect`: report unchecked files and mixed patients instead of refusing. */
  reportOnly?: boolean;
  /** Unpack nested .zip archives into the folder (safely) instead of refusing them. */
  expandArchives?: boolean;
  /** Benchmarks only: skip DICOM header inspection (and so the wrong-patient guard) to measure its cost. */
  skipInspect?: boolean;
  /** send: when the package already exists and was made from exactly these inputs, reuse it instead of refusing. */
  reuseIfUnchanged?: boolean;
  /** Asked on a TTY when the DICOM patient does not match; undefined = not interactive. */
  confirmMismatch?: (lines: string[]) => Promise<boolean>;
  signal?: AbortSignal;
  emit?: Emit;
  now?: () => Date;
}

/** What pack produced (or, with dryRun, would produce). */
export interface PackResult {
  /** Absolute path of the zip (not written with dryRun). */
  package: string;
  sidecar: string;
  root: string;
  patient: string;
  sha256?: string;
  size?: number;
  inputBytes: number;
  emailable?: boolean;
  emailLimit: number;
  files: { total: number; byKind: Partial<Record<FileKind, number>> };
  excluded: ExcludedFile[];
  excludedSummary: Array<{ reason: string; count: number; bytes: number; viewer?: string }>;
  storedEntries?: number;
  dicom?: DicomInspection;
  dryRun: boolean;
  /** The existing package was made from the same inputs and was reused (send re-runs). */
  reused?: boolean;
  /**
   * Where the time went (milliseconds, for benchmarks): startupMs is the time from process start to the pack
   * pipeline (Node, module loading, config); then scan, DICOM inspection, the zip (zipMs, including its final
   * fsync, which fsyncMs reports apart), the sidecar and moving into place (finishMs), and the whole pipeline;
   * output says how the zip was written ("direct": O_DIRECT, not through the page cache; "buffered").
   */
  timings?: PackTimings;
}

/** See PackResult.timings. */
export interface PackTimings {
  startupMs: number;
  scanMs: number;
  inspectMs: number;
  zipMs: number;
  fsyncMs: number;
  finishMs: number;
  totalMs: number;
  output: OutputMode;
}

function countBy<T>(items: T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const i of items) out[key(i)] = (out[key(i)] ?? 0) + 1;
  return out;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

function refuseBadInputs(scan: ScanResult): void {
  if (scan.unreadable.length > 0) {
    throw new InputError("UNREADABLE_FILES", msg("pack.unreadableFiles", { n: scan.unreadable.length }), {
      hint: msg("pack.unreadableFiles.hint"),
      privateLines: scan.unreadable.slice(0, 20).map((u) => `${scan.inputs[u.input]!.given}/${u.relPath} (${u.code})`),
      details: { unreadable: scan.unreadable.length },
    });
  }
  if (scan.archives.length > 0) {
    throw new InputError("NESTED_ARCHIVE", msg("pack.nestedArchive", { n: scan.archives.length }), {
      hint: msg("pack.nestedArchive.hint"),
      privateLines: scan.archives.slice(0, 20).map((a) => `${scan.inputs[a.input]!.given}/${a.relPath}`),
      details: { archives: scan.archives.length },
    });
  }
  if (scan.files.length === 0) {
    const empty = scan.excluded.length === 0;
    throw new InputError(empty ? "EMPTY_INPUT" : "NOTHING_TO_PACK",
      empty ? msg("pack.emptyInput") : msg("pack.nothingToPack", { n: scan.excluded.length }),
      { hint: msg("pack.emptyInput.hint") });
  }
}

/**
 * The pack pipeline: scan → classify → triage → inspect DICOM → plan → zip with manifest → limits → move into
 * place with the .sha256 sidecar. Source files are only ever read.
 */
export async function packPackage(opts: PackOptions): Promise<PackResult> {
  const now = opts.now ?? (() => new Date());
  const patient = opts.patient.normalize("NFC").trim();
  const root = folderNameFor(patient, { ascii: opts.ascii });
  if (root === "" && !(opts.dryRun && patient === "")) {
    throw new UsageError("PATIENT_NAME_EMPTY", msg("pack.patientNameEmpty"), {
      hint: msg("pack.patientNameEmpty.hint"),
    });
  }
  const outDir = resolve(opts.cwd, opts.outDir);
  const fileName = `${root}.zip`;
  const finalPath = join(outDir, fileName);
  const sidecarPath = `${finalPath}.sha256`;
  const existing = !opts.dryRun && !opts.force && ((await exists(finalPath)) || (await exists(sidecarPath)));
  if (existing && !opts.reuseIfUnchanged) {
    throw new UsageError("PACKAGE_EXISTS", msg("pack.exists"), {
      hint: msg("pack.exists.hint"),
      privateLines: [finalPath],
    });
  }

  const started = performance.now();
  // Once the input is big enough for the zip to read on a thread, that thread is started (about 40 ms here) while
  // the scan and the inspection go on, so it is up when the zip begins. writeZip takes it over; closed otherwise.
  let thread: PieceLoader | undefined;
  const startThread = { atLeast: READ_THREAD_BYTES, then: () => (thread = workerLoader()) };
  try {
    const scan = await scanInputs(opts.inputs, { cwd: opts.cwd, signal: opts.signal, emit: opts.emit, onInputBytes: opts.dryRun ? undefined : startThread });
    const scanned = performance.now();
    // Loaded only when asked for: the zip reader and the name-charset detection take tens of milliseconds to load.
    const expand = opts.expandArchives ? await import("./expand.js") : undefined;
    const expanded = expand
      ? await expand.expandArchives(scan, { tmpParent: opts.dryRun ? tmpdir() : outDir, signal: opts.signal, emit: opts.emit })
      : undefined;
    const takeThread = () => {
      const taken = thread;
      thread = undefined;
      return taken;
    };
    try {
      return await packScanned(scan, { ...opts, patient }, { root, outDir, fileName, finalPath, sidecarPath, existing, now, clock: { started, scanned }, takeThread });
    } finally {
      await expand?.removeExpanded(expanded);
    }
  } finally {
    thread?.close();
  }
}

interface Target {
  root: string;
  outDir: string;
  fileName: string;
  finalPath: string;
  sidecarPath: string;
  existing: boolean;
  now: () => Date;
  /** performance.now() when the pipeline started and when the scan ended. */
  clock: { started: number; scanned: number };
  /** The reading thread started during the scan, if any (the zip takes it over). */
  takeThread: () => PieceLoader | undefined;
}

async function packScanned(scan: ScanResult, opts: PackOptions, t: Target): Promise<PackResult> {
  const { root, outDir, fileName, finalPath, sidecarPath, existing, now, clock, takeThread } = t;
  const patient = opts.patient;
  const viewer = triageViewerSoftware(scan);
  refuseBadInputs(scan);
  throwIfAborted(opts.signal);

  const dicom = opts.skipInspect ? undefined : await inspectDicomFiles(scan, {
    patient,
    strict: opts.strict,
    allowPatientMismatch: opts.allowPatientMismatch,
    allowUnchecked: opts.allowUnchecked,
    reportOnly: opts.reportOnly,
    onlyPatient: opts.onlyPatient,
    confirmMismatch: opts.confirmMismatch,
    choosePatient: opts.choosePatient,
    signal: opts.signal,
    emit: opts.emit,
  });

  // The headers read by the scan served the inspection: drop them (about 2 KB per DICOM file, kept until the zip
  // is written they made peak memory grow with the number of files).
  scan.dicomHeaders = undefined;
  const inspected = performance.now();
  const excluded = scan.excluded.map(({ input: _i, ...e }) => e);
  const executables = excluded.filter((e) => e.reason === "executable");
  if (executables.length > 0) {
    opts.emit?.({ type: "warn", code: "EXECUTABLES_LEFT_OUT", ...warnText("warn.executablesLeftOut", { n: executables.length }), privateLines: executables.slice(0, 20).map((e) => e.path) });
  }
  if (viewer.files > 0) {
    opts.emit?.({ type: "warn", code: "VIEWER_LEFT_OUT", ...(viewer.name ? warnText("warn.viewerLeftOutNamed", { n: viewer.files, viewer: viewer.name, size: formatBytes(viewer.bytes) }) : warnText("warn.viewerLeftOut", { n: viewer.files, size: formatBytes(viewer.bytes) })) });
  }
  const outside = excluded.filter((e) => e.reason === "symlink-outside-inputs" || e.reason === "symlink-loop" || e.reason === "broken-symlink");
  if (outside.length > 0) {
    opts.emit?.({ type: "warn", code: "SYMLINKS_LEFT_OUT", ...warnText("warn.symlinksLeftOut", { n: outside.length }), privateLines: outside.slice(0, 20).map((e) => `${e.path} (${e.reason})`) });
  }

  const plan = planPackage(scan, { root, ascii: opts.ascii, excluded });
  const byKind = countBy(plan.entries, (e) => e.kind) as Partial<Record<FileKind, number>>;
  const inputBytes = plan.entries.reduce((s, e) => s + e.source.size, 0);
  const excludedSummary = summarizeExcluded(excluded, viewer.name);
  const base: PackResult = {
    package: finalPath, sidecar: sidecarPath, root, patient, inputBytes, emailLimit: opts.emailLimit,
    files: { total: plan.entries.length, byKind }, excluded, excludedSummary, dicom, dryRun: opts.dryRun,
  };
  if (opts.dryRun) return base;
  if (existing) return reuseExisting(base, plan.entries.map((e) => ({ path: e.path, size: e.source.size, absPath: e.source.absPath })), opts);

  if (opts.maxSize !== undefined && opts.store && inputBytes > opts.maxSize) {
    // Stored zips are never smaller than their content: refuse before writing anything.
    throw new SizeLimitError("MAX_SIZE_EXCEEDED", msg("pack.filesOverLimit", { limit: formatBytes(opts.maxSize) }), {
      hint: msg("pack.filesOverLimit.hint"),
    });
  }
  try {
    await mkdir(outDir, { recursive: true });
  } catch (err) {
    throw describeIoError(err, msg("what.outputFolder"));
  }
  const createdAt = now().toISOString();
  const buildManifest = (files: HashedFiles): Iterable<Buffer> => manifestJsonChunks({
    format: "scanbridge-package",
    formatVersion: 1,
    tool: { name: "scanbridge", version: VERSION },
    createdAt,
    root,
    patient: { name: patient },
    // Every planned file, each record (with its DICOM study and series from the inspection) made as it is written.
    files,
    totals: { files: files.length, bytes: inputBytes, byKind },
    excluded,
    ...(dicom?.summary ? { dicom: dicom.summary } : {}),
    ...overridesOf(dicom, plan.entries),
    ...(dicom?.onlyPatient ? { onlyPatient: { ...(dicom.onlyPatient.id ? { id: dicom.onlyPatient.id } : {}), ...(dicom.onlyPatient.ids ? { ids: dicom.onlyPatient.ids } : {}) } } : {}),
  });

  const zipStarted = performance.now();
  const written = await writeZip(plan, {
    outDir, fileName, level: opts.level, store: opts.store, maxSize: opts.maxSize, signal: opts.signal, emit: opts.emit, buildManifest,
    manifestTime: new Date(createdAt), startedLoader: takeThread(),
  });
  const zipped = performance.now();
  const sidecarTmp = `${written.tmpPath}.sha256`;
  try {
    throwIfAborted(opts.signal);
    trackTemp(sidecarTmp);
    await writeFile(sidecarTmp, formatSha256Line(written.sha256, fileName), { mode: 0o600, flag: "wx" });
    if (opts.force) {
      await rename(written.tmpPath, finalPath);
    } else {
      // link() refuses to replace an existing file: a package that appeared meanwhile is never overwritten.
      try {
        await link(written.tmpPath, finalPath);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EEXIST") {
          throw new UsageError("PACKAGE_EXISTS", msg("pack.appeared"), { hint: msg("pack.appeared.hint") });
        }
        if ((err as NodeJS.ErrnoException).code !== "EPERM" && (err as NodeJS.ErrnoException).code !== "ENOTSUP") throw err;
        await rename(written.tmpPath, finalPath); // file systems without hard links (FAT, some network shares)
      }
      await unlink(written.tmpPath).catch(() => {});
    }
    untrackTemp(written.tmpPath);
    await rename(sidecarTmp, sidecarPath);
    untrackTemp(sidecarTmp);
  } catch (err) {
    await unlink(written.tmpPath).catch(() => {});
    await unlink(sidecarTmp).catch(() => {});
    untrackTemp(written.tmpPath);
    untrackTemp(sidecarTmp);
    throw describeIoError(err, msg("what.package"));
  }
  return {
    ...base,
    sha256: written.sha256,
    size: written.size,
    emailable: written.size <= opts.emailLimit,
    storedEntries: written.storedEntries,
    timings: {
      startupMs: Math.round(clock.started), scanMs: Math.round(clock.scanned - clock.started), inspectMs: Math.round(inspected - clock.scanned),
      zipMs: Math.round(zipped - zipStarted), fsyncMs: Math.round(written.fsyncMs), finishMs: Math.round(performance.now() - zipped), totalMs: Math.round(performance.now() - clock.started),
      output: written.output,
    },
  };
}

/** The manifest's record of what the sender overrode, with the package paths of unchecked files. */
function overridesOf(dicom: DicomInspection | undefined, entries: Array<{ path: string; source: { absPath: string } }>): Pick<Manifest, "overrides"> {
  if (!dicom || (!dicom.mismatch && !dicom.allowedUnchecked)) return {};
  const unchecked = new Set(dicom.unchecked);
  const uncheckedFiles = entries.filter((e) => unchecked.has(e.source.absPath)).map((e) => e.path);
  return {
    overrides: {
      ...(dicom.mismatch ? { allowPatientMismatch: true } : {}),
      ...(dicom.allowedUnchecked ? { allowUnchecked: true, uncheckedFiles } : {}),
    },
  };
}

function summarizeExcluded(excluded: ExcludedFile[], viewer: string | undefined): PackResult["excludedSummary"] {
  const map = new Map<string, { reason: string; count: number; bytes: number; viewer?: string }>();
  for (const e of excluded) {
    const s = map.get(e.reason) ?? { reason: e.reason, count: 0, bytes: 0, ...(e.reason === "viewer-software" && viewer ? { viewer } : {}) };
    s.count++;
    s.bytes += e.size ?? 0;
    map.set(e.reason, s);
  }
  return [...map.values()];
}

/**
 * The package exists: reuse it when its manifest lists exactly the planned files with the same sizes and contents
 * (hashing the inputs, never trusting dates), otherwise refuse as PACKAGE_EXISTS. Used by send re-runs.
 */
async function reuseExisting(base: PackResult, planned: Array<{ path: string; size: number; absPath: string }>, opts: PackOptions): Promise<PackResult> {
  const changed = () => new UsageError("PACKAGE_EXISTS", msg("pack.existsDifferent"), {
    hint: msg("pack.existsDifferent.hint"),
    privateLines: [base.package],
  });
  let manifest: Manifest;
  let sidecar: string;
  try {
    const { readManifestFromZip } = await import("./read-manifest.js");
    manifest = await readManifestFromZip(base.package);
    sidecar = await readFile(base.sidecar, "utf8");
  } catch {
    throw changed();
  }
  if (manifest.patient.name !== base.patient || manifest.root !== base.root || manifest.files.length !== planned.length) throw changed();
  const byPath = new Map(manifest.files.map((f) => [f.path, f]));
  opts.emit?.({ type: "step", id: "reuse", label: msg("step.reuse") });
  let done = 0;
  const total = planned.reduce((s, p) => s + p.size, 0);
  for (const p of planned) {
    throwIfAborted(opts.signal);
    const m = byPath.get(p.path);
    if (!m || m.size !== p.size || m.sha256 !== (await hashFile(p.absPath, opts.signal))) {
      opts.emit?.({ type: "step-done", id: "reuse", ok: false, label: msg("step.reuse.differs") });
      throw changed();
    }
    done += p.size;
    opts.emit?.({ type: "progress", id: "reuse", done, total, unit: "bytes" });
  }
  const sha256 = parseSha256Line(sidecar)?.sha256;
  if (!sha256) throw changed();
  const size = (await stat(base.package)).size;
  opts.emit?.({ type: "step-done", id: "reuse", label: msg("step.reuse.done") });
  return { ...base, sha256, size, emailable: size <= opts.emailLimit, reused: true };
}
