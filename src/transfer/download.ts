import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import { InterruptedError, NetworkError } from "../errors.js";
import { msg } from "../i18n/index.js";
import type { DownloadResult, RemoteReader } from "./destination.js";

/**
 * Copy a file from a destination to a local file with `window.requests` reads in flight, writing and hashing
 * in order. The local file is created or emptied, flushed to disk and closed; it is left as is on failure
 * (the caller owns the temporary name). A file that ends early is an error; growth after `size` is not read.
 */
export async function readerToFile(
  reader: RemoteReader,
  size: number,
  localPath: string,
  window: { requests: number; chunkSize: number },
  signal?: AbortSignal,
): Promise<DownloadResult> {
  const hash = createHash("sha256");
  const fh = await open(localPath, "w", 0o600);
  try {
    const inFlight: Array<{ pos: number; len: number; p: Promise<Buffer> }> = [];
    let next = 0;
    let written = 0;
    const issue = () => {
      while (inFlight.length < Math.max(1, window.requests) && next < size) {
        const len = Math.min(window.chunkSize, size - next);
        const p = reader.read(len, next);
        p.catch(() => {}); // awaited in order below
        inFlight.push({ pos: next, len, p });
        next += len;
      }
    };
    issue();
    while (inFlight.length > 0) {
      if (signal?.aborted) throw new InterruptedError();
      const { pos, len, p } = inFlight.shift()!;
      const buf = await p;
      if (buf.length !== len) {
        throw new NetworkError("REMOTE_FILE_SHRANK", msg("transfer.remoteShrank"), { retryable: true });
      }
      let off = 0;
      while (off < buf.length) off += (await fh.write(buf, off, buf.length - off, pos + off)).bytesWritten;
      hash.update(buf);
      written += buf.length;
      issue();
    }
    await fh.sync();
    return { size: written, sha256: hash.digest("hex") };
  } finally {
    await fh.close();
  }
}
