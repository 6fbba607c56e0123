import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, readFile, stat, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { isProcessAlive } from "../util/process.js";

/** `prev` of the first record of a log. */
export const GENESIS_HASH = "0".repeat(64);

/** One audit record (a JSON line). `prev` is the SHA-256 of the previous line's exact bytes. */
export interface AuditRecord {
  time: string;
  event: string;
  [field: string]: unknown;
  prev: string;
}

/** Result of checking an audit log's hash chain. */
export interface AuditCheck {
  ok: boolean;
  records: number;
  /** SHA-256 of the last line: note it elsewhere to detect truncation or a rewritten tail later. */
  head: string;
  broken: Array<{ line: number; reason: string }>;
}

/** SHA-256 hex of one audit line (without its newline). */
export function hashLine(line: string): string {
  return createHash("sha256").update(line, "utf8").digest("hex");
}

const LOCK_STALE_MS = 30_000;


/** Take `<file>.lock` (exclusive create), so several watchers can share one log; returns the release function. */
async function lockFile(file: string): Promise<() => Promise<void>> {
  const lock = `${file}.lock`;
  const token = `${hostname()} ${process.pid} ${randomBytes(6).toString("hex")}\n`;
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(lock, "wx", 0o600);
      await fh.writeFile(token);
      await fh.close();
      return async () => {
        await unlink(lock).catch(() => {});
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      try {
        const st = await stat(lock);
        const [host, pid] = (await readFile(lock, "utf8")).split(" ");
        // A holder killed with -9 on this host leaves its lock behind: take it over at once.
        const deadHere = host === hostname() && Number(pid) > 0 && !isProcessAlive(Number(pid));
        if (deadHere || Date.now() - st.mtimeMs > LOCK_STALE_MS) await unlink(lock).catch(() => {});
      } catch {
        // gone meanwhile: retry at once
      }
      await sleep(Math.min(5 + attempt * 2, 50));
    }
  }
}

/** The last complete line of a file, or undefined when it is empty. */
async function lastLine(file: string): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(file, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    const { size } = await fh.stat();
    if (size === 0) return undefined;
    for (let window = 64 * 1024; ; window *= 4) {
      const start = Math.max(0, size - window);
      const buf = Buffer.alloc(size - start);
      await fh.read(buf, 0, buf.length, start);
      const text = buf.toString("utf8").replace(/\n$/, "");
      const nl = text.lastIndexOf("\n");
      if (nl >= 0) return text.slice(nl + 1);
      if (start === 0) return text;
    }
  } finally {
    await fh.close();
  }
}

/** Appends of this process, per file, queued so they do not poll the lock file against each other. */
const queues = new Map<string, Promise<unknown>>();

/** Append one record to a JSON Lines audit log, chained to the previous line, under a lock, synced to disk. */
export function appendAudit(file: string, record: { event: string; [field: string]: unknown }): Promise<AuditRecord> {
  const prev = queues.get(file) ?? Promise.resolve();
  const next = prev.then(
    () => appendLocked(file, record),
    () => appendLocked(file, record),
  );
  const tail = next.catch(() => {});
  queues.set(file, tail);
  void tail.then(() => {
    if (queues.get(file) === tail) queues.delete(file);
  });
  return next;
}

async function appendLocked(file: string, record: { event: string; [field: string]: unknown }): Promise<AuditRecord> {
  const release = await lockFile(file);
  try {
    const last = await lastLine(file);
    const full: AuditRecord = { time: new Date().toISOString(), ...record, prev: last === undefined ? GENESIS_HASH : hashLine(last) };
    const fh = await open(file, "a", 0o640);
    try {
      await fh.write(JSON.stringify(full) + "\n");
      await fh.datasync();
    } finally {
      await fh.close();
    }
    return full;
  } finally {
    await release();
  }
}

/** Check every line of an audit log: valid JSON and `prev` equal to the hash of the line before. */
export async function verifyAuditLog(file: string): Promise<AuditCheck> {
  const rl = createInterface({ input: createReadStream(file, { encoding: "utf8" }), crlfDelay: Infinity });
  let prev = GENESIS_HASH;
  let n = 0;
  const broken: AuditCheck["broken"] = [];
  for await (const line of rl) {
    n++;
    if (line.length === 0) {
      broken.push({ line: n, reason: "empty line" });
      prev = hashLine(line);
      continue;
    }
    let rec: Partial<AuditRecord> | undefined;
    try {
      rec = JSON.parse(line) as Partial<AuditRecord>;
    } catch {
      broken.push({ line: n, reason: "not valid JSON" });
    }
    if (rec && rec.prev !== prev) broken.push({ line: n, reason: "prev does not match the hash of the line before (a line was changed, removed or inserted)" });
    prev = hashLine(line);
  }
  return { ok: broken.length === 0, records: n, head: prev, broken };
}
