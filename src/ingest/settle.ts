import { constants } from "node:fs";
import { lstat, open, stat } from "node:fs/promises";
import { join } from "node:path";
import { uploadLooksComplete } from "./upload-format.js";
import { hashFile, readSidecar } from "./sidecar.js";

/** Names never taken: hidden files, upload temporaries and anything that is not an archive (.zip, .7z, .rar, .tar, .tar.gz). */
export function isCandidateName(file: string): boolean {
  if (file.startsWith(".") || file.startsWith("~")) return false;
  if (/\.(partial|part|tmp|temp|crdownload|filepart|download|upload|uploading|swp)$/i.test(file)) return false;
  return PACKAGE_NAME_RE.test(file);
}

/** File names of packages: zips and the archives people make by hand. */
export const PACKAGE_NAME_RE = /\.(zip|7z|rar|tar|tgz|tar\.gz)$/i;

/** What is known about one file in the drop folder between looks. */
interface Observation {
  size: number;
  mtimeMs: number;
  ino: number;
  /** When this size/mtime/inode was first seen. */
  since: number;
  /** Times this file was seen with a different size/mtime than before. */
  changes: number;
  hash?: { sha256: string; size: number; mtimeMs: number; ino: number };
  unreadableSince?: number;
}

/** The verdict on one candidate. */
export type Readiness =
  | { kind: "claim"; known?: { sha256: string; size: number; mtimeMs: number }; why: "marker-matches" | "settled" | "marker-settled-mismatch" | "gave-up-waiting" }
  | { kind: "wait"; why: "changing" | "settling" | "marker-mismatch" | "unreadable" }
  | { kind: "gone" }
  /** A link, a folder, a device or a hard link: never opened, never taken (the watcher reports it once). */
  | { kind: "ignored"; why: string };

/** Options of the settle rules. */
export interface SettleOptions {
  settleMs: number;
  /** A file stable this long whose zip end record still does not read is taken anyway (and quarantined by verify). */
  giveUpMs: number;
  now?: () => number;
  signal?: AbortSignal;
}

/**
 * Decides when a package in the drop folder is complete. Sealed: its `.sha256` marker is present and matches
 * the zip (the marker is written last). Unmarked: size, mtime and inode unchanged for the settle time and the
 * zip end record reads. Size alone is never trusted (chokidar#471, #675: preallocation, mid-copy events).
 */
export class Settler {
  private readonly seen = new Map<string, Observation>();
  constructor(private readonly drop: string, private readonly opts: SettleOptions) {}

  /** Forget files no longer present. */
  retain(present: Set<string>): void {
    for (const k of this.seen.keys()) if (!present.has(k)) this.seen.delete(k);
  }

  /** How many times a file changed while observed (used by --once to skip files still being written). */
  changes(file: string): number {
    return this.seen.get(file)?.changes ?? 0;
  }

  /** Look at one candidate now. */
  async assess(file: string): Promise<Readiness> {
    const now = (this.opts.now ?? Date.now)();
    const zip = join(this.drop, file);
    let st;
    try {
      st = await lstat(zip);
    } catch {
      this.seen.delete(file);
      return { kind: "gone" };
    }
    if (st.isSymbolicLink()) return { kind: "ignored", why: "a symbolic link: never followed" };
    if (!st.isFile()) return { kind: "ignored", why: "not a regular file" };
    if (st.nlink > 1) return { kind: "ignored", why: "a hard link to another file" };
    let o = this.seen.get(file);
    if (!o || o.size !== st.size || o.mtimeMs !== st.mtimeMs || o.ino !== st.ino) {
      o = { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, since: now, changes: o ? o.changes + 1 : 0, hash: o?.hash };
      this.seen.set(file, o);
    }
    const stableFor = now - o.since;
    const settled = stableFor >= this.opts.settleMs;
    const marker = await readSidecar(`${zip}.sha256`).catch(() => undefined);
    if (marker) {
      if (!marker.parsed) return settled ? { kind: "claim", why: "marker-settled-mismatch" } : { kind: "wait", why: "settling" };
      // Settled: taken whatever the marker says (a mismatch is quarantined by verify), so hashing the drop's copy
      // here would decide nothing. The hash that counts is the one of the private copy, taken while copying it
      // out of the drop: that is the copy verify checks against the marker and the one archived. Only a file
      // not yet settled is hashed here, so that a sealed upload is taken at once when its marker matches.
      const h = o.hash;
      const current = h && h.size === st.size && h.mtimeMs === st.mtimeMs && h.ino === st.ino;
      // Hash only a file that was already seen unchanged once, so a growing file is not hashed over and over
      // (and, with --settle 0, not taken while it is still changing).
      if (!current && o.changes > 0 && stableFor === 0) return { kind: "wait", why: "changing" };
      if (settled && !current) return { kind: "claim", why: "settled" };
      let sha256: string;
      if (current) sha256 = h.sha256;
      else {
        const h = await withNoFollow(zip, (p) => hashFile(p, this.opts.signal));
        if (h === undefined) return { kind: "ignored", why: "replaced by a link or special file" };
        sha256 = h;
        const after = await lstat(zip).catch(() => undefined);
        if (!after || after.size !== st.size || after.mtimeMs !== st.mtimeMs) return { kind: "wait", why: "changing" };
        o.hash = { sha256, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
      }
      const known = { sha256, size: st.size, mtimeMs: st.mtimeMs };
      if (sha256 === marker.parsed.sha256) return { kind: "claim", known, why: "marker-matches" };
      return settled ? { kind: "claim", known, why: "marker-settled-mismatch" } : { kind: "wait", why: "marker-mismatch" };
    }
    if (!settled) return { kind: "wait", why: stableFor === 0 && o.changes > 0 ? "changing" : "settling" };
    // A zip whose end record reads, another archive (a .7z renamed .zip too), or no archive at all (quarantined
    // at once with its reason): taken. Only a zip that does not read yet may still be arriving.
    if (((await withNoFollow(zip, uploadLooksComplete)) ?? "incomplete") !== "incomplete") return { kind: "claim", why: "settled" };
    o.unreadableSince ??= now;
    if (now - o.since >= this.opts.giveUpMs) return { kind: "claim", why: "gave-up-waiting" };
    return { kind: "wait", why: "unreadable" };
  }
}

/**
 * Run `fn` on a drop-folder file opened once without following links, through /proc/self/fd (the very inode
 * opened, whatever is renamed or linked into its place meanwhile). undefined when it is not a regular file.
 */
async function withNoFollow<T>(path: string, fn: (p: string) => Promise<T>): Promise<T | undefined> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ELOOP") return undefined;
    throw err;
  }
  try {
    if (!(await fh.stat()).isFile()) return undefined;
    const viaFd = `/proc/self/fd/${fh.fd}`;
    const usable = await stat(viaFd).then(() => true, () => false);
    return await fn(usable ? viaFd : path);
  } finally {
    await fh.close();
  }
}
