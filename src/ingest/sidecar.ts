import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { formatSha256Line, hashFile, parseSha256Line, type Sha256Line } from "../util/hash.js";

/** A parsed `sha256sum` line: `<hex>  <file name>` (the project's one parser lives in src/util/hash.ts). */
export type SidecarLine = Sha256Line;
/** Parse the first line of a `sha256sum`-format marker; undefined when it is not one. */
export const parseSidecar = parseSha256Line;
/** Format a marker line exactly as `sha256sum` writes it. */
export const formatSidecar = formatSha256Line;
/** SHA-256 (hex) of a whole file, streaming. */
export { hashFile };

/** Largest marker file read; a real one is one line. */
const MAX_SIDECAR_BYTES = 4096;

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
