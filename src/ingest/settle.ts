import { stat } from "node:fs/promises";
import { join } from "node:path";
import { readsAsZip } from "./verify.js";
import { hashFile, readSidecar } from "./sidecar.js";

/** Names never taken: hidden files, upload temporaries and anything that is not a .zip. */
export function isCandidateName(file: string): boolean {
  if (file.startsWith(".") || file.startsWith("~")) return false;
  if (/\.(partial|part|tmp|temp|crdownload|filepart|download|upload|uploading|swp)$/i.test(file)) return false;
  return /\.zip$/i.test(file);
}

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
  | { kind: "gone" };

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
      st = await stat(zip);
    } catch {
      this.seen.delete(file);
      return { kind: "gone" };
    }
    if (!st.isFile()) return { kind: "gone" };
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
      const h = o.hash;
      let sha256: string;
      if (h && h.size === st.size && h.mtimeMs === st.mtimeMs && h.ino === st.ino) sha256 = h.sha256;
      else {
        // Hash only a file that was already seen unchanged once, so a growing file is not hashed over and over.
        if (o.changes > 0 && stableFor === 0) return { kind: "wait", why: "changing" };
        sha256 = await hashFile(zip, this.opts.signal);
        const after = await stat(zip).catch(() => undefined);
        if (!after || after.size !== st.size || after.mtimeMs !== st.mtimeMs) return { kind: "wait", why: "changing" };
        o.hash = { sha256, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
      }
      const known = { sha256, size: st.size, mtimeMs: st.mtimeMs };
      if (sha256 === marker.parsed.sha256) return { kind: "claim", known, why: "marker-matches" };
      return settled ? { kind: "claim", known, why: "marker-settled-mismatch" } : { kind: "wait", why: "marker-mismatch" };
    }
    if (!settled) return { kind: "wait", why: stableFor === 0 && o.changes > 0 ? "changing" : "settling" };
    if (await readsAsZip(zip)) return { kind: "claim", why: "settled" };
    o.unreadableSince ??= now;
    if (now - o.since >= this.opts.giveUpMs) return { kind: "claim", why: "gave-up-waiting" };
    return { kind: "wait", why: "unreadable" };
  }
}
