import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { link, open, readFile, rm, stat, unlink, utimes } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, dirname, join } from "node:path";
import { InterruptedError, LocalIoError } from "../errors.js";
import { msg } from "../i18n/index.js";
import { isOwnerGone, processStartTime, type ProcessIdentity } from "./process.js";

/** What a lock file holds: who took it, provable later (pid + host + process start time). */
export interface LockOwner extends ProcessIdentity {
  token: string;
  takenAt: string;
  /** What the lock protects, for the person reading a stuck lock. */
  purpose: string;
}

/** Options of acquireLock. */
export interface LockOptions {
  /** Give up after this long (a watcher never waits unbounded): LOCK_TIMEOUT, retryable. */
  timeoutMs: number;
  /** A lock of another host whose file was not refreshed for this long is broken (its owner cannot be probed). */
  staleMs?: number;
  signal?: AbortSignal;
  purpose?: string;
}

/** A held lock. */
export interface Lock {
  path: string;
  owner: LockOwner;
  /** Keep the lock visibly alive for other hosts (touch its mtime). */
  refresh(): Promise<void>;
  release(): Promise<void>;
}

const MY_START = processStartTime(process.pid);

/**
 * THE lock: `path` created atomically with its owner record already inside (written aside, hard-linked into
 * place, so a lock never exists without an owner). A lock whose owner is provably gone (same host: pid not
 * running or started at another time) is broken at once; another host's lock when not refreshed for `staleMs`;
 * an unreadable lock file (not JSON) is broken too. Waits at most `timeoutMs`; aborts on `signal`.
 */
export async function acquireLock(path: string, opts: LockOptions): Promise<Lock> {
  const host = hostname();
  const owner: LockOwner = { host, pid: process.pid, start: MY_START, token: randomBytes(8).toString("hex"), takenAt: new Date().toISOString(), purpose: opts.purpose ?? basename(path) };
  const tmp = join(dirname(path), `.${basename(path)}.${owner.token}.tmp`);
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await fh.writeFile(JSON.stringify(owner));
  } finally {
    await fh.close();
  }
  const deadline = Date.now() + opts.timeoutMs;
  const staleMs = opts.staleMs ?? 120_000;
  try {
    for (let attempt = 0; ; attempt++) {
      if (opts.signal?.aborted) throw new InterruptedError();
      try {
        await link(tmp, path);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const holder = await readHolder(path);
      if (holder === "gone") continue;
      if (holder === "unreadable" || holderIsStale(holder, host, staleMs)) {
        await breakLock(path, holder);
        continue;
      }
      if (Date.now() >= deadline) {
        const who = typeof holder === "object" ? `${holder.owner.purpose} held by pid ${holder.owner.pid} on ${holder.owner.host} since ${holder.owner.takenAt}` : "held";
        throw new LocalIoError("LOCK_TIMEOUT", msg("lock.timeout", { lock: basename(path), seconds: Math.round(opts.timeoutMs / 1000), who }), {
          hint: msg("lock.timeout.hint"),
          retryable: true,
        });
      }
      await pause(Math.min(5 + attempt * 5, 100), opts.signal);
    }
  } finally {
    await unlink(tmp).catch(() => {});
  }
  return {
    path,
    owner,
    refresh: async () => {
      const now = new Date();
      await utimes(path, now, now).catch(() => {});
    },
    release: async () => {
      // Only our own lock is removed: a lock broken and re-taken by someone else meanwhile stays theirs.
      const h = await readHolder(path);
      if (typeof h === "object" && h.owner.token === owner.token) await rm(path, { force: true });
    },
  };
}

/** Run `fn` holding the lock at `path`. */
export async function withLock<T>(path: string, opts: LockOptions, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(path, opts);
  try {
    return await fn();
  } finally {
    await lock.release().catch(() => {});
  }
}

type Holder = { owner: LockOwner; mtimeMs: number } | "unreadable" | "gone";

async function readHolder(path: string): Promise<Holder> {
  try {
    const st = await stat(path);
    const owner = JSON.parse(await readFile(path, "utf8")) as LockOwner;
    if (typeof owner?.pid !== "number" || typeof owner.host !== "string" || typeof owner.token !== "string") return "unreadable";
    return { owner: { ...owner, start: typeof owner.start === "string" ? owner.start : "" }, mtimeMs: st.mtimeMs };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "gone";
    return "unreadable";
  }
}

function holderIsStale(h: { owner: LockOwner; mtimeMs: number }, host: string, staleMs: number): boolean {
  const gone = isOwnerGone(h.owner, host);
  if (gone !== undefined) return gone;
  return Date.now() - h.mtimeMs > staleMs;
}

/** Remove a stale lock, unless it changed meanwhile (someone else broke and re-took it). */
async function breakLock(path: string, seen: Holder): Promise<void> {
  const now = await readHolder(path);
  if (typeof seen === "object" && (typeof now !== "object" || now.owner.token !== seen.owner.token)) return;
  if (seen === "unreadable" && now !== "unreadable") return;
  await rm(path, { force: true });
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((res) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      res();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
