import { createHash, createHmac } from "node:crypto";
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { Client } from "ssh2";
import { NetworkError, UsageError } from "../errors.js";
import { msg } from "../i18n/index.js";
import { toNetworkError } from "./retry.js";

/** Host-key algorithms we accept, strongest first (the same list for probing and for connecting). */
export const HOST_KEY_ALGORITHMS = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];

/** One usable line of a known_hosts file. */
export interface KnownHostEntry {
  /** Host patterns (comma list) or a hashed "|1|salt|hash" field. */
  hosts: string;
  marker?: "@revoked" | "@cert-authority";
  keyType: string;
  /** The key blob (base64-decoded). */
  key: Buffer;
}

/** SHA-256 fingerprint of a public key blob, as OpenSSH prints it: "SHA256:" + unpadded base64. */
export function fingerprintOfKey(key: Buffer): string {
  return "SHA256:" + createHash("sha256").update(key).digest("base64").replace(/=+$/, "");
}

/** Normalise a pinned fingerprint ("SHA256:abc", "sha256:abc=", "abc") for comparison. */
export function normaliseFingerprint(fp: string): string {
  const s = fp.trim().replace(/^sha256:/i, "").replace(/=+$/, "");
  if (!/^[A-Za-z0-9+/]{43}$/.test(s)) {
    throw new UsageError("BAD_FINGERPRINT", msg("hostkey.badFingerprint"), {
      hint: msg("hostkey.badFingerprint.hint"),
    });
  }
  return "SHA256:" + s;
}

/** Key type named inside an SSH public key blob (its first string). */
export function keyTypeOf(key: Buffer): string {
  if (key.length < 4) return "unknown";
  const n = key.readUInt32BE(0);
  return key.subarray(4, 4 + n).toString("latin1");
}

/** Parse known_hosts text; malformed lines are skipped as OpenSSH does. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const parts = line.split(/\s+/);
    let marker: KnownHostEntry["marker"];
    if (parts[0] === "@revoked" || parts[0] === "@cert-authority") marker = parts.shift() as KnownHostEntry["marker"];
    if (parts.length < 3) continue;
    const key = Buffer.from(parts[2]!, "base64");
    if (key.length === 0 || keyTypeOf(key) !== parts[1]) continue;
    out.push({ hosts: parts[0]!, marker, keyType: parts[1]!, key });
  }
  return out;
}

/** The name a host is recorded under: "host" for port 22, "[host]:port" otherwise. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp("^" + pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$", "i");
  return re.test(name);
}

/** Whether a known_hosts host field matches host:port (plain patterns, negations and hashed entries). */
export function hostFieldMatches(field: string, host: string, port: number): boolean {
  const name = knownHostName(host, port);
  if (field.startsWith("|1|")) {
    const [, , salt, hash] = field.split("|");
    if (!salt || !hash) return false;
    const mac = createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64");
    return mac === hash;
  }
  let matched = false;
  for (const pat of field.split(",")) {
    if (pat.startsWith("!")) {
      if (globMatch(pat.slice(1), name)) return false;
    } else if (globMatch(pat, name)) matched = true;
  }
  return matched;
}

/** How a host key compares with what we know. */
export type HostKeyVerdict = "match" | "mismatch" | "unknown" | "revoked";

/** Where a host's expected key comes from. */
export interface HostKeyTrust {
  host: string;
  port: number;
  /** A pinned fingerprint ("SHA256:..."); when set, known_hosts is not consulted. */
  pinnedFingerprint?: string;
  /** known_hosts files to read (missing files are fine). */
  knownHostsFiles: string[];
}

/** Compare a presented host key blob with the pinned fingerprint or the known_hosts entries. */
export function checkHostKey(key: Buffer, trust: HostKeyTrust): HostKeyVerdict {
  if (trust.pinnedFingerprint) {
    return fingerprintOfKey(key) === normaliseFingerprint(trust.pinnedFingerprint) ? "match" : "mismatch";
  }
  const entries = trust.knownHostsFiles.flatMap((f) => (existsSync(f) ? parseKnownHosts(readFileSync(f, "utf8")) : []));
  const forHost = entries.filter((e) => e.marker !== "@cert-authority" && hostFieldMatches(e.hosts, trust.host, trust.port));
  if (forHost.some((e) => e.marker === "@revoked" && e.key.equals(key))) return "revoked";
  const plain = forHost.filter((e) => e.marker === undefined);
  if (plain.some((e) => e.key.equals(key))) return "match";
  // Any recorded key for this host that differs is a mismatch, whatever its type: fail closed.
  return plain.length > 0 ? "mismatch" : "unknown";
}

/** Key types recorded for the host in known_hosts, to ask the server for those first (as OpenSSH does). */
export function knownKeyTypes(trust: HostKeyTrust): string[] {
  if (trust.pinnedFingerprint) return [];
  const entries = trust.knownHostsFiles.flatMap((f) => (existsSync(f) ? parseKnownHosts(readFileSync(f, "utf8")) : []));
  return [...new Set(entries.filter((e) => e.marker === undefined && hostFieldMatches(e.hosts, trust.host, trust.port)).map((e) => e.keyType))];
}

/** Append a host key to a known_hosts file ("[host]:port type base64"), creating the file 0600 and its folder 0700. */
export function saveKnownHost(file: string, host: string, port: number, key: Buffer): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const existed = existsSync(file);
  const text = existed ? readFileSync(file, "utf8") : "";
  const sep = text.length > 0 && !text.endsWith("\n") ? "\n" : "";
  appendFileSync(file, `${sep}${knownHostName(host, port)} ${keyTypeOf(key)} ${key.toString("base64")}\n`, { mode: 0o600 });
  if (!existed) chmodSync(file, 0o600);
}

/** The error for an unknown host; message carries the fingerprint to pin. */
export function hostKeyUnknownError(host: string, port: number, key: Buffer): NetworkError {
  const fp = fingerprintOfKey(key);
  return new NetworkError("HOST_KEY_UNKNOWN", msg("hostkey.unknown", { host: knownHostName(host, port), keyType: keyTypeOf(key), fingerprint: fp }), {
    hint: msg("hostkey.unknown.hint", { fingerprint: fp }),
    details: { fingerprint: fp, keyType: keyTypeOf(key) },
  });
}

/** The error for a changed host key; nothing has been sent. */
export function hostKeyMismatchError(host: string, port: number, key: Buffer, verdict: "mismatch" | "revoked"): NetworkError {
  const fp = fingerprintOfKey(key);
  return new NetworkError(
    "HOST_KEY_MISMATCH",
    msg(verdict === "revoked" ? "hostkey.revoked" : "hostkey.changed", { host: knownHostName(host, port), fingerprint: fp }),
    {
      hint: msg("hostkey.changed.hint"),
      details: { fingerprint: fp, keyType: keyTypeOf(key) },
    },
  );
}

/** Connect far enough to learn the server's host key, then disconnect (used by `init` and for the TTY question). */
export async function fetchHostKey(host: string, port: number, timeoutMs = 15_000): Promise<{ key: Buffer; keyType: string; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let key: Buffer | undefined;
    const finish = () => {
      client.end();
      if (key) resolve({ key, keyType: keyTypeOf(key), fingerprint: fingerprintOfKey(key) });
    };
    client.on("error", (err) => {
      if (key) return finish();
      reject(toNetworkError(err, msg("net.cannotReach")));
    });
    client.on("close", () => {
      if (key) finish();
    });
    client.connect({
      host,
      port,
      readyTimeout: timeoutMs,
      username: "scanbridge-hostkey-probe",
      algorithms: { serverHostKey: HOST_KEY_ALGORITHMS as never },
      hostVerifier: (k: Buffer) => {
        key = Buffer.from(k);
        // Refuse: we only wanted the key; no authentication is attempted.
        return false;
      },
    });
  });
}

/** The server's SHA-256 host key fingerprint ("SHA256:..."), for `init` to show and pin. */
export async function fetchHostFingerprint(host: string, port = 22): Promise<string> {
  return (await fetchHostKey(host, port)).fingerprint;
}
