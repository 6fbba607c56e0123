import { randomBytes } from "node:crypto";
import { chmod, mkdir, open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { describeIoError } from "../errors.js";

/**
 * Write a file atomically: a private temporary file beside it (created with `mode`, never wider), fsync,
 * rename over the target, fsync the folder. Readers see the old file or the new one, never half of one.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const fh = await open(tmp, "wx", mode);
    try {
      await fh.writeFile(data);
      // The umask may have narrowed the mode further, never widened it; chmod pins it exactly.
      await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    throw describeIoError(err, path);
  }
  // Persist the rename itself; not supported on every platform, which is fine.
  const dh = await open(dir, "r").catch(() => undefined);
  if (dh) await dh.sync().catch(() => {}).finally(() => dh.close());
}

/** Write the config file as pretty JSON with mode 0600, creating its folder (0700) when missing. */
export async function writeConfigFile(path: string, values: Record<string, unknown>): Promise<void> {
  const dir = dirname(path);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw describeIoError(err, dir);
  }
  await writeFileAtomic(path, JSON.stringify(values, null, 2) + "\n", 0o600);
  // An existing file replaced by rename carries the new mode, but be explicit for odd file systems.
  await chmod(path, 0o600).catch(() => {});
}
