import { constants as fsc } from "node:fs";
import { open, opendir, realpath, stat, type FileHandle } from "node:fs/promises";
import { basename, join, relative, resolve, sep } from "node:path";
import { InputError, throwIfAborted } from "../errors.js";
import { msg, t } from "../i18n/index.js";
import type { Emit } from "../ui/events.js";
import { classifyFile, HEAD_BYTES, isExecutableDir, isJunkDir } from "./classify.js";
import type { ExcludedFile, FileKind } from "./manifest.js";
import { forEachConcurrent } from "../util/concurrency.js";
import { FIRST_CHUNK, readDicomHeaderFromOpen } from "../dicom/read.js";
import type { DicomHeader } from "../dicom/types.js";

/** One input as given on the command line, resolved. */
export interface ScanInput {
  /** As the user typed it (may contain PHI: shown only to the user). */
  given: string;
  /** Real absolute path. */
  real: string;
  isDirectory: boolean;
}

/** A file found in the inputs that will be packaged. */
export interface ScannedFile {
  /** Absolute path to read from. */
  absPath: string;
  /** Index into ScanResult.inputs. */
  input: number;
  /** Path relative to its input folder, forward slashes ("" parts never); for a file input, its base name. */
  relPath: string;
  size: number;
  mtime: Date;
  kind: FileKind;
  /** Folder (relative, forward slashes) this file sits in, for viewer-software triage. */
  dir: string;
}

/** What scanning the inputs found. */
export interface ScanResult {
  inputs: ScanInput[];
  files: ScannedFile[];
  excluded: Array<ExcludedFile & { input: number }>;
  /** Nested archives found (refused unless expanded). */
  archives: Array<{ input: number; relPath: string; absPath: string; size: number }>;
  /** Files or folders that could not be read. */
  unreadable: Array<{ input: number; relPath: string; code: string }>;
  /**
   * The DICOM header of every DICOM-looking file, read while classifying it (same open, same first read), or why
   * it could not be read; pack's inspection uses these instead of opening the files again.
   */
  dicomHeaders?: Map<string, { header: DicomHeader } | { error: unknown }>;
}

/** Options for scanInputs. */
export interface ScanOptions {
  cwd: string;
  signal?: AbortSignal;
  emit?: Emit;
  /** Files read at once for classification. */
  concurrency?: number;
}

/** The first FIRST_CHUNK bytes of an open file (enough to classify it and, usually, for its whole DICOM header). */
async function readHead(fh: FileHandle, size: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(Math.min(FIRST_CHUNK, size));
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

const DICOM_KINDS = new Set<FileKind>(["dicom", "dicomdir", "dicom-unreadable"]);

function isInside(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel === "" || (!rel.startsWith("..") && !rel.startsWith(sep) && rel !== "..");
}

/** Resolve the command-line inputs; a missing input is an InputError naming its position (the path only privately). */
export async function resolveInputs(given: string[], cwd: string): Promise<ScanInput[]> {
  if (given.length === 0) throw new InputError("NO_INPUT", msg("pack.noInput"), { hint: msg("pack.noInput.hint") });
  const inputs: ScanInput[] = [];
  for (const [i, g] of given.entries()) {
    const abs = resolve(cwd, g);
    let real: string;
    try {
      real = await realpath(abs);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new InputError(code === "ENOENT" ? "INPUT_NOT_FOUND" : "INPUT_UNREADABLE",
        code === "ENOENT" ? msg("pack.inputNotFound", { i: i + 1, n: given.length }) : msg("pack.inputCannotOpen", { i: i + 1, n: given.length, reason: String(code) }),
        { hint: msg("pack.inputNotFound.hint"), privateLines: [`input ${i + 1}: ${g}`], details: { input: i + 1 } });
    }
    let st;
    try {
      st = await stat(real);
    } catch (err) {
      throw new InputError("INPUT_UNREADABLE", msg("pack.inputCannotRead", { i: i + 1, n: given.length, reason: String((err as NodeJS.ErrnoException).code) }), { privateLines: [`input ${i + 1}: ${g}`] });
    }
    if (!st.isDirectory() && !st.isFile()) {
      throw new InputError("INPUT_NOT_FILE", msg("pack.inputNotFile", { i: i + 1, n: given.length }), { privateLines: [`input ${i + 1}: ${g}`] });
    }
    inputs.push({ given: g, real, isDirectory: st.isDirectory() });
  }
  return inputs;
}

/**
 * Walk the inputs recursively and classify every file. Symbolic links are never followed: a link to something
 * inside the inputs is already packaged at its real place, a link out of the inputs is reported. Never writes.
 */
export async function scanInputs(given: string[], opts: ScanOptions): Promise<ScanResult> {
  const inputs = await resolveInputs(given, opts.cwd);
  const result: ScanResult = { inputs, files: [], excluded: [], archives: [], unreadable: [], dicomHeaders: new Map() };
  const pending: Array<{ input: number; abs: string; rel: string; dir: string }> = [];
  const roots = inputs.map((i) => i.real);
  const seenFiles = new Set<string>();

  const addFile = (input: number, abs: string, rel: string, dir: string) => {
    if (seenFiles.has(abs)) return; // the same file named twice (overlapping inputs)
    seenFiles.add(abs);
    pending.push({ input, abs, rel, dir });
  };

  const classifyLink = async (input: number, abs: string, rel: string) => {
    let target: string;
    try {
      target = await realpath(abs);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      result.excluded.push({ input, path: rel, reason: code === "ELOOP" ? "symlink-loop" : "broken-symlink" });
      return;
    }
    const inside = roots.some((r) => isInside(target, r));
    if (!inside) result.excluded.push({ input, path: rel, reason: "symlink-outside-inputs" });
    else result.excluded.push({ input, path: rel, reason: "symlinked-folder" });
  };

  for (const [index, input] of inputs.entries()) {
    if (!input.isDirectory) {
      addFile(index, input.real, basename(input.real), "");
      continue;
    }
    // Iterative walk: deep CD trees do not grow the stack.
    const stack: string[] = [""];
    while (stack.length > 0) {
      throwIfAborted(opts.signal);
      const relDir = stack.pop()!;
      const absDir = relDir === "" ? input.real : join(input.real, ...relDir.split("/"));
      let dir;
      try {
        dir = await opendir(absDir);
      } catch (err) {
        result.unreadable.push({ input: index, relPath: relDir || ".", code: (err as NodeJS.ErrnoException).code ?? "EIO" });
        continue;
      }
      try {
        for await (const d of dir) {
          const rel = relDir === "" ? d.name : `${relDir}/${d.name}`;
          const abs = join(absDir, d.name);
          if (d.isSymbolicLink()) await classifyLink(index, abs, rel);
          else if (d.isDirectory()) {
            if (isJunkDir(d.name)) result.excluded.push({ input: index, path: rel, reason: "os-junk" });
            else if (isExecutableDir(d.name)) result.excluded.push({ input: index, path: rel, reason: "executable" });
            else stack.push(rel);
          } else if (d.isFile()) addFile(index, abs, rel, relDir);
          else result.excluded.push({ input: index, path: rel, reason: "special-file" });
        }
      } catch (err) {
        result.unreadable.push({ input: index, relPath: relDir || ".", code: (err as NodeJS.ErrnoException).code ?? "EIO" });
      }
    }
  }

  // Classify: open each file (never following a link put there since the walk), stat it, read its head and, for a
  // DICOM file, its header (bounded concurrency).
  const total = pending.length;
  opts.emit?.({ type: "step", id: "scan", label: t("step.scan") });
  await forEachConcurrent(pending, opts.concurrency ?? 16, async (p) => {
    let fh: FileHandle | undefined;
    try {
      fh = await open(p.abs, fsc.O_RDONLY | (fsc.O_NOFOLLOW ?? 0));
      const st = await fh.stat();
      const head = await readHead(fh, st.size);
      const c = classifyFile(p.rel, head.subarray(0, HEAD_BYTES));
      if (c.action === "include") {
        if (DICOM_KINDS.has(c.kind)) {
          const header = await readDicomHeaderFromOpen(fh, p.abs, { head, size: st.size }, { tolerateTruncation: true }).then((h) => ({ header: h }), (error: unknown) => ({ error }));
          result.dicomHeaders!.set(p.abs, header);
        }
        result.files.push({ absPath: p.abs, input: p.input, relPath: p.rel, size: st.size, mtime: st.mtime, kind: c.kind, dir: p.dir });
      } else if (c.action === "exclude") {
        result.excluded.push({ input: p.input, path: p.rel, reason: c.reason, size: st.size });
      } else {
        result.archives.push({ input: p.input, relPath: p.rel, absPath: p.abs, size: st.size });
      }
    } catch (err) {
      result.unreadable.push({ input: p.input, relPath: p.rel, code: (err as NodeJS.ErrnoException).code ?? "EIO" });
    } finally {
      await fh?.close().catch(() => {});
    }
  }, { signal: opts.signal, checkAbort: throwIfAborted, onDone: (done) => opts.emit?.({ type: "progress", id: "scan", done, total, unit: "files" }) });
  opts.emit?.({ type: "step-done", id: "scan", label: t("step.scan.done", { n: total }) });
  const byPath = (a: { input: number; relPath?: string; path?: string }, b: { input: number; relPath?: string; path?: string }) =>
    a.input - b.input || ((a.relPath ?? a.path)! < (b.relPath ?? b.path)! ? -1 : 1);
  result.files.sort(byPath);
  result.excluded.sort(byPath);
  result.unreadable.sort(byPath);
  return result;
}
