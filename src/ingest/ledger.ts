import { createHash, createHmac, randomBytes } from "node:crypto";
import { constants, createReadStream } from "node:fs";
import { link, open, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { readJsonFile, readPrivateFile, writeJsonAtomic } from "../util/atomic-write.js";
import { withLock } from "../util/lock.js";

/** `prev` of the first record of a log. */
export const GENESIS_HASH = "0".repeat(64);

/** One audit record (a JSON line). `prev` is the SHA-256 of the previous line's exact bytes; `mac` keys the line. */
export interface AuditRecord {
  time: string;
  event: string;
  [field: string]: unknown;
  prev: string;
}

/**
 * Where an audit log and its secrets live: the log, the HMAC key (0600) and the head checkpoint, all in the
 * watcher's state folder, where no uploader can write. Without a key file the log is chained but not keyed.
 */
export interface AuditLog {
  file: string;
  keyFile?: string;
  headFile?: string;
}

/** The checkpoint of the log's head, rewritten after every append: detects a removed tail. */
interface AuditHead {
  format: "scanbridge-audit-head";
  records: number;
  head: string;
  mac: string;
}

/** Result of checking an audit log. */
export interface AuditCheck {
  ok: boolean;
  records: number;
  /** SHA-256 of the last line. */
  head: string;
  /** Every line carries a valid HMAC under the state folder's key. */
  keyed: boolean;
  /** The head checkpoint was found and matched. */
  checkpoint: "match" | "absent" | "mismatch";
  broken: Array<{ line: number; reason: string }>;
}

/** The audit log, key and head checkpoint of a state folder (`file` overrides the log's place). */
export function auditLogIn(stateDir: string, file?: string): AuditLog {
  return { file: file ?? join(stateDir, "audit.jsonl"), keyFile: join(stateDir, "audit.key"), headFile: join(stateDir, "audit.head.json") };
}

/** SHA-256 hex of one audit line (without its newline). */
export function hashLine(line: string): string {
  return createHash("sha256").update(line, "utf8").digest("hex");
}

const MAC_RE = /,"mac":"([0-9a-f]{64})"\}$/;
const LOCK_TIMEOUT_MS = 30_000;

const asLog = (log: AuditLog | string): AuditLog => (typeof log === "string" ? { file: log } : log);
const mac = (key: Buffer, text: string) => createHmac("sha256", key).update(text, "utf8").digest("hex");

/** The HMAC key of a log: read, or created once (0600, exclusively, so two watchers agree on one key). */
async function loadKey(keyFile: string, create: boolean): Promise<Buffer | undefined> {
  const have = await readPrivateFile(keyFile);
  if (have) return Buffer.from(have.toString("latin1").trim(), "hex");
  if (!create) return undefined;
  const tmp = join(dirname(keyFile), `.audit.key.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await fh.writeFile(randomBytes(32).toString("hex") + "\n");
    await fh.chmod(0o600);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await link(tmp, keyFile);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  } finally {
    await unlink(tmp).catch(() => {});
  }
  return loadKey(keyFile, false);
}

/** The last complete line of a file, or undefined when it is empty. */
async function lastLine(file: string): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
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

/** The hash of line `index` (0-based) of a file, and how many lines it has: streamed, for the rare check after a crash. */
async function lineHashAt(file: string, index: number): Promise<{ hash?: string; lines: number }> {
  let n = 0;
  let hash: string | undefined;
  const rl = createInterface({ input: createReadStream(file, { encoding: "utf8" }), crlfDelay: Infinity });
  for await (const line of rl) {
    if (n === index) hash = hashLine(line);
    n++;
  }
  return { hash, lines: n };
}

async function countLines(file: string): Promise<number> {
  let n = 0;
  try {
    const rl = createInterface({ input: createReadStream(file, { encoding: "utf8" }), crlfDelay: Infinity });
    for await (const _ of rl) n++;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  return n;
}

/** Appends of this process, per file, queued so they do not poll the lock file against each other. */
const queues = new Map<string, Promise<unknown>>();

/**
 * Append one record to a JSON Lines audit log: chained to the previous line, keyed with the state folder's HMAC
 * key, under the one lock (bounded wait, abortable), synced to disk; then the head checkpoint is rewritten.
 */
export function appendAudit(log: AuditLog | string, record: { event: string; [field: string]: unknown }, opts: { signal?: AbortSignal } = {}): Promise<AuditRecord> {
  const l = asLog(log);
  const prev = queues.get(l.file) ?? Promise.resolve();
  const next = prev.then(
    () => appendLocked(l, record, opts.signal),
    () => appendLocked(l, record, opts.signal),
  );
  const tail = next.catch(() => {});
  queues.set(l.file, tail);
  void tail.then(() => {
    if (queues.get(l.file) === tail) queues.delete(l.file);
  });
  return next;
}

async function appendLocked(log: AuditLog, record: { event: string; [field: string]: unknown }, signal?: AbortSignal): Promise<AuditRecord> {
  return withLock(`${log.file}.lock`, { timeoutMs: LOCK_TIMEOUT_MS, signal, purpose: "audit log" }, async () => {
    const key = log.keyFile ? await loadKey(log.keyFile, true) : undefined;
    const last = await lastLine(log.file);
    let prev = last === undefined ? GENESIS_HASH : hashLine(last);
    let records: number | undefined;
    if (key && log.headFile) {
      const head = await readJsonFile<AuditHead>(log.headFile, "the audit head checkpoint").catch(() => undefined);
      if (head && head.mac === mac(key, `${head.records}:${head.head}`)) {
        records = head.records + 1;
        if (head.head !== prev) {
          // A crash between appending a line and rewriting the checkpoint leaves the log one step ahead of it:
          // the checkpointed record is still in place, so the log was only extended and chains on as it is.
          // Otherwise (cut or rewritten) chain to the checkpoint, so the break stays visible to `audit verify`
          // instead of being sealed over by this record.
          const extended = await lineHashAt(log.file, head.records - 1);
          if (extended.hash === head.head && extended.lines > head.records) records = extended.lines + 1;
          else prev = head.head;
        }
      }
    }
    records ??= (await countLines(log.file)) + 1;
    const full: AuditRecord = { time: new Date().toISOString(), ...record, prev };
    const body = JSON.stringify(full);
    const line = key ? `${body.slice(0, -1)},"mac":"${mac(key, body)}"}` : body;
    const fh = await open(log.file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    try {
      await fh.write(line + "\n");
      await fh.datasync();
    } finally {
      await fh.close();
    }
    if (key && log.headFile) {
      const h = hashLine(line);
      const head: AuditHead = { format: "scanbridge-audit-head", records, head: h, mac: mac(key, `${records}:${h}`) };
      await writeJsonAtomic(log.headFile, head);
    }
    return full;
  });
}

/**
 * Check every line of an audit log: valid JSON, `prev` equal to the hash of the line before, and (when the log's
 * key exists) a valid HMAC on every line and a head checkpoint that matches: a rewritten log (chain recomputed
 * without the key) and a removed tail are both reported.
 */
export async function verifyAuditLog(log: AuditLog | string): Promise<AuditCheck> {
  const l = asLog(log);
  const key = l.keyFile ? await loadKey(l.keyFile, false) : undefined;
  const rl = createInterface({ input: createReadStream(l.file, { encoding: "utf8" }), crlfDelay: Infinity });
  let prev = GENESIS_HASH;
  let n = 0;
  const broken: AuditCheck["broken"] = [];
  const hashes: string[] = [];
  for await (const line of rl) {
    n++;
    if (line.length === 0) {
      broken.push({ line: n, reason: "empty line" });
      prev = hashLine(line);
      hashes.push(prev);
      continue;
    }
    let rec: Partial<AuditRecord> | undefined;
    try {
      rec = JSON.parse(line) as Partial<AuditRecord>;
    } catch {
      broken.push({ line: n, reason: "not valid JSON" });
    }
    if (rec && rec.prev !== prev) broken.push({ line: n, reason: "prev does not match the hash of the line before (a line was changed, removed or inserted)" });
    if (rec && key) {
      const m = MAC_RE.exec(line);
      if (!m) broken.push({ line: n, reason: "no HMAC (written without the key, or by someone else)" });
      else if (mac(key, line.slice(0, m.index) + "}") !== m[1]) broken.push({ line: n, reason: "HMAC does not match (the line was rewritten without the key)" });
    }
    prev = hashLine(line);
    hashes.push(prev);
  }
  let checkpoint: AuditCheck["checkpoint"] = "absent";
  if (key && l.headFile) {
    const head = await readJsonFile<AuditHead>(l.headFile, "the audit head checkpoint").catch(() => undefined);
    if (!head) {
      if (n > 0) broken.push({ line: n, reason: "the head checkpoint is missing or unreadable (cannot tell whether the tail was removed)" });
    } else if (head.mac !== mac(key, `${head.records}:${head.head}`)) {
      checkpoint = "mismatch";
      broken.push({ line: n, reason: "the head checkpoint's HMAC does not match (it was rewritten)" });
    } else if (n < head.records) {
      checkpoint = "mismatch";
      broken.push({ line: n, reason: `the log ends at record ${n} but ${head.records} were written: its tail was removed` });
    } else if (hashes[head.records - 1] !== head.head) {
      checkpoint = "mismatch";
      broken.push({ line: head.records, reason: "record differs from the checkpointed head (the log was rewritten)" });
    } else checkpoint = "match";
  }
  return { ok: broken.length === 0, records: n, head: prev, keyed: key !== undefined, checkpoint, broken };
}
