/**
 * The remote inbox: poll an SFTP folder, download complete packages into the local drop folder that runWatch
 * processes, then move (or delete) the remote copy.
 *
 * Completeness, as for a local drop: never `.partial`, hidden or other temporary names; a package with a
 * `<Name>.zip.sha256` marker beside it when the downloaded bytes match the marker; a package without a marker
 * when its size and modification time were unchanged between two polls `settle` seconds apart, it did not
 * change while it was downloaded, and its zip end record reads.
 *
 * Crash safety. Downloads go to `<drop>/.remote-incoming/<Name>.zip.download` (hidden from runWatch), are
 * flushed and hash-checked, then renamed to `<drop>/.remote-incoming/<Name>.zip` next to a small journal
 * `<Name>.zip.json`. The hand-over writes `<drop>/<Name>.zip.sha256` (the hash just checked) and renames the
 * zip into the drop, then marks the journal "handed". Only then is the remote copy moved or deleted; the
 * journal goes last. A crash at any point resumes from the journal at the next poll: a package is never
 * handed over twice, and a remote file is never removed before its bytes are safely in the drop.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, readdir, rename, stat, unlink, writeFile } from "node:fs/promises";
import { join, posix } from "node:path";
import { errorCode } from "../errors.js";
import type { Destination, RemoteEntry } from "../transfer/destination.js";
import { isCandidateName } from "./settle.js";
import { formatSidecar, parseSidecar } from "./sidecar.js";
import { syncPath } from "./store.js";
import { readsAsZip } from "./verify.js";

/** Options of the remote inbox (already validated by the command). */
export interface RemoteInboxOptions {
  /** Remote folder polled (as the destination understands paths). */
  inbox: string;
  /** Local drop folder runWatch processes. */
  drop: string;
  /** What happens to the remote copy once it is safely in the drop. */
  after: "move" | "delete";
  /** Remote folder for `after: "move"`. */
  processed: string;
  /**
   * Remote folder a package is renamed into before it is downloaded (the server-side claim): one rename on the
   * server, so two watchers on one inbox never both take a package. Must be a folder the uploaders cannot write.
   * Default `<processed>/.claiming`.
   */
  claims?: string;
  /** Seconds an unmarked package must be unchanged between two polls. */
  settleSeconds: number;
  now?: () => number;
}

/** Progress of the remote inbox. `file` is PHI: shown only with --verbose. `id` is the first 12 hex of the SHA-256. */
export type RemoteInboxEvent =
  | { event: "downloaded"; id: string; file: string; bytes: number; marker: boolean; durationMs: number }
  | { event: "remote-cleaned"; id: string; file: string; action: "moved" | "deleted" }
  | { event: "waiting"; file: string; why: string }
  | { event: "error"; file?: string; id?: string; code: string; message: string };

/** Totals of one poll. */
export interface PollResult {
  downloaded: number;
  cleaned: number;
  errors: number;
  /** Unmarked packages seen but not settled yet (a second poll after `settle` may take them). */
  settling: number;
}

interface Journal {
  name: string;
  /** Where the package was renamed to on the server (the claim); absent in journals of older versions. */
  claimed?: string;
  size: number;
  mtimeMs: number;
  sha256: string;
  marker: boolean;
  handed: boolean;
}

const STAGING = ".remote-incoming";
const MAX_MARKER_BYTES = 4096;
/** A package that failed (marker mismatch, unreadable) is downloaded again when it changed, or after this long. */
const FAILED_RETRY_MS = 5 * 60_000;

const errCode = (err: unknown) => errorCode(err, "ERROR");

/** Polls one remote folder; keeps what it learnt between polls (settle observations, failures). */
export class RemoteInbox {
  private readonly staging: string;
  private readonly seen = new Map<string, { size: number; mtimeMs: number; since: number }>();
  private readonly failed = new Map<string, { key: string; at: number }>();
  private readonly now: () => number;

  constructor(
    private readonly opts: RemoteInboxOptions,
    private readonly emit: (e: RemoteInboxEvent) => void = () => {},
  ) {
    this.staging = join(opts.drop, STAGING);
    this.now = opts.now ?? Date.now;
  }

  private remote(name: string): string {
    return this.opts.inbox === "." ? name : posix.join(this.opts.inbox, name);
  }

  private get claims(): string {
    return this.opts.claims ?? posix.join(this.opts.processed, ".claiming");
  }

  /** Put a claimed package back in the inbox (it did not check out): under its name when that is still free. */
  private async unclaim(dest: Destination, j: { name: string; claimed?: string }): Promise<void> {
    if (!j.claimed) return;
    if (await dest.exists(this.remote(j.name))) return; // a new upload of that name: ours stays in the claims folder for a person
    if (await dest.exists(`${j.claimed}.sha256`)) await dest.rename(`${j.claimed}.sha256`, this.remote(`${j.name}.sha256`)).catch(() => {});
    await dest.rename(j.claimed, this.remote(j.name)).catch(() => {});
  }

  /** One poll: finish what an earlier poll (or a crashed run) left, then download every complete package. */
  async poll(dest: Destination, signal?: AbortSignal): Promise<PollResult> {
    const res: PollResult = { downloaded: 0, cleaned: 0, errors: 0, settling: 0 };
    await mkdir(this.staging, { recursive: true, mode: 0o700 });
    const listing = new Map<string, RemoteEntry>();
    for (const e of await dest.list(this.opts.inbox)) listing.set(e.name, e);
    const busy = await this.resumeJournals(dest, listing, res);
    // A name with a path separator could only come from a broken or hostile server: never used as a local name.
    const names = [...listing.values()].filter((e) => e.isFile && isCandidateName(e.name) && !/[/\\\0]/.test(e.name) && !busy.has(e.name)).map((e) => e.name).sort();
    this.forgetMissing(new Set(names));
    for (const name of names) {
      if (signal?.aborted) break;
      try {
        await this.takeOne(dest, listing, name, res, signal);
      } catch (err) {
        if (signal?.aborted) throw err;
        res.errors++;
        this.emit({ event: "error", file: name, code: errCode(err), message: `Remote package not taken, retried at the next poll: ${(err as Error).message}` });
        // A lost connection fails every following request too: stop this poll, the caller reconnects.
        if (dest.connectionFailure) throw err;
      }
    }
    return res;
  }

  private forgetMissing(present: Set<string>): void {
    for (const k of this.seen.keys()) if (!present.has(k)) this.seen.delete(k);
    for (const k of this.failed.keys()) if (!present.has(k)) this.failed.delete(k);
  }

  /** Journals of packages downloaded but not finished; returns the names still in hand. */
  private async resumeJournals(dest: Destination, listing: Map<string, RemoteEntry>, res: PollResult): Promise<Set<string>> {
    const busy = new Set<string>();
    for (const f of await readdir(this.staging)) {
      if (f.endsWith(".download")) {
        await unlink(join(this.staging, f)).catch(() => {});
        continue;
      }
      if (!f.endsWith(".json")) continue;
      let j: Journal;
      try {
        j = JSON.parse(await readFile(join(this.staging, f), "utf8")) as Journal;
      } catch {
        await unlink(join(this.staging, f)).catch(() => {});
        continue;
      }
      try {
        if (j.claimed && !j.sha256) {
          // Died between the claim and the end of the download: give it back to the inbox, taken again as new.
          await this.unclaim(dest, j);
          await unlink(this.journalPath(j.name)).catch(() => {});
          continue;
        }
        const remote = listing.get(j.name);
        const claimedThere = j.claimed ? await dest.exists(j.claimed) : false;
        const same = j.claimed ? claimedThere : remote !== undefined && remote.size === j.size && remote.mtimeMs === j.mtimeMs;
        if (!j.handed) {
          const staged = await stat(join(this.staging, j.name)).then(() => true, () => false);
          // Without the staged zip the rename into the drop happened before a crash: it is handed over.
          if (staged && !(await this.handOver(j))) {
            busy.add(j.name);
            continue;
          }
          if (!staged) await this.writeJournal({ ...j, handed: true });
        }
        // A different remote file of that name is a new delivery: left alone, taken as new.
        if (same || (!j.claimed && remote === undefined && listing.has(`${j.name}.sha256`)) || (j.claimed && (await dest.exists(`${j.claimed}.sha256`)))) {
          busy.add(j.name);
          await this.cleanRemote(dest, j, same, res);
        }
        await unlink(this.journalPath(j.name)).catch(() => {});
      } catch (err) {
        busy.add(j.name);
        res.errors++;
        this.emit({ event: "error", file: j.name, id: j.sha256.slice(0, 12), code: errCode(err), message: `Cannot finish the remote package, retried at the next poll: ${(err as Error).message}` });
      }
    }
    return busy;
  }

  private async takeOne(dest: Destination, listing: Map<string, RemoteEntry>, name: string, res: PollResult, signal?: AbortSignal): Promise<void> {
    const entry = listing.get(name)!;
    const markerEntry = listing.get(`${name}.sha256`);
    let expected: string | undefined;
    if (markerEntry?.isFile) {
      const raw = await readSmall(dest, this.remote(`${name}.sha256`));
      expected = parseSidecar(raw)?.sha256;
      if (!expected) {
        if (this.failedBefore(name, `${entry.size}:${entry.mtimeMs}:${markerEntry.mtimeMs}`)) return;
        res.errors++;
        this.emit({ event: "error", file: name, code: "REMOTE_MARKER_UNREADABLE", message: "The remote .sha256 marker is not a sha256sum line; the package is left on the server" });
        return;
      }
    } else {
      const o = this.seen.get(name);
      if (!o || o.size !== entry.size || o.mtimeMs !== entry.mtimeMs) {
        this.seen.set(name, { size: entry.size, mtimeMs: entry.mtimeMs, since: this.now() });
        res.settling++;
        return;
      }
      if (this.now() - o.since < this.opts.settleSeconds * 1000) {
        res.settling++;
        return;
      }
    }
    const key = `${entry.size}:${entry.mtimeMs}:${expected ?? ""}`;
    if (this.failedBefore(name, key)) return;

    // The server-side claim: one rename out of the inbox into the claims folder. Whoever renames first has it;
    // the journal names the claim first, so a crash at any point gives the package back or finishes it.
    await dest.mkdirp(this.claims);
    const claimed = posix.join(this.claims, `${randomBytes(6).toString("hex")}-${name}`);
    await this.writeJournal({ name, claimed, size: entry.size, mtimeMs: entry.mtimeMs, sha256: "", marker: expected !== undefined, handed: false });
    try {
      await dest.rename(this.remote(name), claimed);
    } catch (err) {
      await unlink(this.journalPath(name)).catch(() => {});
      if (!(await dest.exists(this.remote(name)))) return; // another watcher claimed it first
      throw err;
    }
    if (markerEntry?.isFile) await dest.rename(this.remote(`${name}.sha256`), `${claimed}.sha256`).catch(() => {});

    const t0 = this.now();
    const tmp = join(this.staging, `${name}.download`);
    const giveBack = async () => {
      await this.unclaim(dest, { name, claimed });
      await unlink(this.journalPath(name)).catch(() => {});
    };
    const got = await dest.download(claimed, tmp, { signal }).catch(async (err) => {
      await unlink(tmp).catch(() => {});
      await giveBack();
      throw err;
    });
    const reject = async (code: string, message: string, id?: string) => {
      await unlink(tmp).catch(() => {});
      await giveBack();
      this.failed.set(name, { key, at: this.now() });
      res.errors++;
      this.emit({ event: "error", file: name, ...(id ? { id } : {}), code, message });
    };
    if (expected !== undefined) {
      if (got.sha256 !== expected) {
        return reject("REMOTE_MARKER_MISMATCH", `Downloaded package ${got.sha256.slice(0, 12)} does not match its .sha256 marker (${expected.slice(0, 12)}); left on the server`, got.sha256.slice(0, 12));
      }
    } else {
      const after = await dest.stat(claimed);
      if (!after || after.size !== entry.size || after.mtimeMs !== entry.mtimeMs || got.size !== entry.size) {
        await unlink(tmp).catch(() => {});
        await giveBack();
        this.seen.delete(name);
        res.settling++;
        this.emit({ event: "waiting", file: name, why: "changed while downloading; taken when it settles" });
        return;
      }
      if (!(await readsAsZip(tmp))) {
        return reject("REMOTE_NOT_A_ZIP", "Stable remote file without marker does not read as a zip; left on the server", got.sha256.slice(0, 12));
      }
    }
    this.failed.delete(name);
    this.seen.delete(name);
    const j: Journal = { name, claimed, size: entry.size, mtimeMs: entry.mtimeMs, sha256: got.sha256, marker: expected !== undefined, handed: false };
    // Staged zip first, then its journal: a crash between the two leaves a staged zip without journal, which
    // the next download of the same package simply replaces (the remote copy was not touched).
    await rename(tmp, join(this.staging, name));
    await syncPath(this.staging);
    await this.writeJournal(j);
    res.downloaded++;
    this.emit({ event: "downloaded", id: got.sha256.slice(0, 12), file: name, bytes: got.size, marker: j.marker, durationMs: this.now() - t0 });
    if (!(await this.handOver(j))) return;
    await this.cleanRemote(dest, j, true, res);
    await unlink(this.journalPath(name)).catch(() => {});
  }

  /** Whether `name` failed in the same state recently (then it is not downloaded again yet). */
  private failedBefore(name: string, key: string): boolean {
    const f = this.failed.get(name);
    return f !== undefined && f.key === key && this.now() - f.at < FAILED_RETRY_MS;
  }

  private journalPath(name: string): string {
    return join(this.staging, `${name}.json`);
  }

  private async writeJournal(j: Journal): Promise<void> {
    const tmp = join(this.staging, `.${randomBytes(6).toString("hex")}.tmp`);
    await writeFile(tmp, JSON.stringify(j), { mode: 0o600, flush: true });
    await rename(tmp, this.journalPath(j.name));
    await syncPath(this.staging);
  }

  /** Put a staged package into the drop with its marker; false when a package of that name is still queued there. */
  private async handOver(j: Journal): Promise<boolean> {
    const target = join(this.opts.drop, j.name);
    if (await stat(target).then(() => true, () => false)) {
      this.emit({ event: "waiting", file: j.name, why: "a package of the same name is still queued in the drop folder; handed over later" });
      return false;
    }
    const markerTmp = join(this.opts.drop, `.${randomBytes(6).toString("hex")}.sha256.tmp`);
    await writeFile(markerTmp, formatSidecar(j.sha256, j.name), { mode: 0o600, flush: true });
    await rename(markerTmp, `${target}.sha256`);
    await rename(join(this.staging, j.name), target);
    await syncPath(this.opts.drop);
    await this.writeJournal({ ...j, handed: true });
    return true;
  }

  /** Move or delete the remote copy (and its marker). `zipStillThere`: the remote zip is the one downloaded. */
  private async cleanRemote(dest: Destination, j: Journal, zipStillThere: boolean, res: PollResult): Promise<void> {
    const zip = j.claimed ?? this.remote(j.name);
    const marker = `${zip}.sha256`;
    const hasMarker = await dest.exists(marker);
    if (this.opts.after === "delete") {
      if (zipStillThere) await dest.remove(zip);
      if (hasMarker) await dest.remove(marker);
    } else {
      await dest.mkdirp(this.opts.processed);
      let target = posix.join(this.opts.processed, j.name);
      if (await dest.exists(target)) {
        const stamp = new Date(this.now()).toISOString().replace(/[-:]/g, "").replace(/\..*$/, "");
        target = posix.join(this.opts.processed, j.name.replace(/(\.zip)?$/i, `-${stamp}$1`));
      }
      if (zipStillThere) await dest.rename(zip, target);
      if (hasMarker) await dest.rename(marker, `${target}.sha256`);
    }
    if (zipStillThere) {
      res.cleaned++;
      this.emit({ event: "remote-cleaned", id: j.sha256.slice(0, 12), file: j.name, action: this.opts.after === "delete" ? "deleted" : "moved" });
    }
  }
}

/** Read a small remote file (a marker), at most 4 KiB. */
async function readSmall(dest: Destination, path: string): Promise<string> {
  const r = await dest.openRead(path);
  try {
    return (await r.read(MAX_MARKER_BYTES, 0)).toString("utf8");
  } finally {
    await r.close().catch(() => {});
  }
}

/** The remote folder processed packages are moved to by default: `processed` beside the inbox (inside it when the inbox is the login or root folder). */
export function defaultProcessedFolder(inbox: string): string {
  if (inbox === "." || inbox === "/" || inbox === "") return posix.join(inbox || ".", "processed");
  const parent = posix.dirname(inbox);
  return parent === "." ? "processed" : posix.join(parent, "processed");
}
