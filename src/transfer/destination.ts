import { isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError } from "../errors.js";
import { msg } from "../i18n/index.js";
import { isEmailAddress } from "../notify/address.js";

/** A parsed `--to` value. */
export type DestinationSpec =
  | { kind: "local"; folder: string }
  | { kind: "sftp"; user: string | undefined; host: string; port: number; folder: string };

/** What stat reports about a remote path. */
export interface RemoteStat {
  size: number;
  isDirectory: boolean;
  /** Modification time, in the server's precision (whole seconds over SFTP). */
  mtimeMs: number;
}

/** One entry of a listed folder. `mtimeMs` has the server's precision (whole seconds over SFTP). */
export interface RemoteEntry {
  name: string;
  size: number;
  mtimeMs: number;
  isFile: boolean;
  isDirectory: boolean;
}

/** What a download wrote: bytes and their SHA-256 (hex), hashed while writing. */
export interface DownloadResult {
  size: number;
  sha256: string;
}

/** An open remote file being written at arbitrary offsets; several writes may be in flight. */
export interface RemoteWriter {
  /** Write `data` at `position`; resolves when the server acknowledged it. */
  write(data: Buffer, position: number): Promise<void>;
  /**
   * Flush to disk, close, and return the file's size as the destination saw it just before closing (over SFTP:
   * fsync, fstat and close go out together, one round trip). Call after every write was acknowledged.
   */
  finish(): Promise<number>;
  /** Close without the checks (cleanup after a failure). */
  close(): Promise<void>;
}

/** An open remote file being read at arbitrary offsets; several reads may be in flight. */
export interface RemoteReader {
  /** Read up to `length` bytes at `position`; a short result only at end of file. */
  read(length: number, position: number): Promise<Buffer>;
  close(): Promise<void>;
}

/** A place packages are uploaded to. Paths are POSIX paths as the destination understands them. */
export interface Destination {
  readonly kind: "local" | "sftp";
  /** The destination as a URL without credentials, for receipts and messages. */
  readonly url: string;
  /** The folder the package goes into. */
  readonly folder: string;
  /** How many writes/reads to keep in flight and how big each is. */
  readonly window: { requests: number; chunkSize: number };
  /**
   * The connection's first failure once it has failed (lost, timed out, interrupted): every later request fails
   * too, so a caller stops and reconnects. Undefined while usable (always, for a local folder).
   */
  readonly connectionFailure: Error | undefined;
  /** Path of a file named `name` inside `folder`. */
  pathOf(name: string): string;
  stat(path: string): Promise<RemoteStat | undefined>;
  exists(path: string): Promise<boolean>;
  /** Create the folder and its parents (mkdir -p). */
  mkdirp(path: string): Promise<void>;
  /** Open for writing; `truncate` empties or creates it, otherwise an existing file keeps its bytes. `lane` picks a parallel channel. */
  openWrite(path: string, opts: { truncate: boolean; lane?: number }): Promise<RemoteWriter>;
  openRead(path: string, opts?: { lane?: number }): Promise<RemoteReader>;
  /**
   * Open parallel channels 0..n-1 ahead of use; resolves to how many the server granted (at least 1). A server
   * that refuses extra channels (OpenSSH MaxSessions) is not an error: the upload uses fewer. Optional: a
   * destination without channels (a local folder) has one lane.
   */
  openLanes?(n: number): Promise<number>;
  /**
   * Round-trip time to the destination in milliseconds, measured with one request the server answers at once (an
   * SSH keepalive), or undefined when it cannot be measured. Optional: a local folder has none.
   */
  measureRtt?(): Promise<number | undefined>;
  /** A first, low estimate of the round-trip time from the login's timing (milliseconds), before any request. */
  readonly loginRttMs?: number;
  /** Rename, replacing `to` if it exists; reports whether the replacement was atomic. */
  rename(from: string, to: string): Promise<{ atomic: boolean }>;
  /** Remove a file; a missing file is fine. */
  remove(path: string): Promise<void>;
  /** Entries of a folder (without "." and ".."). */
  list(folder: string): Promise<RemoteEntry[]>;
  /** Copy a remote file to a local file (created or emptied; flushed to disk), hashing it on the way. */
  download(remotePath: string, localPath: string, opts?: { signal?: AbortSignal; lane?: number }): Promise<DownloadResult>;
  /** Write a small file whole (the .sha256 marker); fails with REMOTE_SIZE_MISMATCH when the destination stored another size. */
  writeSmall(path: string, data: Buffer): Promise<void>;
  /** Release connections; the object is not used afterwards. */
  close(): Promise<void>;
}

/** Where `send` can deliver: an upload destination, or e-mail (`mailto:`) for small packages. */
export type SendTarget = DestinationSpec | { kind: "email"; recipients: string[] };

/** A URL scheme prefix ("ftp:", "mailto:"): two letters or more, so a Windows drive ("C:\scans") is not one. */
const SCHEME_RE = /^([a-z][a-z0-9+.-]+):/i;

/** Parse `send --to`: `mailto:ADDR[,ADDR]` is e-mail, anything else as parseDestination. */
export function parseSendTarget(input: string, cwd: string): SendTarget {
  const s = input.trim();
  if (!/^mailto:/i.test(s)) return parseDestination(s, cwd);
  const rest = s.slice("mailto:".length);
  if (rest.includes("?") || rest.includes("#")) {
    throw new UsageError("BAD_DESTINATION", msg("dest.mailtoFields"), { hint: msg("dest.mailto.hintList") });
  }
  let decoded: string;
  try {
    decoded = decodeURIComponent(rest);
  } catch {
    throw new UsageError("BAD_DESTINATION", msg("dest.mailtoInvalid"), { hint: msg("dest.mailto.hint") });
  }
  const recipients = [...new Set(decoded.split(",").map((a) => a.trim().toLowerCase()).filter(Boolean))];
  if (recipients.length === 0) throw new UsageError("BAD_DESTINATION", msg("dest.mailtoEmpty"), { hint: msg("dest.mailto.hint") });
  const bad = recipients.filter((a) => !isEmailAddress(a));
  if (bad.length > 0) throw new UsageError("BAD_DESTINATION", msg("dest.notEmail", { value: bad[0]! }), { hint: msg("dest.mailto.hintList") });
  return { kind: "email", recipients };
}

/**
 * Parse `sftp://user@host:port/path`, `file:///path` or a plain local folder (relative to `cwd`). Any other scheme
 * (`ftp:`, `https:`, `mailto:` here, a misspelt `mailto`) is a usage error, never a folder name.
 */
export function parseDestination(input: string, cwd: string): DestinationSpec {
  const s = input.trim();
  if (s === "") throw new UsageError("BAD_DESTINATION", msg("dest.empty"));
  if (/^sftp:\/\//i.test(s)) {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw new UsageError("BAD_DESTINATION", msg("dest.sftpInvalid"), { hint: msg("dest.sftp.hint") });
    }
    if (u.password) {
      throw new UsageError("SECRET_ON_COMMAND_LINE", msg("dest.password"), {
        hint: msg("dest.password.hint"),
      });
    }
    if (!u.hostname) throw new UsageError("BAD_DESTINATION", msg("dest.sftpNoHost"), { hint: msg("dest.sftp.hint") });
    if (u.search || u.hash) throw new UsageError("BAD_DESTINATION", msg("dest.sftpQuery"));
    const port = u.port ? Number(u.port) : 22;
    const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
    // As OpenSSH's sftp(1) reads host:path: sftp://host/incoming is "incoming" in the login folder;
    // sftp://host//srv/in is the absolute /srv/in; sftp://host/~/in is "in" in the login folder too.
    // (curl differs: it reads sftp://host/incoming as the absolute /incoming.)
    let folder = decodeURIComponent(u.pathname);
    folder = folder.startsWith("//") ? folder.slice(1) : folder.replace(/^\/+/, "").replace(/^~(\/+|$)/, "");
    folder = folder.replace(/\/+$/, "");
    if (folder === "") folder = ".";
    return { kind: "sftp", user: u.username ? decodeURIComponent(u.username) : undefined, host, port, folder };
  }
  if (/^file:\/\//i.test(s)) {
    try {
      return { kind: "local", folder: fileURLToPath(s) };
    } catch {
      throw new UsageError("BAD_DESTINATION", msg("dest.fileInvalid"));
    }
  }
  const scheme = SCHEME_RE.exec(s)?.[1];
  if (scheme !== undefined) {
    if (scheme.toLowerCase() === "mailto") {
      throw new UsageError("BAD_DESTINATION", msg("dest.mailtoSendOnly"), { hint: msg("dest.mailtoSendOnly.hint") });
    }
    throw new UsageError("BAD_DESTINATION", msg("dest.scheme", { scheme }), {
      hint: msg("dest.scheme.hint"),
    });
  }
  if (!s.includes("/") && !s.includes("\\") && isEmailAddress(s)) {
    throw new UsageError("BAD_DESTINATION", msg("dest.looksLikeEmail"), { hint: msg("dest.looksLikeEmail.hint", { value: s }) });
  }
  return { kind: "local", folder: isAbsolute(s) ? s : resolve(cwd, s) };
}

/** The destination as a URL without secrets. */
export function formatDestination(spec: DestinationSpec): string {
  if (spec.kind === "local") return "file://" + encodeURI(spec.folder);
  const folder = spec.folder === "." ? "" : spec.folder;
  const host = spec.host.includes(":") ? `[${spec.host}]` : spec.host;
  return `sftp://${spec.user ? encodeURIComponent(spec.user) + "@" : ""}${host}:${spec.port}/${encodeURI(folder)}`;
}
