import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { LocalIoError, describeIoError } from "../errors.js";
import { msg } from "../i18n/index.js";

/** Mode and owning group of a file scanbridge writes. */
export interface WriteMode {
  /** File mode, pinned exactly (the umask can only narrow it; chmod sets it). Default 0600. */
  mode?: number;
  /** Group id to give the file (staff group), when set. */
  gid?: number;
}

/** fsync a folder so a rename or a new entry in it survives power loss (some file systems refuse: fine). */
export async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY).catch(() => undefined);
  if (!dh) return;
  await dh.sync().catch(() => {});
  await dh.close();
}

/**
 * THE durable atomic write: a temporary file with a unique name beside the target (created exclusively, never
 * through a link), written, mode pinned, fsynced, renamed over the target, folder fsynced. Readers see the old
 * file or the new one, never half of one; two writers never share a temporary file.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: WriteMode | number = {}): Promise<void> {
  const { mode = 0o600, gid } = typeof opts === "number" ? { mode: opts } : opts;
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path).slice(0, 100)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
    try {
      await fh.writeFile(data);
      if (gid !== undefined) await fh.chown(-1, gid);
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
  await syncDir(dir);
}

/** writeFileAtomic of pretty JSON with a final newline. */
export async function writeJsonAtomic(path: string, value: unknown, opts: WriteMode | number = {}): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n", opts);
}

/**
 * Read a JSON file scanbridge wrote; undefined when absent. A file that is not valid JSON (torn by a crash on a
 * file system that ignored fsync, or edited by hand) is an error with its own code, never silently skipped.
 * `maxBytes` bounds what is read.
 */
export async function readJsonFile<T>(path: string, what: string, maxBytes = 16 * 1024 * 1024): Promise<T | undefined> {
  let text: string;
  try {
    const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new LocalIoError("STATE_DAMAGED", msg("state.notFile", { what }));
      if (st.size > maxBytes) throw new LocalIoError("STATE_DAMAGED", msg("state.tooLarge", { what, max: maxBytes }));
      text = await fh.readFile("utf8");
    } finally {
      await fh.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    if (err instanceof LocalIoError) throw err;
    if ((err as NodeJS.ErrnoException).code === "ELOOP") throw new LocalIoError("STATE_DAMAGED", msg("state.symlink", { what }), { cause: err });
    throw describeIoError(err, what);
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new LocalIoError("STATE_DAMAGED", msg("state.badJson", { what }), { cause: err });
  }
}

/** Read a small file scanbridge wrote (never following a link); undefined when absent. */
export async function readPrivateFile(path: string): Promise<Buffer | undefined> {
  try {
    const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      return await fh.readFile();
    } finally {
      await fh.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}
