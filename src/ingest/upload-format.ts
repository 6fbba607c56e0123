import { open } from "node:fs/promises";
import { constants as fsc } from "node:fs";
import { sniffArchive, type ArchiveFormat } from "./archives.js";
import { readsAsZip } from "./verify.js";

/**
 * The format of an upload from its first bytes, whatever its name says. Follows `path`: the watcher passes its
 * private copy, or /proc/self/fd/N of a drop-folder file it opened with O_NOFOLLOW itself.
 */
export async function sniffUpload(path: string): Promise<ArchiveFormat> {
  const fh = await open(path, fsc.O_RDONLY);
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, 512, 0);
    if (bytesRead < 4) throw new Error("too short to tell yet");
    return sniffArchive(buf.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

/**
 * Whether a settled, unmarked upload is complete: "complete" for a zip whose end record reads and for any other
 * archive format (its reader decides), "not-an-archive" for anything else (taken and quarantined at once with its
 * reason, never left in the drop), "incomplete" only for a zip whose end record does not read yet.
 */
export async function uploadLooksComplete(path: string): Promise<"complete" | "incomplete" | "not-an-archive"> {
  let format: ArchiveFormat;
  try {
    format = await sniffUpload(path);
  } catch {
    return "incomplete";
  }
  if (format === "zip") return (await readsAsZip(path)) ? "complete" : "incomplete";
  return format === "unknown" ? "not-an-archive" : "complete";
}
