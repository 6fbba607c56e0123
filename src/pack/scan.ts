import { closeSync, constants as fsc, fstatSync, openSync, opendirSync, readSync, type Dir, type Dirent } from "node:fs";
import { open, opendir, realpath, stat } from "node:fs/promises";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { InputError, throwIfAborted } from "../errors.js";
import { msg } from "../i18n/index.js";
import type { Emit } from "../ui/events.js";
import { classifyFile, HEAD_BYTES, isExecutableDir, isJunkDir } from "./classify.js";
import type { ExcludedFile, FileKind } from "./manifest.js";
import { forEachConcurrent } from "../util/concurrency.js";
import { readFully } from "../util/read-fully.js";
import { FIRST_CHUNK, readDicomHeaderFromOpen, type PositionalReader } from "../dicom/read.js";
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
  /** Absolute path to read from (the scan's own files make it when asked for: see FoundFile). */
  readonly absPath: string;
  /** Index into ScanResult.inputs. */
  input: number;
  /** Path relative to its input folder, forward slashes ("" parts never); for a file input, its base name. */
  relPath: string;
  size: number;
  /** Modification time, in milliseconds since the epoch (a number: a Date object per file costs ~100 bytes). */
  mtimeMs: number;
  kind: FileKind;
  /** Folder (relative, forward slashes) this file sits in, for viewer-software triage. */
  dir: string;
  /** A DICOM file's study and series, filled in by the inspection (pack's manifest lists them with the file). */
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
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
   * it could not be read (a HeaderUnread); pack's inspection uses these instead of opening the files again.
   */
  dicomHeaders?: Map<ScannedFile, DicomHeader | HeaderUnread>;
}

/** Why the scan could not read a DICOM-looking file's header (the error the inspection reports for it). */
export class HeaderUnread {
  constructor(readonly error: unknown) {}
}

/**
 * A file the scan found. Its absolute path is made when asked for, from the input's real path and the relative
 * path, rather than kept: 80-odd bytes per file for the whole pack (a large study has 50,000 files) for a string
 * needed only to open the file (twice: scan and zip) and to name it in the sender's own error messages. Made by
 * inFolder, as the walk makes a link's path, so the two are the same text.
 */
class FoundFile implements ScannedFile {
  size = 0;
  mtimeMs = 0;
  kind: FileKind = "other";
  studyInstanceUid: string | undefined = undefined;
  seriesInstanceUid: string | undefined = undefined;
  /** `base`: the folder the relative path starts in (the input's real path; a file input's parent folder). */
  constructor(private readonly base: string, readonly input: number, readonly relPath: string, readonly dir: string) {}
  get absPath(): string {
    return inFolder(this.base, sep === "/" ? this.relPath : this.relPath.split("/").join(sep));
  }
}

/** Options for scanInputs. */
export interface ScanOptions {
  cwd: string;
  signal?: AbortSignal;
  emit?: Emit;
  /** Files read at once for classification once the scan goes through the thread pool. */
  concurrency?: number;
  /** How to reach the files: "auto" (direct, pooled from the first slow call; the default), or one of them (tests). */
  io?: "auto" | "direct" | "pooled";
  /** Called once, as soon as the files to be packaged add up to `atLeast` bytes (pack starts its reading thread). */
  onInputBytes?: { atLeast: number; then: () => void };
}

/** A file opened for classification: its size and time, positional reads, close. */
interface OpenedFile extends PositionalReader {
  size: number;
  mtimeMs: number;
  regular: boolean;
  close(): Promise<void>;
}

/**
 * Memory per file (a large study has 50,000 of them, all kept until the manifest is written): a path made as
 * `a + b` is a rope, whose 32-byte cell stays beside the flat copy made when the path is first used; joined, it is
 * flat from the start.
 */
const flat = (...parts: string[]): string => parts.join("");

/**
 * `rest` (native separators) inside the normalised absolute folder `dir`: join() would only cost time (50,000
 * files). The one way the scan makes a file's path, for the walk's links and for FoundFile.absPath alike.
 */
const inFolder = (dir: string, rest: string): string => (dir.endsWith(sep) ? flat(dir, rest) : flat(dir, sep, rest));

/** A size as a small integer where it fits (fstat's numbers are doubles, each kept in a 16-byte box per file). */
const smallInt = (n: number): number => (n >= 0 && n <= 0x3fffffff ? n | 0 : n);

/** Open flags: never follow a link put there since the walk; never wait on a FIFO swapped in for a file. */
const OPEN_FLAGS = fsc.O_RDONLY | (fsc.O_NOFOLLOW ?? 0) | (fsc.O_NONBLOCK ?? 0);

/**
 * The two ways the scan reaches files. `direct`: one system call at a time on this thread, which is several times
 * faster where the files are cached or on a local disk (no thread-pool round trip per call). `pooled`: through
 * libuv's thread pool, several files at once, so a slow medium (an optical disc, a network share) keeps progress
 * and Ctrl-C live. The scan starts direct and turns pooled for good at the first slow call.
 */
const openDirect = async (abs: string): Promise<OpenedFile> => {
  const fd = openSync(abs, OPEN_FLAGS);
  try {
    const st = fstatSync(fd);
    return {
      size: st.size, mtimeMs: st.mtimeMs, regular: st.isFile(),
      read: async (buffer, offset, length, position) => ({ bytesRead: readSync(fd, buffer, offset, length, position) }),
      close: async () => closeSync(fd),
    };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
};

const openPooled = async (abs: string): Promise<OpenedFile> => {
  const fh = await open(abs, OPEN_FLAGS);
  try {
    const st = await fh.stat();
    return {
      size: st.size, mtimeMs: st.mtimeMs, regular: st.isFile(),
      read: (buffer, offset, length, position) => fh.read(buffer, offset, length, position),
      close: () => fh.close(),
    };
  } catch (err) {
    await fh.close().catch(() => {});
    throw err;
  }
};

/** A direct call slower than this means a slow medium: the rest of the scan goes through the pool. */
const SLOW_CALL_MS = 25;
/** Direct work runs at most this long before the event loop gets a turn (progress, signals). */
const DIRECT_SLICE_MS = 20;

/** Direct while the medium is fast; gives the event loop a turn after every slice of direct work. */
class Pace {
  direct: boolean;
  private sliceStart = performance.now();
  constructor(private readonly mode: "auto" | "direct" | "pooled") {
    this.direct = mode !== "pooled";
  }
  /** After a direct call begun at `since`: turn pooled if it was slow (auto only), yield once the slice is used. */
  async after(since: number): Promise<void> {
    const now = performance.now();
    if (this.mode === "auto" && now - since > SLOW_CALL_MS) this.direct = false;
    if (now - this.sliceStart > DIRECT_SLICE_MS) {
      await yieldToLoop();
      this.sliceStart = performance.now();
    }
  }
}

/** A folder's entries, read directly or through the pool (each direct call timed on its own: a big folder is not slow). */
async function* folderEntries(absDir: string, pace: Pace): AsyncGenerator<Dirent> {
  const direct = pace.direct;
  const opened = performance.now();
  const dir: Dir = direct ? opendirSync(absDir) : await opendir(absDir);
  if (direct) await pace.after(opened);
  try {
    for (;;) {
      const since = performance.now();
      const d = direct ? dir.readSync() : await dir.read();
      if (direct) await pace.after(since);
      if (!d) break;
      yield d;
    }
  } finally {
    if (direct) dir.closeSync();
    else await dir.close();
  }
}

/**
 * The first FIRST_CHUNK bytes of an open file (enough to classify it and, usually, for its whole DICOM header), in
 * `into` when given (files read one after another share one buffer: nothing keeps a head once its file is done).
 */
async function readHead(f: OpenedFile, into?: Buffer): Promise<Buffer> {
  return readFully(f, into ? into.subarray(0, Math.min(FIRST_CHUNK, f.size)) : Buffer.allocUnsafe(Math.min(FIRST_CHUNK, f.size)), 0);
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

/** Header fields that differ from file to file of a series; all the others nearly always repeat. */
const PER_FILE_FIELDS = new Set(["sopInstanceUid", "instanceNumber", "bytesRead", "truncated"]);

/**
 * The headers are held from the scan until the inspection (10,000 files: 12.5 MB of heap; 50,000 files, a large
 * study, more than the rest of the pack), and nearly all their values repeat from file to file: the same patient,
 * study, series, syntax. So a header is kept as two parts: its few per-file fields (instance UID and number, bytes
 * read, truncation) as the object's own properties, and every other field in a frozen object shared by all the
 * files with the same values, as the object's prototype. Reading a field (`h.patientId`, `"modality" in h`,
 * `for...in`) sees both parts; `Object.keys`, spreading and JSON see the own part only, which nothing here does with
 * a header. Per DICOM file this is one small object (about 60 bytes) instead of a header of 10-20 properties (about
 * 170 bytes); each distinct shared part costs its own copy of its values and a few map entries.
 */
function headerSharer(): (h: DicomHeader) => DicomHeader {
  /** Names and the character set list, by field and value: equal ones must be the same object to find their part. */
  const objects = new Map<string, object>();
  const sharedObject = (key: string, v: object): object => {
    const had = objects.get(key);
    if (had) return had;
    objects.set(key, Object.freeze(v)); // shared: nobody may change one file's copy
    return v;
  };
  /**
   * The shared parts, found by walking field by field: each step by the field's name, then by its value (a map
   * compares strings by content; objects are the kept ones above). Two headers reach the same part only if they have
   * the same fields, in the same order, with the same values; a few map lookups per file. The part holds the first
   * file's values; the other files' equal copies are dropped.
   */
  interface Step { next: Map<string, Map<unknown, Step>>; part?: object }
  const root: Step = { next: new Map() };
  return (h) => {
    const part: Record<string, unknown> = {};
    const own: Record<string, unknown> = {};
    let at = root;
    for (const [k, v] of Object.entries(h) as Array<[string, unknown]>) {
      if (PER_FILE_FIELDS.has(k)) {
        own[k] = v;
        continue;
      }
      const value = typeof v === "object" && v !== null ? sharedObject(`${k}${JSON.stringify(v)}`, v) : v;
      part[k] = value;
      let byValue = at.next.get(k);
      if (!byValue) at.next.set(k, (byValue = new Map<unknown, Step>()));
      let step = byValue.get(value);
      if (!step) byValue.set(value, (step = { next: new Map() }));
      at = step;
    }
    at.part ??= Object.freeze(part);
    return Object.assign(Object.create(at.part) as Record<string, unknown>, own) as unknown as DicomHeader;
  };
}

/**
 * Walk the inputs recursively and classify every file. Symbolic links are never followed: a link to something
 * inside the inputs is already packaged at its real place, a link out of the inputs is reported. Never writes.
 */
export async function scanInputs(given: string[], opts: ScanOptions): Promise<ScanResult> {
  const inputs = await resolveInputs(given, opts.cwd);
  const dicomHeaders = new Map<ScannedFile, DicomHeader | HeaderUnread>();
  const result: ScanResult = { inputs, files: [], excluded: [], archives: [], unreadable: [], dicomHeaders };
  const shared = headerSharer();
  // The files found by the walk, each already in the shape it is kept in: classifying one fills in its size, time
  // and kind (one object per file, not a second one; 50,000 files are a large study, not an attack).
  const pending: FoundFile[] = [];
  const roots = inputs.map((i) => i.real);
  // Only inputs that overlap (a folder and a file or folder inside it) can name a file twice: one walk never does.
  const seenFiles = inputs.length > 1 ? new Set<string>() : undefined;
  const pace = new Pace(opts.io ?? "auto");

  const addFile = (input: number, base: string, rel: string, dir: string) => {
    const found = new FoundFile(base, input, rel, dir);
    if (seenFiles) {
      const abs = found.absPath;
      if (seenFiles.has(abs)) return; // the same file named twice (overlapping inputs)
      seenFiles.add(abs);
    }
    pending.push(found);
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
      addFile(index, dirname(input.real), basename(input.real), "");
      continue;
    }
    // Iterative walk: deep CD trees do not grow the stack.
    const stack: string[] = [""];
    while (stack.length > 0) {
      throwIfAborted(opts.signal);
      const relDir = stack.pop()!;
      const absDir = relDir === "" ? input.real : join(input.real, ...relDir.split("/"));
      try {
        for await (const d of folderEntries(absDir, pace)) {
          const rel = relDir === "" ? d.name : flat(relDir, "/", d.name);
          // A name holds no separator. (A file's absolute path is made by its FoundFile when needed.)
          if (d.isSymbolicLink()) await classifyLink(index, inFolder(absDir, d.name), rel);
          else if (d.isDirectory()) {
            if (isJunkDir(d.name)) result.excluded.push({ input: index, path: rel, reason: "os-junk" });
            else if (isExecutableDir(d.name)) result.excluded.push({ input: index, path: rel, reason: "executable" });
            else stack.push(rel);
          } else if (d.isFile()) addFile(index, input.real, rel, relDir);
          else result.excluded.push({ input: index, path: rel, reason: "special-file" });
        }
      } catch (err) {
        result.unreadable.push({ input: index, relPath: relDir || ".", code: (err as NodeJS.ErrnoException).code ?? "EIO" });
      }
    }
  }

  seenFiles?.clear(); // only the walk needs it

  // Classify: open each file (never following a link put there since the walk), stat it, read its head and, for a
  // DICOM file, its header. Directly, one file after another, while the medium is fast; then through the pool.
  const total = pending.length;
  opts.emit?.({ type: "step", id: "scan", label: msg("step.scan") });
  const progress = (done: number) => opts.emit?.({ type: "progress", id: "scan", done, total, unit: "files" });
  let includedBytes = 0;
  let bytesHook = opts.onInputBytes;
  const classify = async (p: FoundFile, openFile: (abs: string) => Promise<OpenedFile>, scratch?: Buffer) => {
    let f: OpenedFile | undefined;
    const absPath = p.absPath;
    try {
      f = await openFile(absPath);
      if (!f.regular) {
        result.excluded.push({ input: p.input, path: p.relPath, reason: "special-file" }); // swapped in since the walk
        return;
      }
      const head = await readHead(f, scratch);
      const c = classifyFile(p.relPath, head.subarray(0, HEAD_BYTES));
      if (c.action === "include") {
        if (DICOM_KINDS.has(c.kind)) {
          const header = await readDicomHeaderFromOpen(f, absPath, { head, size: f.size }, { tolerateTruncation: true }).then(shared, (error: unknown) => new HeaderUnread(error));
          dicomHeaders.set(p, header);
        }
        p.size = smallInt(f.size);
        p.mtimeMs = f.mtimeMs;
        p.kind = c.kind;
        result.files.push(p);
        includedBytes += f.size;
        if (bytesHook && includedBytes >= bytesHook.atLeast) {
          bytesHook.then();
          bytesHook = undefined;
        }
      } else if (c.action === "exclude") {
        result.excluded.push({ input: p.input, path: p.relPath, reason: c.reason, size: f.size });
      } else {
        result.archives.push({ input: p.input, relPath: p.relPath, absPath, size: f.size });
      }
    } catch (err) {
      result.unreadable.push({ input: p.input, relPath: p.relPath, code: (err as NodeJS.ErrnoException).code ?? "EIO" });
    } finally {
      await f?.close().catch(() => {});
    }
  };
  let next = 0;
  const scratch = Buffer.allocUnsafe(FIRST_CHUNK);
  while (next < pending.length && pace.direct) {
    throwIfAborted(opts.signal);
    const since = performance.now();
    await classify(pending[next++]!, openDirect, scratch);
    progress(next);
    await pace.after(since);
  }
  const direct = next;
  await forEachConcurrent(pending.slice(direct), opts.concurrency ?? 16, (p) => classify(p, openPooled), {
    signal: opts.signal, checkAbort: throwIfAborted, onDone: (done) => progress(direct + done),
  });
  opts.emit?.({ type: "step-done", id: "scan", label: msg("step.scan.done", { n: total }) });
  const byPath = (a: { input: number; relPath?: string; path?: string }, b: { input: number; relPath?: string; path?: string }) =>
    a.input - b.input || ((a.relPath ?? a.path)! < (b.relPath ?? b.path)! ? -1 : 1);
  result.files.sort(byPath);
  result.excluded.sort(byPath);
  result.unreadable.sort(byPath);
  return result;
}
