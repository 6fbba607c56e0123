import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
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
  signal?: AbortSignal;
}

/** SHA-256 state after feeding it [start, end) of a file, streaming in 1 MiB reads. */
export async function hashFileRange(path: string, opts: HashRangeOptions = {}): Promise<Hash> {
  const h = opts.into ?? createHash("sha256");
  const start = opts.start ?? 0;
  if (opts.end !== undefined && opts.end <= start) return h;
  const rs = createReadStream(path, { start, ...(opts.end !== undefined ? { end: opts.end - 1 } : {}), highWaterMark: 1 << 20, signal: opts.signal });
  try {
    for await (const chunk of rs as AsyncIterable<Buffer>) {
      h.update(chunk);
      opts.onBytes?.(chunk.length);
    }
  } catch (err) {
    if (opts.signal?.aborted) throw new InterruptedError();
    throw err;
  }
  return h;
}

/** SHA-256 (lower-case hex) of a whole file, streaming. */
export async function hashFile(path: string, signal?: AbortSignal): Promise<string> {
  return (await hashFileRange(path, { signal })).digest("hex");
}
