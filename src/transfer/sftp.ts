import type { Socket } from "node:net";
import { posix } from "node:path";
import { Client, type AnyAuthMethod, type SFTPWrapper } from "ssh2";
import { InterruptedError, NetworkError, RemoteVerificationError, ScanbridgeError } from "../errors.js";
import { msg, type MessageId } from "../i18n/index.js";
import type { Destination, DownloadResult, RemoteEntry, RemoteReader, RemoteStat, RemoteWriter } from "./destination.js";
import { readerToFile } from "./download.js";
import { HOST_KEY_ALGORITHMS, checkHostKey, hostKeyMismatchError, hostKeyUnknownError, knownKeyTypes, type HostKeyTrust } from "./hostkeys.js";
import { toNetworkError } from "./retry.js";
import { destroyConnection } from "./ssh-close.js";
import { tuneSshPackets } from "./ssh-packets.js";


/**
 * Modes of uploaded copies (patient data): never readable by other users on the server. Group-readable, so the
 * hospital's watcher account can read uploads through the drop folder's group (issue 10).
 */
export const UPLOAD_FILE_MODE = 0o640;
export const UPLOAD_DIR_MODE = 0o750;

/** SFTP status codes (draft-ietf-secsh-filexfer-02, what OpenSSH speaks). */
const FX = { NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4, OP_UNSUPPORTED: 8 } as const;
/** SSH_FXF_* open flags. */
const OPEN = { WRITE: 0x02, CREAT: 0x08, TRUNC: 0x10 } as const;

/** The operations a destination reports failures of, with their message (a person reads "could not <operation>"). */
const REMOTE_OPERATIONS = {
  stat: "op.checkFile",
  "check a file": "op.checkFile",
  "create the destination folder": "op.createFolder",
  "open the upload file": "op.openUpload",
  "check the upload file": "op.checkUpload",
  write: "op.write",
  "flush the upload file": "op.flush",
  "close the upload file": "op.closeUpload",
  "open the uploaded file": "op.openUploaded",
  "read back": "op.readBack",
  "close the uploaded file": "op.closeUploaded",
  rename: "op.rename",
  remove: "op.remove",
  "list the folder": "op.list",
  "check free space": "op.freeSpace",
  download: "op.download",
  "write the checksum file": "op.writeChecksum",
  "open an SFTP session": "op.session",
} as const satisfies Record<string, MessageId>;
/** An operation on a destination, as named in errors. */
export type RemoteOperation = keyof typeof REMOTE_OPERATIONS;

/** Map a file-system or SFTP status error to a typed error without the path in its message. */
export function describeRemoteError(err: unknown, operation: RemoteOperation): ScanbridgeError {
  const what = msg(REMOTE_OPERATIONS[operation]);
  if (err instanceof ScanbridgeError) return err;
  const e = err as { code?: unknown; message?: string };
  const code = e?.code;
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new NetworkError("REMOTE_DISK_FULL", msg("remote.full", { what }), { hint: msg("remote.full.hint"), cause: err });
  }
  if (code === FX.PERMISSION_DENIED || code === "EACCES" || code === "EPERM" || code === "EROFS") {
    return new NetworkError("REMOTE_PERMISSION_DENIED", msg("remote.permission", { what }), {
      hint: msg("remote.permission.hint"),
      cause: err,
    });
  }
  if (code === FX.NO_SUCH_FILE || code === "ENOENT" || code === "ENOTDIR") {
    return new NetworkError("REMOTE_NOT_FOUND", msg("remote.notFound", { what }), { hint: msg("remote.notFound.hint"), cause: err });
  }
  if (typeof code === "number") {
    return new NetworkError("REMOTE_FAILURE", msg("remote.refused", { what, code, reason: e.message ?? "failure" }), { cause: err });
  }
  return toNetworkError(err, msg("remote.couldNot", { what }));
}

/** Credentials for an SFTP login; gathered by the command, never from argv. */
export interface SftpAuth {
  username: string;
  /** Private key file contents (OpenSSH or PEM). */
  privateKey?: Buffer;
  passphrase?: string;
  /** ssh-agent socket (SSH_AUTH_SOCK). */
  agent?: string;
  password?: string;
}

/** How to reach and trust an SFTP server. */
export interface SftpConnectOptions {
  host: string;
  port: number;
  folder: string;
  /** URL without secrets, for receipts. */
  url: string;
  auth: SftpAuth;
  trust: HostKeyTrust;
  connectTimeoutMs: number;
  /** A request unanswered this long counts as a dead connection. */
  idleTimeoutMs: number;
  keepaliveIntervalMs?: number;
  signal?: AbortSignal;
  /** A TCP connection to host:port already opened (nothing sent on it yet); the handshake is made on it. */
  sock?: Socket;
  /** Bytes per write and requests in flight per channel. */
  chunkSize?: number;
  requests?: number;
  /** ssh2's protocol trace, line by line (tests: the order of the login's messages). */
  debug?: (line: string) => void;
}

const HOST_KEY_ALGOS = HOST_KEY_ALGORITHMS;

/** Map a known_hosts key type to the host-key algorithms that produce it. */
function algosForKeyType(t: string): string[] {
  return t === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : HOST_KEY_ALGOS.includes(t) ? [t] : [];
}

/** Open an SSH connection with fail-closed host-key checking and return an SFTP destination. */
export async function connectSftp(opts: SftpConnectOptions): Promise<SftpDestination> {
  if (opts.signal?.aborted) {
    opts.sock?.destroy();
    throw new InterruptedError();
  }
  const client = new Client();
  let hostKeyError: NetworkError | undefined;
  let authAttempted = false;
  /** When the key exchange finished, and how long the login took after it. */
  let keysAt: number | undefined;
  let loginMs: number | undefined;
  /** Request/answer pairs of the login after the key exchange (see below), and whether key requests go signed at once. */
  let authPairs = 1;
  let signsAtOnce = false;

  const methods: AnyAuthMethod[] = [];
  const username = opts.auth.username;
  if (opts.auth.agent) methods.push({ type: "agent", username, agent: opts.auth.agent });
  if (opts.auth.privateKey) methods.push({ type: "publickey", username, key: opts.auth.privateKey, passphrase: opts.auth.passphrase });
  if (opts.auth.password !== undefined) {
    const password = opts.auth.password;
    methods.push({ type: "password", username, password });
    methods.push({
      type: "keyboard-interactive",
      username,
      prompt: (_name, _instr, _lang, prompts, finish) => {
        // Answer only password questions; anything else (OTP, ...) cannot be answered unattended.
        finish(prompts.map((p) => (/password|passphrase|pass code|passwort|contraseña|mot de passe/i.test(p.prompt) ? password : "")));
      },
    });
  }
  if (methods.length === 0) {
    opts.sock?.destroy();
    throw new NetworkError("AUTH_NO_CREDENTIALS", msg("upload.noCredentials"), {
      hint: msg("upload.noCredentials.hint"),
    });
  }

  const preferred = knownKeyTypes(opts.trust).flatMap(algosForKeyType);
  const serverHostKey = preferred.length ? [...preferred, ...HOST_KEY_ALGOS.filter((a) => !preferred.includes(a))] : HOST_KEY_ALGOS;

  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const onAbort = () => {
      client.destroy();
      done(new InterruptedError());
    };
    const done = (err?: Error) => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener("abort", onAbort);
      if (err) {
        client.destroy();
        reject(err);
      } else resolve();
    };
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    client.once("handshake", () => (keysAt = performance.now()));
    client.once("ready", () => {
      if (keysAt !== undefined) loginMs = performance.now() - keysAt;
      done();
    });
    // `on`, not `once`: after a handshake timeout ssh2 emits a second error ("Connection lost before handshake") as
    // the socket closes, which would otherwise be unhandled and end the process (done() keeps the first).
    client.on("error", (err: Error & { level?: string }) => {
      if (hostKeyError) return done(hostKeyError);
      if (err.level === "client-authentication") {
        return done(
          new NetworkError("AUTH_FAILED", msg("sftp.authFailed"), {
            hint: msg("sftp.authFailed.hint"),
            cause: err,
            retryable: false,
          }),
        );
      }
      if (err.level === "client-timeout") {
        return done(new NetworkError("CONNECT_TIMEOUT", msg("sftp.connectTimeout"), { retryable: true, cause: err, hint: msg("sftp.connectTimeout.hint") }));
      }
      done(toNetworkError(err, msg("net.cannotConnect")));
    });
    client.once("close", () => done(hostKeyError ?? new NetworkError("NETWORK_TRANSIENT", msg("sftp.closedDuringLogin"), { retryable: !authAttempted })));
    client.connect({
      sock: opts.sock,
      host: opts.host,
      port: opts.port,
      username,
      readyTimeout: opts.connectTimeoutMs,
      keepaliveInterval: opts.keepaliveIntervalMs ?? 15_000,
      keepaliveCountMax: 3,
      ...(opts.debug ? { debug: opts.debug } : {}),
      // Raw key (no hostHash): we need the blob itself to save it to known_hosts after a "yes".
      hostVerifier: (key: Buffer) => {
        const verdict = checkHostKey(key, opts.trust);
        if (verdict === "match") return true;
        hostKeyError = verdict === "unknown" ? hostKeyUnknownError(opts.trust.host, opts.trust.port, Buffer.from(key)) : hostKeyMismatchError(opts.trust.host, opts.trust.port, key, verdict);
        return false;
      },
      algorithms: { serverHostKey: serverHostKey as never },
      authHandler: (_left, _partial, next) => {
        authAttempted = true;
        const m = methods.shift();
        if (m) authPairs += m.type === "password" || (m.type === "publickey" && signsAtOnce) ? 1 : 2;
        next((m ?? false) as never);
      },
    });
    signsAtOnce = signKeyRequestsAtOnce(client);
    authWithServiceRequest(client, () => canGoEarly(methods[0]), () => (authPairs = 0));
    // Before the first byte, not after the login: with Nagle's algorithm on, each small handshake packet sent while
    // the one before is unacknowledged waits for the server's delayed ACK (about 40 ms on Linux, several times per login).
    client.setNoDelay(true);
  });
  tuneSshPackets(client);
  // After the key exchange, the login is request/answer pairs: the service request (unless the first method went
  // with it), then one per method tried (a key signed at once or a password: one; an agent's key or
  // keyboard-interactive: a question first, so two).
  // The login's time over that count is a first estimate of the round trip, known before any request; low if a
  // method was refused early (counted in full).
  return new SftpDestination(client, opts, loginMs !== undefined ? loginMs / authPairs : undefined);
}

/** The parts of ssh2's Client (1.x) that authWithServiceRequest wraps and reads. */
interface Ssh2ServiceInternals {
  _remoteVer?: string;
  _protocol?: { service?: (name: string) => void; _handlers?: { SERVICE_ACCEPT?: (p: unknown, name: string) => void } };
}

/**
 * The first login request sent with the service request, not a round trip after its answer. ssh2 asks for the
 * "ssh-userauth" service and waits for the server's acceptance before its first login request; an SSH server
 * handles a connection's messages in order, so the request can follow at once (the server accepts the service,
 * then reads the request). Only with OpenSSH servers (by their version string), where this is known to hold,
 * and only when the first method does not depend on the server's list of signature algorithms (which arrives just
 * before the acceptance): a password, or a key known not to be RSA (ssh2 would sign an RSA key with SHA-1 without
 * that list, which OpenSSH refuses); an agent's keys are not known beforehand. The acceptance itself is then only
 * taken note of. If ssh2's internals differ, nothing changes (returns false).
 */
function authWithServiceRequest(client: unknown, allowed: () => boolean, onEarly: () => void): boolean {
  const c = client as Ssh2ServiceInternals;
  const proto = c._protocol;
  const service = proto?.service;
  const handlers = proto?._handlers;
  if (!proto || typeof service !== "function" || typeof handlers?.SERVICE_ACCEPT !== "function") return false;
  proto.service = function (this: unknown, name) {
    service.call(this, name);
    const accept = handlers.SERVICE_ACCEPT;
    if (name !== "ssh-userauth" || !/^OpenSSH_/.test(c._remoteVer ?? "") || typeof accept !== "function" || !allowed()) return;
    let early = true;
    handlers.SERVICE_ACCEPT = (p, accepted) => {
      if (early && accepted === "ssh-userauth") early = false;
      else accept(p, accepted);
    };
    onEarly();
    accept(this, "ssh-userauth");
  };
  return true;
}

/** Whether a login method can go before the server's list of signature algorithms (see authWithServiceRequest). */
function canGoEarly(m: AnyAuthMethod | undefined): boolean {
  if (!m) return false;
  if (m.type === "password" || m.type === "keyboard-interactive") return true;
  if (m.type !== "publickey") return false;
  const type = privateKeyType((m as { key?: Buffer | string }).key);
  return type !== undefined && type !== "ssh-rsa";
}

/**
 * The key type of a private key as its file says it, without decrypting anything: an OpenSSH-format key keeps its
 * public half in the clear ("openssh-key-v1", cipher, KDF, KDF options, count, then the public key, which starts
 * with its type); PEM says RSA or EC in its label. Undefined for anything else (PKCS#8, PuTTY, garbage).
 */
export function privateKeyType(key: Buffer | string | undefined): string | undefined {
  if (key === undefined) return undefined;
  const text = key.toString();
  if (/-----BEGIN RSA PRIVATE KEY-----/.test(text)) return "ssh-rsa";
  if (/-----BEGIN EC PRIVATE KEY-----/.test(text)) return "ecdsa";
  const body = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(text)?.[1];
  if (!body) return undefined;
  const b = Buffer.from(body.replace(/\s+/g, ""), "base64");
  const magic = "openssh-key-v1\0";
  if (b.length < magic.length || b.toString("latin1", 0, magic.length) !== magic) return undefined;
  let at = magic.length;
  const skip = () => {
    if (at + 4 > b.length) return false;
    at += 4 + b.readUInt32BE(at);
    return at <= b.length;
  };
  if (!skip() || !skip() || !skip() || at + 4 > b.length) return undefined; // cipher, KDF, KDF options
  at += 4; // number of keys
  if (at + 8 > b.length) return undefined;
  at += 4; // the public key's length; then its type
  const len = b.readUInt32BE(at);
  if (len > 64 || at + 4 + len > b.length) return undefined;
  return b.toString("latin1", at + 4, at + 4 + len);
}

/** The part of ssh2's Client (1.x) that signKeyRequestsAtOnce wraps, and of its parsed private keys. */
interface Ssh2AuthInternals {
  _protocol?: { authPK?: (user: string, key: unknown, keyAlgo?: string, cbSign?: SignCallback) => void };
}
type SignCallback = (data: Buffer, done: (signature: Buffer) => void) => void;
interface ParsedPrivateKey {
  isPrivateKey(): boolean;
  sign(data: Buffer, hashAlgo?: string): Buffer | Error;
}

/** The hash each RSA signature algorithm signs with (other key types choose their own). */
const RSA_HASHES: Record<string, string> = { "rsa-sha2-256": "sha256", "rsa-sha2-512": "sha512", "ssh-rsa": "sha1" };

/**
 * A key login in one round trip instead of two. ssh2 first asks the server whether it would accept the key (a
 * request without signature), then sends the signed request; RFC 4252 (section 7) lets a client send the signed
 * request at once, and OpenSSH's server takes it. Through a link with 150 ms of round-trip time that is 150 ms
 * less before the first byte. Only for a private key held here (an agent's key is signed by the agent, as before);
 * a refusal goes on as before (ssh2 tries the key's next signature algorithm, then the next method). If ssh2's
 * internals are not what this expects (another major version), nothing changes (returns false).
 */
function signKeyRequestsAtOnce(client: unknown): boolean {
  const proto = (client as Ssh2AuthInternals)._protocol;
  const authPK = proto?.authPK;
  if (!proto || typeof authPK !== "function" || authPK.length < 3) return false;
  proto.authPK = function (this: unknown, user, key, keyAlgo, cbSign) {
    const k = key as Partial<ParsedPrivateKey> | undefined;
    if (cbSign === undefined && typeof k?.isPrivateKey === "function" && k.isPrivateKey() && typeof k.sign === "function") {
      const hash = keyAlgo ? RSA_HASHES[keyAlgo] : undefined;
      const sign = k.sign.bind(k);
      let failed: Error | undefined;
      authPK.call(this, user, key, keyAlgo, (data, done) => {
        const signature = sign(data, hash);
        if (signature instanceof Error) failed = signature;
        else done(signature);
      });
      if (!failed) return;
    }
    authPK.call(this, user, key, keyAlgo, cbSign);
  };
  return true;
}

/**
 * The parts of ssh2's Client measureRtt reaches into (ssh2 1.x, as its own keepalive uses them): without them the
 * RTT is not measured this way and the upload times its first requests instead.
 */
interface Ssh2Internals {
  _protocol?: { ping?: () => void };
  _callbacks?: Array<(hadErr: boolean) => void>;
}

function sftpCall<T>(fn: (cb: (err: Error | undefined | null, v: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));
}

/** A folder on an SFTP server, over one SSH connection with one SFTP channel per lane. */
export class SftpDestination implements Destination {
  readonly kind = "sftp" as const;
  readonly url: string;
  readonly folder: string;
  readonly window: { requests: number; chunkSize: number };
  private readonly lanes = new Map<number, Promise<SFTPWrapper>>();
  private closed = false;
  private failure: Error | undefined;
  private lastActivity = Date.now();
  private outstanding = 0;
  private readonly watchdog: NodeJS.Timeout;
  private readonly onAbort: () => void;

  constructor(
    private readonly client: Client,
    private readonly opts: SftpConnectOptions,
    readonly loginRttMs?: number,
  ) {
    this.url = opts.url;
    this.folder = opts.folder;
    // Measured on loopback against OpenSSH: 32 x 128 KiB moves the most per CPU second (the server window is 2 MiB per channel).
    this.window = { requests: opts.requests ?? 32, chunkSize: opts.chunkSize ?? 128 * 1024 };
    client.on("error", (err) => {
      this.failure ??= toNetworkError(err, msg("net.connectionFailed"));
    });
    client.on("close", () => {
      this.closed = true;
      this.failure ??= new NetworkError("CONNECTION_LOST", msg("sftp.connectionLost"), { retryable: true, hint: msg("sftp.connectionLost.hint") });
    });
    this.onAbort = () => {
      this.failure = new InterruptedError();
      destroyConnection(client);
    };
    opts.signal?.addEventListener("abort", this.onAbort, { once: true });
    // A request unanswered for idleTimeout means the link is dead even if TCP has not noticed (NAT drops).
    this.watchdog = setInterval(() => {
      if (this.outstanding > 0 && Date.now() - this.lastActivity > opts.idleTimeoutMs) {
        this.failure ??= new NetworkError("IDLE_TIMEOUT", msg("sftp.idleTimeout", { seconds: Math.round(opts.idleTimeoutMs / 1000) }), { retryable: true });
        destroyConnection(client);
      }
    }, Math.min(1000, opts.idleTimeoutMs));
    this.watchdog.unref();
  }

  private lane(n = 0): Promise<SFTPWrapper> {
    let p = this.lanes.get(n);
    if (!p) {
      p = sftpCall<SFTPWrapper>((cb) => this.client.sftp(cb)).catch((err) => {
        this.lanes.delete(n);
        throw this.wrap(err, "open an SFTP session");
      });
      this.lanes.set(n, p);
    }
    return p;
  }

  private wrap(err: unknown, what: RemoteOperation): unknown {
    if (this.failure) return this.failure;
    return describeRemoteError(err, what);
  }

  /** Run one SFTP request, tracking it for the idle watchdog. */
  private async op<T>(what: RemoteOperation, fn: (sftp: SFTPWrapper, cb: (err: Error | undefined | null, v: T) => void) => void, lane = 0): Promise<T> {
    if (this.failure) throw this.failure;
    const sftp = await this.lane(lane);
    this.outstanding++;
    try {
      const v = await sftpCall<T>((cb) => fn(sftp, cb));
      this.lastActivity = Date.now();
      return v;
    } catch (err) {
      this.lastActivity = Date.now();
      throw this.wrap(err, what);
    } finally {
      this.outstanding--;
    }
  }

  /** Whether the server offers an SFTP extension (e.g. "posix-rename@openssh.com"). */
  async hasExtension(name: string): Promise<boolean> {
    const sftp = (await this.lane(0)) as SFTPWrapper & { _extensions?: Record<string, string> };
    return Boolean(sftp._extensions?.[name]);
  }

  pathOf(name: string): string {
    return this.folder === "." ? name : posix.join(this.folder, name);
  }

  async stat(path: string): Promise<RemoteStat | undefined> {
    try {
      const s = await this.op<{ size: number; mtime: number; isDirectory(): boolean }>("check a file", (sftp, cb) => sftp.stat(path, cb as never));
      return { size: Number(s.size), isDirectory: s.isDirectory(), mtimeMs: Number(s.mtime) * 1000 };
    } catch (err) {
      if (err instanceof NetworkError && err.code === "REMOTE_NOT_FOUND") return undefined;
      throw err;
    }
  }

  async exists(path: string): Promise<boolean> {
    return (await this.stat(path)) !== undefined;
  }

  async mkdirp(path: string): Promise<void> {
    if ((await this.stat(path))?.isDirectory) return;
    const abs = path.startsWith("/");
    const parts = path.split("/").filter((p) => p && p !== ".");
    let cur = abs ? "/" : "";
    for (const part of parts) {
      cur = cur === "" ? part : posix.join(cur, part);
      const st = await this.stat(cur);
      if (st?.isDirectory) continue;
      if (st) throw new NetworkError("REMOTE_NOT_A_FOLDER", msg("remote.notAFolder"), { hint: msg("remote.notAFolder.hint") });
      try {
        await this.op<void>("create the destination folder", (sftp, cb) => sftp.mkdir(cur, { mode: UPLOAD_DIR_MODE }, cb as never));
      } catch (err) {
        // Another uploader may have created it in the meantime.
        if (!(await this.stat(cur))?.isDirectory) throw err;
      }
    }
  }

  /** One SSH keepalive request (answered by the server's SSH layer at once), timed. */
  measureRtt(): Promise<number | undefined> {
    const c = this.client as unknown as Ssh2Internals;
    if (this.failure || !Array.isArray(c._callbacks) || typeof c._protocol?.ping !== "function") return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const t0 = performance.now();
      const timer = setTimeout(() => resolve(undefined), this.opts.connectTimeoutMs);
      timer.unref();
      // Replies to global requests come in order; ssh2's own keepalives push their callbacks the same way.
      c._callbacks!.push(() => {
        clearTimeout(timer);
        resolve(performance.now() - t0);
      });
      c._protocol!.ping!();
    });
  }

  async openLanes(n: number): Promise<number> {
    // Channels are opened together (one round trip); one the server refuses is dropped, not fatal.
    const opened = await Promise.all(Array.from({ length: Math.max(1, n) }, (_, i) => this.lane(i).then(() => true, () => i === 0 ? Promise.reject(this.failure ?? new NetworkError("REMOTE_FAILURE", msg("sftp.sessionRefused"))) : false)));
    // Lanes must be numbered 0..k-1: keep the granted ones first.
    let k = 0;
    for (let i = 0; i < opened.length; i++) {
      if (!opened[i]) continue;
      if (i !== k) {
        this.lanes.set(k, this.lanes.get(i)!);
        this.lanes.delete(i);
      }
      k++;
    }
    return k;
  }

  async openWrite(path: string, opts: { truncate: boolean; lane?: number }): Promise<RemoteWriter> {
    const lane = opts.lane ?? 0;
    // WRITE|CREAT, plus TRUNC when asked: no separate existence check (one round trip less per channel).
    const flags = OPEN.WRITE | OPEN.CREAT | (opts.truncate ? OPEN.TRUNC : 0);
    const handle = await this.op<Buffer>("open the upload file", (sftp, cb) => sftp.open(path, flags as never, { mode: UPLOAD_FILE_MODE }, cb as never), lane);
    const sftp = await this.lane(lane);
    const maxWrite = (sftp as unknown as { _maxWriteLen?: number })._maxWriteLen ?? 32 * 1024;
    return {
      write: async (data, position) => {
        // Larger writes would be split by ssh2 into sequential requests; keep each one request.
        for (let off = 0; off < data.length; off += maxWrite) {
          const len = Math.min(maxWrite, data.length - off);
          try {
            await this.op<void>("write", (s, cb) => s.write(handle, data, off, len, position + off, cb as never), lane);
          } catch (err) {
            throw await this.explainWriteFailure(err, path, len);
          }
        }
      },
      finish: async () => {
        // fsync, fstat and close go out together: the server answers in order, so this costs one round trip.
        const fsync = (await this.hasExtension("fsync@openssh.com"))
          ? this.op<void>("flush the upload file", (s, cb) => s.ext_openssh_fsync(handle, cb as never), lane)
          : Promise.resolve();
        const fstat = this.op<{ size: number }>("check the upload file", (s, cb) => s.fstat(handle, cb as never), lane);
        const close = this.op<void>("close the upload file", (s, cb) => s.close(handle, cb as never), lane);
        const [, st] = await Promise.all([fsync, fstat, close]);
        return Number(st.size);
      },
      close: () => this.op<void>("close the upload file", (s, cb) => s.close(handle, cb as never), lane),
    };
  }

  async openRead(path: string, opts: { lane?: number } = {}): Promise<RemoteReader> {
    const lane = opts.lane ?? 0;
    const handle = await this.op<Buffer>("open the uploaded file", (sftp, cb) => sftp.open(path, "r", cb as never), lane);
    return {
      read: async (length, position) => {
        const buf = Buffer.allocUnsafe(length);
        let got = 0;
        while (got < length) {
          const n = await this.op<number>("read back", (s, cb) => s.read(handle, buf, got, length - got, position + got, ((err: Error | undefined, bytes: number) => cb(err, bytes)) as never), lane);
          if (!n) break;
          got += n;
        }
        return buf.subarray(0, got);
      },
      close: () => this.op<void>("close the uploaded file", (s, cb) => s.close(handle, cb as never), lane),
    };
  }

  async rename(from: string, to: string): Promise<{ atomic: boolean }> {
    if (await this.hasExtension("posix-rename@openssh.com")) {
      await this.op<void>("rename", (s, cb) => s.ext_openssh_rename(from, to, cb as never));
      return { atomic: true };
    }
    // Plain SFTP rename fails when the target exists: remove it first (not atomic; said so in the result).
    const replaced = await this.exists(to);
    if (replaced) await this.remove(to);
    await this.op<void>("rename", (s, cb) => s.rename(from, to, cb as never));
    return { atomic: !replaced };
  }

  async remove(path: string): Promise<void> {
    try {
      await this.op<void>("remove", (s, cb) => s.unlink(path, cb as never));
    } catch (err) {
      if (err instanceof NetworkError && err.code === "REMOTE_NOT_FOUND") return;
      throw err;
    }
  }

  async list(folder: string): Promise<RemoteEntry[]> {
    type Attrs = { size: number; mtime: number; isFile(): boolean; isDirectory(): boolean };
    const entries = await this.op<Array<{ filename: string; attrs: Attrs }>>("list the folder", (s, cb) => s.readdir(folder, cb as never));
    return entries
      .filter((e) => e.filename !== "." && e.filename !== "..")
      .map((e) => ({ name: e.filename, size: Number(e.attrs.size), mtimeMs: Number(e.attrs.mtime) * 1000, isFile: e.attrs.isFile(), isDirectory: e.attrs.isDirectory() }));
  }

  async download(remotePath: string, localPath: string, opts: { signal?: AbortSignal; lane?: number } = {}): Promise<DownloadResult> {
    const st = await this.stat(remotePath);
    if (!st || st.isDirectory) throw new NetworkError("REMOTE_NOT_FOUND", msg("remote.notFound", { what: msg("op.download") }), { hint: msg("remote.notFound.hint") });
    const r = await this.openRead(remotePath, { lane: opts.lane });
    try {
      return await readerToFile(r, st.size, localPath, this.window, opts.signal);
    } finally {
      await r.close().catch(() => {});
    }
  }

  async writeSmall(path: string, data: Buffer): Promise<void> {
    const w = await this.openWrite(path, { truncate: true });
    // Write, fsync, fstat and close pipelined (answered in order): one round trip after the open.
    const written = w.write(data, 0);
    const finished = w.finish();
    const [, size] = await Promise.all([written, finished]);
    if (size !== data.length) throw new RemoteVerificationError("REMOTE_SIZE_MISMATCH", msg("upload.markerWrongSize"));
  }

  /** OpenSSH reports a full disk as a bare "Failure": ask statvfs whether space ran out. */
  private async explainWriteFailure(err: unknown, path: string, len: number): Promise<unknown> {
    if (!(err instanceof NetworkError) || err.code !== "REMOTE_FAILURE" || this.failure) return err;
    const free = await this.freeSpace(posix.dirname(path));
    if (free !== undefined && free < len + 64 * 1024) {
      return new NetworkError("REMOTE_DISK_FULL", msg("remote.fullStopped"), {
        hint: msg("remote.fullStopped.hint"),
        cause: err,
        details: { freeBytes: free },
      });
    }
    return err;
  }

  /** Free space in the folder (statvfs@openssh.com), or undefined when the server does not say. */
  async freeSpace(path: string): Promise<number | undefined> {
    if (!(await this.hasExtension("statvfs@openssh.com"))) return undefined;
    try {
      const st = await this.op<{ f_bavail: number | bigint; f_frsize: number | bigint }>("check free space", (s, cb) => s.ext_openssh_statvfs(path, cb as never));
      return Number(st.f_bavail) * Number(st.f_frsize);
    } catch {
      return undefined;
    }
  }

  /** The connection's first failure, if it has failed (lost, timed out, interrupted). */
  get connectionFailure(): Error | undefined {
    return this.failure;
  }

  async close(): Promise<void> {
    clearInterval(this.watchdog);
    this.opts.signal?.removeEventListener("abort", this.onAbort);
    if (this.closed) return;
    await new Promise<void>((resolve) => {
      // A server that has not closed its side 3 s after our disconnect never will (hung): the socket goes, or the
      // half-open connection would keep the process from exiting.
      const t = setTimeout(() => {
        destroyConnection(this.client);
        resolve();
      }, 3000);
      t.unref();
      this.client.once("close", () => {
        clearTimeout(t);
        resolve();
      });
      this.client.end();
    });
  }
}
