/*
 * ISO 9660 images of a file-set with Debian's xorriso (mkisofs emulation): level 1 (8.3 names kept exactly, no
 * Joliet, no Rock Ridge), volume ID = File-set ID; level 3 (multi-extent) only when a file is over 4 GiB.
 * The image is written to a temporary sibling and linked into place, so an interrupted run leaves no partial ISO.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { access, constants, link, rm, stat, unlink } from "node:fs/promises";
import { basename, delimiter, dirname, join } from "node:path";
import { InputError, InterruptedError, LocalIoError, UsageError } from "../errors.js";
import { trackTemp, untrackTemp } from "../util/tempfiles.js";

/** The line that installs xorriso (shown when it is missing). */
export const XORRISO_INSTALL = "sudo apt-get install -y xorriso";

/** Find xorriso on PATH (or SCANBRIDGE_XORRISO); undefined when absent. */
export async function findXorriso(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const explicit = env.SCANBRIDGE_XORRISO;
  const candidates = explicit ? [explicit] : (env.PATH ?? "/usr/bin:/bin").split(delimiter).filter(Boolean).map((d) => join(d, "xorriso"));
  for (const c of candidates) {
    try {
      await access(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return undefined;
}

/** xorriso, or a usage error with the install line. */
export async function requireXorriso(env: NodeJS.ProcessEnv): Promise<string> {
  const bin = await findXorriso(env);
  if (!bin) throw new UsageError("XORRISO_MISSING", "--iso needs xorriso, which is not installed", { hint: `Install it with: ${XORRISO_INSTALL}` });
  return bin;
}

/** Refuse an ISO path that already exists (an image is never overwritten). */
export async function checkIsoTarget(isoPath: string): Promise<void> {
  if (await stat(isoPath).then(() => true, () => false)) {
    throw new InputError("ISO_EXISTS", "The ISO file already exists", { hint: "Give a new file name with --iso; nothing was written.", privateLines: [isoPath] });
  }
}

/** Options of writeIso. */
export interface IsoOptions {
  xorriso: string;
  /** ISO volume ID (the File-set ID: A-Z 0-9 _, at most 16 here, 32 allowed). */
  volumeId: string;
  /** A file over 4 GiB is in the tree: use level 3 (multi-extent files). */
  largeFiles: boolean;
  signal?: AbortSignal;
}

/** Write `dir` as an ISO 9660 image at `isoPath`; returns its size. */
export async function writeIso(dir: string, isoPath: string, o: IsoOptions): Promise<{ path: string; bytes: number; level: number }> {
  const partial = join(dirname(isoPath), `.${basename(isoPath)}.partial-${randomBytes(4).toString("hex")}`);
  trackTemp(partial);
  const level = o.largeFiles ? 3 : 1;
  try {
    const args = ["-as", "mkisofs", "-iso-level", String(level), "-V", o.volumeId, "-quiet", "-o", partial, dir];
    const { code, stderr } = await run(o.xorriso, args, o.signal);
    if (o.signal?.aborted) throw new InterruptedError();
    if (code !== 0) {
      if (/No space left|ENOSPC|disk full|exceeds free space/i.test(stderr)) throw new LocalIoError("DISK_FULL", "No space left while writing the ISO image", { hint: "Free some disk space or write the ISO elsewhere." });
      throw new LocalIoError("ISO_FAILED", `xorriso could not write the ISO image (exit ${code})`, { privateLines: stderr.trim().split("\n").slice(-5) });
    }
    try {
      await link(partial, isoPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new InputError("ISO_EXISTS", "The ISO file appeared while it was written", { privateLines: [isoPath] });
      throw err;
    }
    await unlink(partial);
    untrackTemp(partial);
    return { path: isoPath, bytes: (await stat(isoPath)).size, level };
  } finally {
    await rm(partial, { force: true }).catch(() => {});
    untrackTemp(partial);
  }
}

/** Run a program, collecting the end of its stderr; SIGTERM on abort. */
function run(bin: string, args: string[], signal?: AbortSignal): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString("utf8")).slice(-8192);
    });
    const onAbort = () => child.kill("SIGTERM");
    signal?.addEventListener("abort", onAbort, { once: true });
    child.on("error", (err) => {
      signal?.removeEventListener("abort", onAbort);
      reject(err);
    });
    child.on("close", (code) => {
      signal?.removeEventListener("abort", onAbort);
      resolve({ code, stderr });
    });
  });
}
