import { createHash, type Hash } from "node:crypto";
import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { SizeLimitError } from "../errors.js";
import { msg } from "../i18n/index.js";
import { formatBytes } from "../ui/format.js";

/**
 * How the zip's bytes reach the disk.
 * - "direct" (Linux, when the file system accepts it): with O_DIRECT, from an aligned staging buffer, so the
 *   kernel moves the bytes to the device without copying them into the page cache. A buffered write costs a copy
 *   into freshly allocated cache pages now and the write-back later (the final fsync); on a virtual machine whose
 *   host takes back free guest memory, those fresh pages also cost a fault in the host each. Measured here on
 *   200 MB: direct 1.0-1.3 GB/s at 13-24 ms of CPU; buffered 3.6-3.9 GB/s at 65 ms when the pages are at hand,
 *   230 MB/s at 870 ms of CPU when they are not, plus 80-110 ms of fsync either way. A package is written once and
 *   then read once by the upload, so leaving it out of the cache costs little and spares what else is cached.
 * - "buffered": plain writes through the page cache (other systems, or where O_DIRECT is refused).
 * A direct write that the kernel refuses (EINVAL: a file system or device with other alignment rules) turns the
 * rest of the file buffered, from the same position: nothing is lost or written twice.
 */
export type OutputMode = "direct" | "buffered";

/** O_DIRECT alignment of file offsets, lengths and buffer addresses: 4 KiB serves 512-byte and 4 KiB devices. */
const DIRECT_ALIGN = 4096;
/** How a kernel or file system says no to a direct write (the bytes were not written). */
const REFUSALS = new Set(["EINVAL", "EOPNOTSUPP", "ENOTSUP"]);
/** Each of the two staging buffers holds at most this much (4 MiB writes keep the device busy; 8 MiB was no faster). */
const MAX_STAGING = 4 << 20;
/** WebAssembly memory comes in pages of 64 KiB, at a page-aligned address (which O_DIRECT needs). */
const WASM_PAGE = 65536;

/** The one WebAssembly API used here (the project's type libraries leave WebAssembly out). */
const WasmMemory = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => { buffer: ArrayBuffer } } }).WebAssembly.Memory;

/** A zero-filled, page-aligned buffer of `bytes` (rounded up to 64 KiB), or undefined when none can be had. */
function alignedBuffer(bytes: number): Buffer | undefined {
  try {
    const pages = Math.ceil(bytes / WASM_PAGE);
    return Buffer.from(new WasmMemory({ initial: pages, maximum: pages }).buffer);
  } catch {
    return undefined; // e.g. address space limited (ulimit -v)
  }
}

/**
 * The same file opened a second time with O_DIRECT, and its staging buffer; undefined where that is not possible
 * (not Linux, a file system that refuses it). `misalign` (tests) shifts the staging buffer off its alignment, so
 * that the kernel refuses the first write and the fallback is exercised for real.
 */
async function openDirect(first: FileHandle, path: string, stagingBytes: number, misalign: boolean): Promise<{ fh: FileHandle; staging: Buffer } | undefined> {
  const flag = (constants as { O_DIRECT?: number }).O_DIRECT;
  if (process.platform !== "linux" || !flag) return undefined;
  const staging = alignedBuffer(stagingBytes + (misalign ? DIRECT_ALIGN : 0));
  if (!staging) return undefined;
  let fh: FileHandle | undefined;
  try {
    // Never through a link, and only if it is still the very file opened first (the same inode).
    fh = await open(path, constants.O_WRONLY | constants.O_NOFOLLOW | flag);
    const [a, b] = await Promise.all([first.stat({ bigint: true }), fh.stat({ bigint: true })]);
    if (a.dev !== b.dev || a.ino !== b.ino) throw new Error("not the same file");
    return { fh, staging: misalign ? staging.subarray(1, 1 + stagingBytes) : staging };
  } catch {
    await fh?.close().catch(() => {});
    return undefined;
  }
}

/** Options of a ZipOutput. */
export interface ZipOutputOptions {
  /** --max-size: appending past it throws MAX_SIZE_EXCEEDED. */
  maxSize?: number;
  /** Writes are gathered up to this many bytes. */
  coalesce: number;
  /** "auto" (default): direct where possible; "buffered": never; "misaligned": tests of the fallback. */
  direct?: "auto" | "buffered" | "misaligned";
}

/**
 * The zip file being written: ordered appends, counted, hashed (the package's SHA-256), gathered into large writes,
 * bounded by --max-size. One write is in flight while the writer prepares the next pieces.
 * Buffered, the appended buffers are written as they are (writev) and handed back once written. Direct, each is
 * copied into one of two aligned staging buffers right after it is hashed (while it is still in the CPU's cache)
 * and handed back at once; a full staging buffer is written while the other one fills.
 */
export class ZipOutput {
  readonly hash: Hash = createHash("sha256");
  /** Bytes appended so far (the offset of the next entry). */
  offset = 0;
  /** The one write in flight. */
  private writing: Promise<void> = Promise.resolve();
  /** Where the next write starts in the file. */
  private written = 0;
  // Buffered: what is gathered for the next write, and what to call once it is written.
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private releases: Array<() => void> = [];
  /** Direct: the file's second handle, opened with O_DIRECT (undefined once a refusal turned the rest buffered). */
  private directFh: FileHandle | undefined;
  /** Direct (also after a fallback): the staging buffer being filled (its first `filled` bytes), and the other. */
  private staging: Buffer | undefined;
  private spare: Buffer | undefined;
  private filled = 0;

  private constructor(private readonly fh: FileHandle, private readonly opts: ZipOutputOptions) {}

  /** An output over `fh` (opened for writing at `path`), direct where the system and file system allow it. */
  static async open(fh: FileHandle, path: string, opts: ZipOutputOptions): Promise<ZipOutput> {
    const out = new ZipOutput(fh, opts);
    if (opts.direct === "buffered") return out;
    const bytes = Math.ceil(Math.min(Math.max(opts.coalesce, DIRECT_ALIGN), MAX_STAGING) / DIRECT_ALIGN) * DIRECT_ALIGN;
    const direct = await openDirect(fh, path, 2 * bytes, opts.direct === "misaligned");
    if (direct) {
      out.directFh = direct.fh;
      out.staging = direct.staging.subarray(0, bytes);
      out.spare = direct.staging.subarray(bytes, 2 * bytes);
    }
    return out;
  }

  /** How the bytes are being written (direct until a refusal turned it buffered). */
  get mode(): OutputMode {
    return this.directFh ? "direct" : "buffered";
  }

  /**
   * Queue `buf` for writing; `release` runs once the output no longer needs it (written, or copied). Returns a
   * promise only when the output had to wait for a write.
   */
  append(buf: Buffer, release?: () => void): Promise<void> | undefined {
    if (buf.length > 0) {
      this.offset += buf.length;
      if (this.opts.maxSize !== undefined && this.offset > this.opts.maxSize) {
        if (release) this.releases.push(release);
        throw new SizeLimitError("MAX_SIZE_EXCEEDED", msg("pack.zipOverLimit", { limit: formatBytes(this.opts.maxSize) }), {
          hint: msg("pack.zipOverLimit.hint"),
          details: { maxSize: this.opts.maxSize },
        });
      }
      this.hash.update(buf);
    }
    if (this.staging) return this.copyIn(buf, release);
    if (release) this.releases.push(release);
    if (buf.length === 0) return undefined;
    this.pending.push(buf);
    this.pendingBytes += buf.length;
    if (this.pendingBytes >= this.opts.coalesce || this.pending.length >= 512) return this.flush();
    return undefined;
  }

  /** Buffered: start writing what is gathered once the previous write is done (waits for that one only). */
  async flush(): Promise<void> {
    if (this.staging) return; // direct: a staging buffer is written when full; appended buffers are back already
    await this.writing;
    if (this.pending.length === 0 && this.releases.length === 0) return;
    const bufs = this.pending;
    const releases = this.releases;
    const at = this.written;
    this.written += this.pendingBytes;
    this.pending = [];
    this.releases = [];
    this.pendingBytes = 0;
    this.writing = (async () => {
      await this.writeAll(bufs, at);
      for (const r of releases) r();
    })();
  }

  /** Write everything appended so far and wait for it (direct: but a last partial block, see finish). */
  async drain(): Promise<void> {
    if (this.staging) await this.swap();
    else await this.flush();
    await this.writing;
  }

  /** Write everything, including a direct output's last partial block (padded to a block, then the file cut). */
  async finish(): Promise<void> {
    await this.drain();
    const staging = this.staging;
    if (!staging || this.filled === 0) return;
    if (this.directFh) {
      const padded = Math.ceil(this.filled / DIRECT_ALIGN) * DIRECT_ALIGN;
      staging.fill(0, this.filled, padded);
      await this.writeAll([staging.subarray(0, padded)], this.written);
      await this.fh.truncate(this.offset);
    } else {
      await this.writeAll([staging.subarray(0, this.filled)], this.written);
    }
    this.written += this.filled;
    this.filled = 0;
  }

  /** Close the second (direct) handle; the caller closes its own. */
  async close(): Promise<void> {
    const d = this.directFh;
    this.directFh = undefined;
    await d?.close().catch(() => {});
  }

  /** Direct: copy `buf` into the staging buffers (writing each one that fills up), then release it. */
  private copyIn(buf: Buffer, release?: () => void): Promise<void> | undefined {
    let from = buf.copy(this.staging!, this.filled);
    this.filled += from;
    if (from === buf.length && this.filled < this.staging!.length) {
      release?.();
      return undefined;
    }
    return (async () => {
      for (;;) {
        if (this.filled === this.staging!.length) await this.swap();
        if (from === buf.length) break;
        const n = buf.copy(this.staging!, this.filled, from);
        from += n;
        this.filled += n;
      }
      release?.();
    })();
  }

  /**
   * Direct: once the write in flight is done, start writing the whole blocks of the staging buffer (everything
   * once fallen back to buffered) and go on filling the other one, starting with the bytes left over.
   */
  private async swap(): Promise<void> {
    await this.writing;
    const full = this.staging!;
    const length = this.directFh ? Math.floor(this.filled / DIRECT_ALIGN) * DIRECT_ALIGN : this.filled;
    if (length === 0) return;
    const next = this.spare!;
    full.copy(next, 0, length, this.filled);
    this.filled -= length;
    this.staging = next;
    this.spare = full;
    const at = this.written;
    this.written += length;
    this.writing = this.writeAll([full.subarray(0, length)], at);
  }

  /**
   * Write the buffers at `position`, all of them (short writes go on where they stopped). A direct write the
   * kernel refuses (EINVAL, EOPNOTSUPP) is done again buffered, and so is the rest of the file.
   */
  private async writeAll(bufs: Buffer[], position: number): Promise<void> {
    let at = position;
    while (bufs.length > 0) {
      const direct = this.directFh;
      let written: number;
      try {
        written = direct ? (await direct.write(bufs[0]!, 0, bufs[0]!.length, at)).bytesWritten : (await this.fh.writev(bufs, at)).bytesWritten;
      } catch (err) {
        if (!direct || !REFUSALS.has((err as NodeJS.ErrnoException).code ?? "")) throw err;
        // Refused: this file system or device wants other alignment. The rest goes through the page cache.
        this.directFh = undefined;
        await direct.close().catch(() => {});
        continue;
      }
      at += written;
      let left = written;
      while (bufs.length > 0 && left >= bufs[0]!.length) left -= bufs.shift()!.length;
      if (left > 0) bufs[0] = bufs[0]!.subarray(left);
    }
  }
}
