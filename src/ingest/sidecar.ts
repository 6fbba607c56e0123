import { createHash } from "node:crypto";
import { constants, createReadStream } from "node:fs";
import { open } from "node:fs/promises";

/** A parsed `sha256sum` line: `<hex>  <file name>`. */
export interface SidecarLine {
  sha256: string;
  fileName: string;
}

/** Largest marker file read; a real one is one line. */
const MAX_SIDECAR_BYTES = 4096;

/** Parse the first line of a `sha256sum`-format marker; undefined when it is not one. */
export function parseSidecar(text: string): SidecarLine | undefined {
  const line = text.split("\n")[0]!.replace(/\r$/, "");
  const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
  if (!m) return undefined;
  return { sha256: m[1]!.toLowerCase(), fileName: m[2]! };
}

/** Format a marker line exactly as `sha256sum` writes it. */
export function formatSidecar(sha256: string, fileName: string): string {
  return `${sha256}  ${fileName}\n`;
}

/** Read a marker file (capped at 4 KiB); undefined when it does not exist. */
export async function readSidecar(path: string): Promise<{ raw: string; parsed: SidecarLine | undefined } | undefined> {
  let fh;
  try {
    // Never through a link: a marker planted as a symlink would otherwise read another file.
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ELOOP") return undefined;
    throw err;
  }
  try {
    if (!(await fh.stat()).isFile()) return undefined;
    const buf = Buffer.alloc(MAX_SIDECAR_BYTES);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const raw = buf.subarray(0, bytesRead).toString("utf8");
    return { raw, parsed: parseSidecar(raw) };
  } finally {
    await fh.close();
  }
}

/** SHA-256 (hex) of a whole file, streaming. */
export async function hashFile(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash("sha256");
  const rs = createReadStream(path, { highWaterMark: 1024 * 1024, signal });
  for await (const chunk of rs) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
