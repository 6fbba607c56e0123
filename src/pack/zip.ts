import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { open, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import { Transform, type TransformCallback } from "node:stream";
import { deflateRawSync } from "node:zlib";
import { ZipArchive } from "archiver";
import { describeIoError, InputError, InterruptedError, ScanbridgeError, SizeLimitError } from "../errors.js";
import type { Emit } from "../ui/events.js";
import { formatBytes } from "../ui/format.js";
import { trackTemp, untrackTemp } from "../util/tempfiles.js";
import { MANIFEST_NAME, type ManifestFile } from "./manifest.js";
import type { PackagePlan } from "./plan.js";
import "./fast-crc.js";

/** Options for writeZip. */
export interface WriteZipOptions {
  outDir: string;
  /** Final file name, used for the temporary name. */
  fileName: string;
  level: number;
  store: boolean;
  maxSize?: number;
  signal?: AbortSignal;
  emit?: Emit;
  /** Builds manifest.json from the hashed file list (called once every file is in the zip). */
  buildManifest: (files: ManifestFile[]) => Buffer;
}

/** A zip written under a temporary name, ready to be moved into place. */
export interface WrittenZip {
  tmpPath: string;
  size: number;
  sha256: string;
  files: ManifestFile[];
  manifest: Buffer;
  /** Entries stored rather than deflated because they do not shrink. */
  storedEntries: number;
}

/** Files larger than this are sampled to decide between deflate and store. */
const SAMPLE_BYTES = 64 * 1024;
/** Output writes are gathered up to this size. */
const COALESCE_BYTES = 256 * 1024;
/** Files up to this size are read in one call instead of streamed (no stream set-up per small file). */
const SMALL_FILE_BYTES = 1 << 20;

/** Hashes and counts the bytes of one source file on their way into the archiver. */
class HashingTap extends Transform {
  readonly hash = createHash("sha256");
  bytes = 0;
  constructor(private readonly onBytes: (n: number) => void) {
    super({ highWaterMark: 1 << 20 });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes(chunk.length);
    cb(null, chunk);
  }
}

/**
 * Counts and hashes the zip's own bytes, and coalesces archiver's many tiny header writes into large chunks so
 * the file is written with few system calls. Fails as soon as the package grows past the size limit.
 */
class OutputTap extends Transform {
  readonly hash = createHash("sha256");
  bytes = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  constructor(private readonly maxSize: number | undefined) {
    super({ highWaterMark: 1 << 20 });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.maxSize !== undefined && this.bytes > this.maxSize) {
      cb(new SizeLimitError("MAX_SIZE_EXCEEDED", `The package would be larger than the limit of ${formatBytes(this.maxSize)}`, {
        hint: "Split the scans into several packages, raise --max-size, or ask the office for another way to send them.",
        details: { maxSize: this.maxSize },
      }));
      return;
    }
    this.hash.update(chunk);
    if (chunk.length >= COALESCE_BYTES) {
      // Large chunks go straight through (no copy); small header pieces queued before them go first.
      if (this.pendingBytes > 0) this.push(this.drainPending());
      cb(null, chunk);
      return;
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= COALESCE_BYTES) this.push(this.drainPending());
    cb();
  }
  override _flush(cb: TransformCallback): void {
    if (this.pendingBytes > 0) this.push(this.drainPending());
    cb();
  }
  private drainPending(): Buffer {
    const out = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    return out;
  }
}

/** Whether deflating a sample of the data gains less than 5%: already-compressed content is stored. */
function sampleIncompressible(sample: Buffer): boolean {
  if (sample.length < 4096) return false;
  return deflateRawSync(sample, { level: 1 }).length > sample.length * 0.95;
}

async function shouldStore(path: string, size: number): Promise<boolean> {
  if (size < 4096) return false;
  const fh = await open(path, "r");
  try {
    const buf = Buffer.allocUnsafe(Math.min(SAMPLE_BYTES, size));
    const { bytesRead } = await fh.read(buf, 0, buf.length, Math.max(0, Math.min(size - buf.length, Math.floor(size / 2))));
    return sampleIncompressible(buf.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

/** Sample from the middle of an in-memory file (headers at the start compress well even in JPEG DICOM). */
function middleSample(data: Buffer): Buffer {
  const start = Math.max(0, Math.min(data.length - SAMPLE_BYTES, Math.floor(data.length / 2)));
  return data.subarray(start, start + SAMPLE_BYTES);
}

/**
 * Stream every planned file into `<outDir>/.<fileName>.<random>.tmp` as a zip with one root folder, hashing each
 * file on the way, then append manifest.json. Memory stays flat: files up to 1 MB are read whole (the next one
 * ahead), larger ones stream in 1 MB chunks. On any failure or
 * interrupt the temporary file is removed.
 */
export async function writeZip(plan: PackagePlan, opts: WriteZipOptions): Promise<WrittenZip> {
  const tmpPath = join(opts.outDir, `.${opts.fileName}.${randomBytes(4).toString("hex")}.tmp`);
  const totalBytes = plan.entries.reduce((s, e) => s + e.source.size, 0);
  // Zip64 from the start when it will be needed, so local headers carry Zip64 sizes (wider tool support).
  const forceZip64 = totalBytes >= 0xfffff000 || plan.entries.length + 1 >= 0xffff;
  const archive = new ZipArchive({ zlib: { level: opts.level }, store: opts.store, forceZip64, highWaterMark: 1 << 20 });
  const tap = new OutputTap(opts.maxSize);
  let out;
  try {
    out = createWriteStream(tmpPath, { flags: "wx", mode: 0o600, flush: true, highWaterMark: 1 << 20 });
    trackTemp(tmpPath);
  } catch (err) {
    throw describeIoError(err, "the package");
  }
  let failure: { error: unknown } | undefined;
  let rejectRun: (e: unknown) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    rejectRun = reject;
  });
  failed.catch(() => {});
  const fail = (err: unknown) => {
    failure ??= { error: err };
    rejectRun(failure.error);
  };
  archive.on("warning", fail); // archiver's warnings (e.g. a vanished file) are errors for a medical package
  archive.on("error", fail);
  tap.on("error", fail);
  out.on("error", (e) => fail(describeIoError(e, "the package")));
  const closed = new Promise<void>((resolve) => out.on("close", () => resolve()));
  archive.pipe(tap).pipe(out);
  const onAbort = () => fail(new InterruptedError());
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  if (opts.signal?.aborted) onAbort();

  const files: ManifestFile[] = [];
  let storedEntries = 0;
  let doneBytes = 0;
  opts.emit?.({ type: "step", id: "zip", label: "Zipping" });
  try {
    // Small files are read ahead: the next one is read while the current one is zipped.
    const readSmall = (i: number): Promise<Buffer> | undefined => {
      const e = plan.entries[i];
      if (!e || e.source.size > SMALL_FILE_BYTES) return undefined;
      const p = readFile(e.source.absPath);
      p.catch(() => {}); // handled when awaited
      return p;
    };
    let ahead = readSmall(0);
    for (const [index, entry] of plan.entries.entries()) {
      if (failure !== undefined) throw failure.error;
      const current = ahead;
      ahead = readSmall(index + 1);
      const name = `${plan.root}/${entry.path}`;
      const readFailed = (e: unknown) => new InputError("INPUT_READ_FAILED", `A file could not be read while zipping (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, {
        hint: "Check the disc or stick for read errors, then try again.",
        privateLines: [entry.source.absPath],
      });
      let bytes: number;
      let digest: string;
      const appended = new Promise<void>((resolve) => archive.once("entry", () => resolve()));
      if (current) {
        let data: Buffer;
        try {
          data = await current;
        } catch (e) {
          throw readFailed(e);
        }
        const store = opts.store || (entry.store ?? sampleIncompressible(middleSample(data)));
        if (store && !opts.store) storedEntries++;
        bytes = data.length;
        digest = createHash("sha256").update(data).digest("hex");
        archive.append(data, { name, date: entry.source.mtime, mode: 0o644, store } as never);
        await Promise.race([appended, failed]);
        doneBytes += bytes;
        opts.emit?.({ type: "progress", id: "zip", done: doneBytes, total: totalBytes, unit: "bytes" });
      } else {
        const store = opts.store || (entry.store ?? (await shouldStore(entry.source.absPath, entry.source.size)));
        if (store && !opts.store) storedEntries++;
        const src = createReadStream(entry.source.absPath, { highWaterMark: 1 << 20 });
        const hashTap = new HashingTap((n) => {
          doneBytes += n;
          opts.emit?.({ type: "progress", id: "zip", done: doneBytes, total: totalBytes, unit: "bytes" });
        });
        src.on("error", (e) => fail(readFailed(e)));
        archive.append(src.pipe(hashTap), { name, date: entry.source.mtime, mode: 0o644, store } as never);
        await Promise.race([appended, failed]);
        bytes = hashTap.bytes;
        digest = hashTap.hash.digest("hex");
      }
      if (bytes !== entry.source.size) {
        throw new InputError("INPUT_CHANGED", "A file changed size while it was being zipped (is something still copying into the folder?)", {
          hint: "Wait until copying has finished, then run pack again.",
          privateLines: [entry.source.absPath],
        });
      }
      files.push({ path: entry.path, size: bytes, sha256: digest, kind: entry.kind });
    }
    const manifest = opts.buildManifest(files);
    const appended = new Promise<void>((resolve) => archive.once("entry", () => resolve()));
    archive.append(manifest, { name: `${plan.root}/${MANIFEST_NAME}`, date: new Date(), mode: 0o644 } as never);
    await Promise.race([appended, failed]);
    await Promise.race([archive.finalize(), failed]);
    await Promise.race([closed, failed]);
    if (failure !== undefined) throw failure.error;
    opts.emit?.({ type: "step-done", id: "zip", label: `Zipped ${files.length} files` });
    return { tmpPath, size: tap.bytes, sha256: tap.hash.digest("hex"), files, manifest, storedEntries };
  } catch (err) {
    opts.emit?.({ type: "step-done", id: "zip", ok: false, label: "Zipping stopped" });
    archive.abort();
    out.destroy();
    await closed.catch(() => {});
    await unlink(tmpPath).catch(() => {});
    untrackTemp(tmpPath);
    throw err instanceof ScanbridgeError ? err : describeIoError(err, "the package");
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
  }
}
