import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { copyFile, link, mkdir, open, readFile, readdir, rename, rm, rmdir, stat, unlink, utimes, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, dirname, join } from "node:path";
import { isProcessAlive } from "../util/process.js";

/** The folders a watch works with. */
export interface IngestDirs {
  drop: string;
  /** `<drop>/processing`: claimed packages, one sub-folder per claim. */
  processing: string;
  ready: string;
  /** `<ready>/.scanbridge-staging`: extraction happens here, on the ready folder's file system. */
  staging: string;
  archive: string;
  quarantine: string;
}

/** claim.json inside a claim folder: who holds it. */
export interface ClaimOwner {
  host: string;
  pid: number;
  /** Random per watch process, to tell our own claims from a dead process that had our pid. */
  instance: string;
  claimedAt: string;
  /** The package file name (PHI). */
  file: string;
  /** Staging folder of this claim (kept across re-claims). */
  staging: string;
}

/** state.json inside a claim folder: how far the package got. Absent = claimed/extracting. */
export interface ClaimState {
  phase: "committing";
  /** Extracted root folder inside staging. */
  from: string;
  /** Final folder in ready/. */
  target: string;
}

/** A package held by this process. */
export interface Claim {
  id: string;
  dir: string;
  zip: string;
  marker: string | undefined;
  file: string;
  staging: string;
}

/** Folders for a drop folder and options. */
export function ingestDirs(drop: string, ready: string, archive?: string, quarantine?: string): IngestDirs {
  return {
    drop,
    processing: join(drop, "processing"),
    ready,
    staging: join(ready, ".scanbridge-staging"),
    archive: archive ?? join(drop, "archive"),
    quarantine: quarantine ?? join(drop, "quarantine"),
  };
}

/** Create the folders if needed. */
export async function ensureDirs(d: IngestDirs): Promise<void> {
  for (const p of [d.processing, d.ready, d.staging, d.archive, d.quarantine]) await mkdir(p, { recursive: true });
}

/** fsync a file or folder so a rename or write survives power loss. */
export async function syncPath(path: string): Promise<void> {
  const fh = await open(path, "r");
  try {
    await fh.sync();
  } catch (err) {
    // Some file systems refuse fsync on directories; durability there is the file system's business.
    if (!["EINVAL", "EISDIR", "EBADF"].includes((err as NodeJS.ErrnoException).code ?? "")) throw err;
  } finally {
    await fh.close();
  }
}

/** "2026-11-23 181050": the date suffix for a name already taken. */
export function dateSuffix(now = new Date()): string {
  const iso = now.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19).replace(/:/g, "")}`;
}

/** Candidate names: `base`, then `base (date)`, then `base (date-2)`, ... with `ext` appended. */
function* candidateNames(base: string, ext: string): Generator<string> {
  yield base + ext;
  const sfx = dateSuffix();
  yield `${base} (${sfx})${ext}`;
  for (let n = 2; n < 1000; n++) yield `${base} (${sfx}-${n})${ext}`;
}

/** Split "X.zip" into ["X", ".zip"], "X.zip.sha256" into ["X", ".zip.sha256"]. */
function splitExt(file: string): [string, string] {
  const m = /^(.*?)(\.zip(?:\.sha256)?|\.reason\.json)$/i.exec(file);
  return m ? [m[1]!, m[2]!] : [file, ""];
}

/** Move a file into a folder without ever overwriting: link+unlink, copy across file systems; returns the new path. */
export async function moveNoClobber(src: string, dstDir: string, preferredName = basename(src)): Promise<string> {
  const [base, ext] = splitExt(preferredName);
  for (const name of candidateNames(base, ext)) {
    const dst = join(dstDir, name);
    try {
      await link(src, dst);
      await unlink(src);
      return dst;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EEXIST") continue;
      if (code === "EXDEV" || code === "EPERM" || code === "ENOTSUP") {
        try {
          await copyFile(src, dst, constants.COPYFILE_EXCL);
        } catch (e2) {
          if ((e2 as NodeJS.ErrnoException).code === "EEXIST") continue;
          throw e2;
        }
        await syncPath(dst);
        await unlink(src);
        return dst;
      }
      throw err;
    }
  }
  throw new Error(`no free name for ${preferredName} in ${dstDir}`);
}

/** Prefix of a claim folder being prepared (holds no package yet). */
const NEW_PREFIX = ".new-";

/** A new, unique claim id (host and pid in it help people reading the folder). */
export function newClaimId(): string {
  return `${Date.now()}-${hostTag()}-${process.pid}-${randomBytes(4).toString("hex")}`;
}

/** This host's name as used in claim ids. */
function hostTag(): string {
  return hostname().replace(/[^A-Za-z0-9-]/g, "_").slice(0, 40);
}

/**
 * Claim `<drop>/<file>` by atomic rename into `processing/<id>/`. Returns undefined when another watcher
 * took it first (the rename found nothing). The marker follows the zip.
 */
export async function claimPackage(d: IngestDirs, file: string, instance: string): Promise<Claim | undefined> {
  const id = newClaimId();
  const dir = join(d.processing, id);
  const staging = join(d.staging, id);
  const owner: ClaimOwner = { host: hostname(), pid: process.pid, instance, claimedAt: new Date().toISOString(), file, staging };
  // The claim folder appears with its owner record already inside (built aside, renamed in), so a
  // claim folder without claim.json never exists, whatever moment the process dies.
  const fresh = join(d.processing, `${NEW_PREFIX}${id}`);
  await mkdir(fresh);
  await writeFile(join(fresh, "claim.json"), JSON.stringify(owner));
  await rename(fresh, dir);
  const zip = join(dir, file);
  try {
    await rename(join(d.drop, file), zip);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  let marker: string | undefined = join(dir, `${file}.sha256`);
  try {
    await rename(join(d.drop, `${file}.sha256`), marker);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    marker = undefined;
  }
  await syncPath(dir);
  await syncPath(d.drop);
  return { id, dir, zip, marker, file, staging };
}

/** Keep a claim visibly alive for watchers on other hosts (they recover claims whose heartbeat stops). */
export async function touchClaim(c: Claim): Promise<void> {
  const now = new Date();
  await utimes(join(c.dir, "claim.json"), now, now).catch(() => {});
}

/** Put a claimed package back in the queue (drop folder), removing any half-extracted staging. */
export async function rollBack(d: IngestDirs, c: Claim): Promise<void> {
  await rm(c.staging, { recursive: true, force: true });
  const back = await moveNoClobberIfPresent(c.zip, d.drop, c.file);
  if (back !== undefined && c.marker) await moveNoClobberIfPresent(c.marker, d.drop, `${basename(back)}.sha256`);
  await syncPath(d.drop);
  await rm(c.dir, { recursive: true, force: true });
}

async function moveNoClobberIfPresent(src: string, dstDir: string, name: string): Promise<string | undefined> {
  try {
    await stat(src);
  } catch {
    return undefined;
  }
  return moveNoClobber(src, dstDir, name);
}

/** Record that the verified extraction is about to be renamed into ready/ (for crash recovery). */
export async function writeCommitState(c: Claim, state: ClaimState): Promise<void> {
  const tmp = join(c.dir, "state.json.tmp");
  await writeFile(tmp, JSON.stringify(state));
  await syncPath(tmp);
  await rename(tmp, join(c.dir, "state.json"));
  await syncPath(c.dir);
}

/** The first name in ready/ not taken by an earlier delivery: `<Name>`, else `<Name> (date)`. */
export async function chooseReadyTarget(d: IngestDirs, name: string): Promise<string> {
  for (const n of candidateNames(name, "")) {
    const p = join(d.ready, n);
    const taken = await stat(p).then(() => true, () => false);
    if (!taken) return p;
  }
  throw new Error(`no free name for ${name} in ${d.ready}`);
}

/**
 * Rename the extracted folder to the target recorded in the claim's commit state. When someone took that
 * name meanwhile, pick the next free one and record it first, so recovery always knows where it went.
 */
export async function commitToReady(d: IngestDirs, c: Claim, state: ClaimState): Promise<string> {
  let target = state.target;
  // The target may be in a route folder under ready/ (ready/<route>/<Name>): a clash picks a new name there.
  const into: IngestDirs = { ...d, ready: dirname(state.target) };
  for (let attempt = 0; attempt < 100; attempt++) {
    const taken = await stat(target).then(() => true, () => false);
    if (!taken) {
      try {
        await rename(state.from, target);
        await syncPath(into.ready);
        return target;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== "EEXIST" && code !== "ENOTEMPTY") throw err;
      }
    }
    target = await chooseReadyTarget(into, basename(state.from));
    await writeCommitState(c, { ...state, target });
  }
  throw new Error(`cannot find a free folder name in ${into.ready}`);
}

/** Move the zip and its marker to archive/ and drop the claim and staging folders. */
export async function archiveAndRelease(d: IngestDirs, c: Claim): Promise<string | undefined> {
  let archived: string | undefined;
  try {
    await stat(c.zip);
    archived = await moveNoClobber(c.zip, d.archive, c.file);
    if (c.marker) await moveNoClobberIfPresent(c.marker, d.archive, `${basename(archived)}.sha256`);
    await syncPath(d.archive);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  await rm(c.staging, { recursive: true, force: true });
  await rm(c.dir, { recursive: true, force: true });
  return archived;
}

/** Move the zip and marker to quarantine/ beside `<Name>.reason.json`; returns the quarantined zip path. */
export async function quarantinePackage(d: IngestDirs, c: Claim, reason: Record<string, unknown>): Promise<string> {
  await rm(c.staging, { recursive: true, force: true });
  const zip = await moveNoClobber(c.zip, d.quarantine, c.file);
  if (c.marker) await moveNoClobberIfPresent(c.marker, d.quarantine, `${basename(zip)}.sha256`);
  const reasonPath = zip.replace(/\.zip$/i, "") + ".reason.json";
  const tmp = `${reasonPath}.tmp`;
  await writeFile(tmp, JSON.stringify({ ...reason, quarantinedFile: basename(zip) }, null, 2) + "\n");
  await rename(tmp, reasonPath);
  await syncPath(d.quarantine);
  await rm(c.dir, { recursive: true, force: true });
  return zip;
}


/** What recovery found in one claim folder. */
export type RecoveryAction = { claim: Claim; state: ClaimState | undefined };

/**
 * Find claims whose owner is gone (same host: pid dead or ours from a previous life; any host: heartbeat
 * older than `staleMs`) and take them over by atomic rename, so two recovering watchers never both do.
 */
export async function takeOverStaleClaims(d: IngestDirs, instance: string, staleMs: number): Promise<RecoveryAction[]> {
  const out: RecoveryAction[] = [];
  let names: string[];
  try {
    names = await readdir(d.processing);
  } catch {
    return out;
  }
  for (const id of names) {
    const dir = join(d.processing, id);
    if (id.startsWith(NEW_PREFIX)) {
      // A claim being prepared: never holds a package. Remove it when its maker is gone.
      const m = /-(\d+)-[0-9a-f]+$/.exec(id);
      const age = await stat(dir).then((st) => Date.now() - st.mtimeMs, () => 0);
      if ((m && Number(m[1]) !== process.pid && !isProcessAlive(Number(m[1])) && id.includes(`-${hostTag()}-`)) || age > staleMs) {
        await rm(dir, { recursive: true, force: true });
      }
      continue;
    }
    let owner: ClaimOwner | undefined;
    let mtimeMs: number;
    try {
      const st = await stat(join(dir, "claim.json"));
      mtimeMs = st.mtimeMs;
      owner = JSON.parse(await readFile(join(dir, "claim.json"), "utf8")) as ClaimOwner;
    } catch {
      // claim.json missing or torn: the claimer died right after mkdir; treat by folder age
      try {
        mtimeMs = (await stat(dir)).mtimeMs;
      } catch {
        continue;
      }
    }
    if (owner?.instance === instance) continue;
    const sameHost = owner?.host === hostname();
    const dead = owner ? sameHost && (!isProcessAlive(owner.pid) || owner.pid === process.pid) : Date.now() - mtimeMs > 5000;
    const stale = Date.now() - mtimeMs > staleMs;
    if (!dead && !stale) continue;
    const newId = newClaimId();
    const newDir = join(d.processing, newId);
    try {
      await rename(dir, newDir);
    } catch {
      continue; // another watcher took it over first
    }
    if (!owner) {
      // No owner record: anything inside goes back to the queue.
      for (const f of await readdir(newDir)) {
        if (/\.zip(\.sha256)?$/i.test(f)) await moveNoClobber(join(newDir, f), d.drop, f);
      }
      await rm(newDir, { recursive: true, force: true });
      continue;
    }
    const updated: ClaimOwner = { ...owner, pid: process.pid, host: hostname(), instance };
    await writeFile(join(newDir, "claim.json"), JSON.stringify(updated));
    let state: ClaimState | undefined;
    try {
      state = JSON.parse(await readFile(join(newDir, "state.json"), "utf8")) as ClaimState;
    } catch {
      state = undefined;
    }
    const marker = join(newDir, `${owner.file}.sha256`);
    let hasMarker = true;
    try {
      await stat(marker);
    } catch {
      hasMarker = false;
    }
    out.push({ claim: { id: newId, dir: newDir, zip: join(newDir, owner.file), marker: hasMarker ? marker : undefined, file: owner.file, staging: owner.staging }, state });
  }
  return out;
}

/** Remove staging folders that no claim refers to any more (left by a crash after the claim was released). */
export async function sweepOrphanStaging(d: IngestDirs, staleMs: number): Promise<number> {
  let removed = 0;
  let names: string[];
  try {
    names = await readdir(d.staging);
  } catch {
    return 0;
  }
  if (names.length === 0) return 0;
  const referenced = new Set<string>();
  for (const id of await readdir(d.processing).catch(() => [] as string[])) {
    try {
      const o = JSON.parse(await readFile(join(d.processing, id, "claim.json"), "utf8")) as ClaimOwner;
      referenced.add(basename(o.staging));
    } catch {
      referenced.add(id);
    }
  }
  for (const id of names) {
    if (referenced.has(id)) continue;
    const p = join(d.staging, id);
    try {
      const st = await stat(p);
      const m = /^\d+-(.+)-(\d+)-[0-9a-f]+$/.exec(id);
      const deadHere = m !== null && m[1] === hostTag() && !isProcessAlive(Number(m[2]));
      if (!deadHere && Date.now() - st.mtimeMs < staleMs) continue;
    } catch {
      continue;
    }
    await rm(p, { recursive: true, force: true });
    removed++;
  }
  return removed;
}

/** The parent folder of a path (re-exported for the watcher). */
export const parentOf = dirname;
/** Remove an empty folder, ignoring errors. */
export async function removeEmptyDir(p: string): Promise<void> {
  await rmdir(p).catch(() => {});
}
