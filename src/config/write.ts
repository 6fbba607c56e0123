import { chmod, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { describeIoError } from "../errors.js";
import { writeFileAtomic } from "../util/atomic-write.js";

/** The one durable atomic write (kept importable from here for existing callers). */
export { writeFileAtomic };

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
