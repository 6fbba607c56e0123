import { createHash, type Hash } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import { InterruptedError } from "../errors.js";

/**
 * The project's one whole-file SHA-256 and its one `sha256sum`-line parser/formatter. Everything that hashes a
 * file on disk (pack's reuse check, upload, verify, settle, watch) and everything that reads or writes a
 * `<Name>.zip.sha256` marker goes through here.
 */

/** A parsed `sha256sum` line: `<hex>  <file name>` (or `<hex> *<file name>`, binary mode). */
export interface Sha256Line {
  /** Lower-case hex. */
  sha256: string;
  fileName: string;
}

/** Parse the first line of `sha256sum` output; undefined when it is not one. */
export function parseSha256Line(text: string): Sha256Line | undefined {
  const line = text.split("\n")[0]!.replace(/\r$/, "");
  const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
  if (!m) return undefined;
  return { sha256: m[1]!.toLowerCase(), fileName: m[2]! };
}

/**
 * A SHA-256 as this project writes it: 64 lower-case hex digits (what `digest("hex")` gives). Values from others
 * (a sidecar, a receipt, a hand-made manifest) are read case-insensitively where they are parsed, not with this.
 */
export function isSha256Hex(value: unknown): value is string {
  return typeof value === "string" && /^[0-9a-f]{64}$/.test(value);
}

/** One line exactly as `sha256sum` writes it (text mode, two spaces). */
export function formatSha256Line(sha256: string, fileName: string): string {
  return `${sha256}  ${fileName}\n`;
}

/** Options of hashFileRange. */
export interface HashRangeOptions {
  /** First byte (default 0). */
  start?: number;
  /** One past the last byte (default: end of file). */
  end?: number;
  /** Continue this hash instead of starting a new one (e.g. a prefix already hashed). */
  into?: Hash;
  onBytes?: (n: number) => void;
  /** Each piece just hashed. Its buffer is reused for a later read once this returns: copy what you keep. */
  onData?: (piece: Buffer) => void;
  signal?: AbortSignal;
}

/** Bytes per read. */
const READ_BYTES = 1 << 20;

/**
 * SHA-256 state after feeding it [start, end) of a file. `file` is a path, or a file already open: it is read by
 * position (other readers of the same descriptor are not disturbed) and left open, also after an abort or an error.
 * Two buffers of up to 1 MiB (no larger than the range): the next read is in flight while the last one is hashed,
 * and the second buffer is only made when there is more to read. The signal is checked between reads.
 */
export async function hashFileRange(file: string | FileHandle, opts: HashRangeOptions = {}): Promise<Hash> {
  const h = opts.into ?? createHash("sha256");
  const start = opts.start ?? 0;
  const end = opts.end ?? Infinity;
  if (end <= start) return h;
  if (opts.signal?.aborted) throw new InterruptedError();
  const fh = typeof file === "string" ? await open(file, "r") : file;
  let pos = start;
  let k = 0;
  let pending: Promise<number> | undefined;
  try {
    // Where the data is expected to end: the range's end, or (to its end) the file's size now. Buffers are no
    // larger than that: hashing many small files (an unpacked archive, an intake) must not allocate 2 MiB each.
    const until = Number.isFinite(end) ? end : (await fh.stat()).size;
    const bytes = Math.max(1, Math.min(READ_BYTES, until - start));
    const buffers: Buffer[] = [Buffer.allocUnsafe(bytes)];
    const read = (b: number, at: number): Promise<number> =>
      at >= end ? Promise.resolve(0) : fh.read((buffers[b] ??= Buffer.allocUnsafe(bytes)), 0, Math.min(bytes, end - at), at).then((r) => r.bytesRead);
    pending = read(k, pos);
    for (;;) {
      const n = await pending!; // set on every turn: the read ahead, or the read that finds the end
      pending = undefined;
      if (n === 0) break;
      pos += n;
      if (opts.signal?.aborted) throw new InterruptedError();
      // Read ahead into the other buffer while this piece is hashed, while data is expected; at the expected end,
      // the read that finds the end (or bytes a growing file gained) goes into this buffer once it is hashed.
      const ahead = pos < until;
      if (ahead) pending = read(1 - k, pos);
      const piece = buffers[k]!.subarray(0, n);
      h.update(piece);
      opts.onData?.(piece);
      opts.onBytes?.(n);
      if (ahead) k = 1 - k;
      else pending = read(k, pos);
    }
  } finally {
    // A read still in flight finishes before its file is closed (or handed back).
    await pending?.catch(() => {});
    if (typeof file === "string") await fh.close();
  }
  return h;
}

/** SHA-256 (lower-case hex) of a whole file (a path, or a file already open), streaming. */
export async function hashFile(file: string | FileHandle, signal?: AbortSignal): Promise<string> {
  return (await hashFileRange(file, { signal })).digest("hex");
}
