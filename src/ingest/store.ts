import { createHash, randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { copyFile, link, lstat, mkdir, open, readdir, rename, rm, stat, unlink, utimes } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, dirname, join } from "node:path";
import { InterruptedError } from "../errors.js";
import { readJsonFile, writeFileAtomic, writeJsonAtomic } from "../util/atomic-write.js";
import { isOwnerGone, processStartTime } from "../util/process.js";
import { mkdirPrivate, setMode, type PrivateModes, type StateDirs } from "./state.js";

/** The folders a watch works with. Only `drop` is written by uploaders; it is read for packages only. */
export interface IngestDirs {
  drop: string;
  /** `<state>/claims`: claimed packages, one sub-folder per claim, outside the uploaders' reach. */
  processing: string;
  ready: string;
  /** `<ready>/.scanbridge-staging` (0700): extraction happens here, on the ready folder's file system. */
  staging: string;
  archive: string;
  quarantine: string;
  /** Modes and staff group of everything written that holds patient data. */
  modes: PrivateModes;
}

/** claim.json inside a claim folder: who holds it (provable: pid + host + process start time). */
export interface ClaimOwner {
  host: string;
  pid: number;
  /** processStartTime(pid) when claimed: tells a reused pid from the owner. */
  start: string;
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
  /**
   * The package's SHA-256, so that recovery finds the package's "ready" record by it even once the zip has been
   * archived (a crash between archiving and releasing the claim). Absent in states written by older versions.
   */
  sha256?: string;
}

/** A package held by this process. `zip` is the watcher's private copy: what is verified is what is archived. */
export interface Claim {
  id: string;
  dir: string;
  zip: string;
  marker: string | undefined;
  file: string;
  staging: string;
  /** SHA-256 of the private copy, computed while copying (undefined for a claim taken over after a crash). */
  sha256?: string;
  size?: number;
  mtimeMs?: number;
  /**
   * Settles once the private copy is on disk and the uploader's file is gone from the claim (fsync of the copy,
   * unlink, fsync of the claim folder). Verification reads the copy meanwhile; nothing moves or removes the claim's
   * files before it settles (rollBack, quarantinePackage and writeCommitState wait for it), and until it has, the
   * uploader's file is still there for recovery to put back.
   */
  durable?: Promise<void>;
}

/** Folders for a drop folder, a state folder and options. */
export function ingestDirs(drop: string, ready: string, state: StateDirs, modes: PrivateModes, archive?: string, quarantine?: string): IngestDirs {
  return {
    drop,
    processing: state.claims,
    ready,
    staging: join(ready, ".scanbridge-staging"),
    archive: archive ?? state.archive,
    quarantine: quarantine ?? state.quarantine,
    modes,
  };
}

/** Create the folders if needed, private (0700/0750, staging always 0700). */
export async function ensureDirs(d: IngestDirs): Promise<void> {
  for (const p of [d.processing, d.ready, d.archive, d.quarantine]) await mkdirPrivate(p, d.modes);
  await mkdirPrivate(d.staging, { file: 0o600, dir: 0o700 });
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

/** Move a file we own into an output folder (archive, quarantine) and give it the private mode and group. */
async function movePrivate(src: string, dstDir: string, name: string, modes: PrivateModes): Promise<string> {
  const dst = await moveNoClobber(src, dstDir, name);
  await setMode(dst, modes.file, modes.gid);
  return dst;
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

/** Name of the package as taken from the drop, inside a claim folder, until its private copy is made. */
const RECEIVED = "received";
/** The watcher's private copy of the package (0600): the bytes verified, extracted and archived. */
const PRIVATE_COPY = "package.zip";
const MARKER = "marker.sha256";

/** The outcome of trying to take one file out of the drop folder. */
export type ClaimResult =
  | { kind: "claimed"; claim: Claim }
  | { kind: "gone" }
  | { kind: "refused"; code: "NOT_REGULAR_FILE" | "HARD_LINKED"; reason: string };

/**
 * Claim `<drop>/<file>`: one atomic rename out of the drop into a claim folder in the state folder (whoever
 * renames first has it; an uploader can neither fake nor block that), then a private copy read from one
 * descriptor opened without following links, hashed while copying. The uploader's inode is removed after the
 * copy, so a writer still holding it open changes nothing the watcher verifies or archives.
 */
export async function claimPackage(d: IngestDirs, file: string, instance: string, signal?: AbortSignal): Promise<ClaimResult> {
  const src = join(d.drop, file);
  const before = await lstat(src).catch(() => undefined);
  if (!before) return { kind: "gone" };
  if (!before.isFile()) return { kind: "refused", code: "NOT_REGULAR_FILE", reason: before.isSymbolicLink() ? "a symbolic link, not a file: never followed" : "not a regular file" };
  if (before.nlink > 1) return { kind: "refused", code: "HARD_LINKED", reason: "a hard link to another file: never taken" };
  const id = newClaimId();
  const dir = join(d.processing, id);
  const staging = join(d.staging, id);
  const owner: ClaimOwner = { host: hostname(), pid: process.pid, start: MY_START, instance, claimedAt: new Date().toISOString(), file, staging };
  // The claim folder appears with its owner record already inside (built aside, renamed in), so a
  // claim folder without claim.json never exists, whatever moment the process dies.
  const fresh = join(d.processing, `${NEW_PREFIX}${id}`);
  await mkdir(fresh, { mode: 0o700 });
  await writeJsonAtomic(join(fresh, "claim.json"), owner);
  await rename(fresh, dir);
  const received = join(dir, RECEIVED);
  try {
    await rename(src, received);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { kind: "gone" };
    throw err;
  }
  let marker: string | undefined = join(dir, MARKER);
  const m = await lstat(`${src}.sha256`).catch(() => undefined);
  if (m?.isFile() && m.size <= 4096) {
    try {
      await rename(`${src}.sha256`, marker);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      marker = undefined;
    }
  } else marker = undefined;
  // Both renames on disk before the copy starts (the two folders' fsyncs at once).
  await Promise.all([syncPath(dir), syncPath(d.drop)]);
  const claim: Claim = { id, dir, zip: join(dir, PRIVATE_COPY), marker, file, staging };
  let copied;
  try {
    copied = await privateCopy(received, claim.zip, signal);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ELOOP" || code === "NOT_REGULAR_FILE") {
      // Swapped for a link (or a device) between our look and the rename: the link itself is ours now; drop it.
      await rm(dir, { recursive: true, force: true });
      return { kind: "refused", code: "NOT_REGULAR_FILE", reason: "replaced by a link or special file while being taken: never followed" };
    }
    await rollBack(d, claim).catch(() => {});
    throw err;
  }
  // The copy's fsync runs while the copy is verified: the uploader's file is removed only once the copy is on disk.
  const durable = copied.flushed.then(async () => {
    await unlink(received);
    await syncPath(dir);
  });
  durable.catch(() => {}); // awaited before anything moves the claim's files
  return { kind: "claimed", claim: { ...claim, sha256: copied.sha256, size: copied.size, mtimeMs: copied.mtimeMs, durable } };
}

/** Wait until a claim's private copy is on disk (see Claim.durable); a failed fsync is thrown. */
async function settled(c: Claim): Promise<void> {
  await c.durable;
}

const MY_START = processStartTime(process.pid);

/**
 * Copy `src` (opened once, O_NOFOLLOW) to a new private file, hashing the bytes written; abortable. Returns once
 * every byte is written and the copy has its name; `flushed` settles when it is on disk (fsync, close).
 */
async function privateCopy(src: string, dst: string, signal?: AbortSignal): Promise<{ sha256: string; size: number; mtimeMs: number; flushed: Promise<void> }> {
  const input = await open(src, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = await input.stat();
    if (!st.isFile() || st.nlink > 1) throw Object.assign(new Error("not a regular file"), { code: "NOT_REGULAR_FILE" });
    const part = `${dst}.part`;
    const out = await open(part, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    const hash = createHash("sha256");
    let size = 0;
    try {
      // Two buffers: the next piece is read (thread pool) while this one is hashed and written.
      const bufs = [Buffer.allocUnsafe(1024 * 1024), Buffer.allocUnsafe(1024 * 1024)];
      let which = 0;
      let reading = input.read(bufs[0]!, 0, bufs[0]!.length, 0);
      for (;;) {
        if (signal?.aborted) throw new InterruptedError();
        const { bytesRead } = await reading;
        if (bytesRead === 0) break;
        const chunk = bufs[which]!.subarray(0, bytesRead);
        which ^= 1;
        reading = input.read(bufs[which]!, 0, bufs[which]!.length, size + bytesRead);
        reading.catch(() => {}); // awaited on the next turn; a failed write below must not leave it unhandled
        hash.update(chunk);
        let off = 0;
        while (off < bytesRead) off += (await out.write(chunk, off, bytesRead - off, size + off)).bytesWritten;
        size += bytesRead;
      }
    } catch (err) {
      await out.close();
      await unlink(part).catch(() => {});
      throw err;
    }
    // Named before it is on disk: a crash before the fsync leaves the uploader's file in the claim, which recovery
    // puts back (it prefers that file to the copy), and the copy is removed with the claim.
    await rename(part, dst);
    const copy = await stat(dst);
    const flushed = out.sync().finally(() => out.close());
    flushed.catch(() => {});
    return { sha256: hash.digest("hex"), size, mtimeMs: copy.mtimeMs, flushed };
  } finally {
    await input.close();
  }
}

/** Keep a claim visibly alive for watchers on other hosts (they recover claims whose heartbeat stops). */
export async function touchClaim(c: Claim): Promise<void> {
  const now = new Date();
  await utimes(join(c.dir, "claim.json"), now, now).catch(() => {});
}

/** Put a claimed package back in the queue (drop folder), removing any half-extracted staging. */
export async function rollBack(d: IngestDirs, c: Claim): Promise<void> {
  // Whatever became of the copy's fsync: the uploader's file is then either still in the claim or the copy is on disk.
  await c.durable?.catch(() => {});
  await rm(c.staging, { recursive: true, force: true });
  // The uploader's own file when the private copy was not finished, else the private copy.
  const received = join(c.dir, RECEIVED);
  const source = (await lstat(received).then((st) => st.isFile(), () => false)) ? received : c.zip;
  const back = await moveNoClobberIfPresent(source, d.drop, c.file);
  if (back !== undefined && c.marker) await moveNoClobberIfPresent(c.marker, d.drop, `${basename(back)}.sha256`);
  await syncPath(d.drop);
  await rm(c.dir, { recursive: true, force: true });
}

async function moveNoClobberIfPresent(src: string, dstDir: string, name: string, modes?: PrivateModes): Promise<string | undefined> {
  const st = await lstat(src).catch(() => undefined);
  if (!st?.isFile()) return undefined;
  return modes ? movePrivate(src, dstDir, name, modes) : moveNoClobber(src, dstDir, name);
}

/** Record that the verified extraction is about to be renamed into ready/ (for crash recovery). */
export async function writeCommitState(c: Claim, state: ClaimState): Promise<void> {
  // Recovery finishes a commit from the private copy: it is on disk before the commit is recorded.
  await settled(c);
  await writeJsonAtomic(join(c.dir, "state.json"), state);
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
    archived = await movePrivate(c.zip, d.archive, c.file, d.modes);
    if (c.marker) await moveNoClobberIfPresent(c.marker, d.archive, `${basename(archived)}.sha256`, d.modes);
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
  await settled(c);
  await rm(c.staging, { recursive: true, force: true });
  const zip = await movePrivate(c.zip, d.quarantine, c.file, d.modes);
  if (c.marker) await moveNoClobberIfPresent(c.marker, d.quarantine, `${basename(zip)}.sha256`, d.modes);
  const reasonPath = zip.replace(/\.zip$/i, "") + ".reason.json";
  await writeFileAtomic(reasonPath, JSON.stringify({ ...reason, quarantinedFile: basename(zip) }, null, 2) + "\n", { mode: d.modes.file, gid: d.modes.gid });
  await syncPath(d.quarantine);
  await rm(c.dir, { recursive: true, force: true });
  return zip;
}


/** What recovery found in one claim folder. */
export type RecoveryAction = { claim: Claim; state: ClaimState | undefined };

/**
 * Find claims whose owner is gone and take them over by atomic rename (so two recovering watchers never both
 * do). Proof comes only from the state folder: same host, the owner's pid is not running or runs with another
 * start time (a reused pid); another host, its heartbeat (claim.json's mtime) is older than `staleMs`.
 */
export async function takeOverStaleClaims(d: IngestDirs, instance: string, staleMs: number): Promise<RecoveryAction[]> {
  const out: RecoveryAction[] = [];
  let names: string[];
  try {
    names = await readdir(d.processing);
  } catch {
    return out;
  }
  const host = hostname();
  for (const id of names) {
    const dir = join(d.processing, id);
    if (id.startsWith(NEW_PREFIX)) {
      // A claim being prepared: never holds a package. Remove it when its maker is gone.
      const m = /-(\d+)-[0-9a-f]+$/.exec(id);
      const age = await stat(dir).then((st) => Date.now() - st.mtimeMs, () => 0);
      if ((m && Number(m[1]) !== process.pid && isOwnerGone({ host: hostTag(), pid: Number(m[1]), start: "" }, hostTag()) && id.includes(`-${hostTag()}-`)) || age > staleMs) {
        await rm(dir, { recursive: true, force: true });
      }
      continue;
    }
    const heartbeat = await stat(join(dir, "claim.json")).catch(() => undefined);
    const owner = await readJsonFile<ClaimOwner>(join(dir, "claim.json"), "claim.json").catch(() => undefined);
    if (!owner || !heartbeat) continue; // a claim folder always holds its owner record (made aside): a damaged one is left for a person
    if (owner.instance === instance) continue;
    const gone = owner.pid === process.pid && owner.host === host ? true : isOwnerGone({ host: owner.host, pid: owner.pid, start: owner.start ?? "" }, host);
    const stale = gone === undefined && Date.now() - heartbeat.mtimeMs > staleMs;
    if (!gone && !stale) continue;
    const newId = newClaimId();
    const newDir = join(d.processing, newId);
    try {
      await rename(dir, newDir);
    } catch {
      continue; // another watcher took it over first
    }
    const updated: ClaimOwner = { ...owner, pid: process.pid, host, start: MY_START, instance };
    await writeJsonAtomic(join(newDir, "claim.json"), updated);
    const state = await readJsonFile<ClaimState>(join(newDir, "state.json"), "state.json").catch(() => undefined);
    const hasMarker = await lstat(join(newDir, MARKER)).then((st) => st.isFile(), () => false);
    // The private copy may be unfinished (crash while copying): then rollBack returns the received file.
    await unlink(join(newDir, `${PRIVATE_COPY}.part`)).catch(() => {});
    out.push({ claim: { id: newId, dir: newDir, zip: join(newDir, PRIVATE_COPY), marker: hasMarker ? join(newDir, MARKER) : undefined, file: owner.file, staging: owner.staging }, state });
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
      const o = await readJsonFile<ClaimOwner>(join(d.processing, id, "claim.json"), "claim.json");
      referenced.add(o ? basename(o.staging) : id);
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
      const deadHere = m !== null && m[1] === hostTag() && isOwnerGone({ host: hostTag(), pid: Number(m[2]), start: "" }, hostTag()) === true;
      if (!deadHere && Date.now() - st.mtimeMs < staleMs) continue;
    } catch {
      continue;
    }
    await rm(p, { recursive: true, force: true });
    removed++;
  }
  return removed;
}
