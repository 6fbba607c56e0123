// A real OpenSSH sshd on 127.0.0.1 for tests and benchmarks: its own config, throw-away host and user keys,
// a throw-away system account (password + key) with a temporary home. Needs root (useradd, sshd).
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Options for startSshd. */
export interface SshdOptions {
  /** Use PAM (enables keyboard-interactive password prompts). Default false. */
  usePam?: boolean;
  /** Extra sshd_config lines; they take precedence over the defaults (sshd keeps a keyword's first value). No Match blocks. */
  extraConfig?: string[];
  /** The sftp subsystem command. Default "internal-sftp"; e.g. "internal-sftp -P rename,posix-rename" to forbid renames. */
  subsystem?: string;
  /** Allow plain password authentication. Default true (set false to leave only keys and keyboard-interactive). */
  passwordAuthentication?: boolean;
  /** Host key type. Default ed25519. */
  hostKeyType?: "ed25519" | "rsa" | "ecdsa";
}

/** A running test sshd and everything needed to connect to it. */
export interface SshdServer {
  host: string;
  port: number;
  /** The throw-away account's name. */
  user: string;
  password: string;
  uid: number;
  gid: number;
  /** The account's home directory (sftp paths are relative to it). */
  home: string;
  /** Unencrypted private key authorised for the user. */
  privateKeyPath: string;
  /** Same key pair, encrypted with `keyPassphrase`. */
  encryptedKeyPath: string;
  keyPassphrase: string;
  /** Host public key line ("ssh-ed25519 AAAA..."). */
  hostPublicKey: string;
  /** "SHA256:..." as ssh-keygen -l prints it. */
  hostFingerprint: string;
  /** A known_hosts file holding the host key under "[127.0.0.1]:port". */
  knownHostsPath: string;
  /** Scratch folder owned by root for the test's own files. */
  dir: string;
  /** sshd's log (a file in dir), for debugging failed tests and for tests that read what sshd saw. */
  log(): string;
  /** sftp://user@127.0.0.1:port/<path relative to home> */
  url(path?: string): string;
  /** Mount a tmpfs of `size` (e.g. "2m") at a folder in the home owned by the test user; unmounted by stop(). */
  mountTmpfs(rel: string, size: string): string;
  /** Create a folder inside the home owned by the test user. */
  mkdirOwned(rel: string, mode?: number): string;
  stop(): Promise<void>;
}

function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { input, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
}

/** A free TCP port on 127.0.0.1 (a small race with other processes; startSshd retries). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function waitListening(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child.exitCode !== null) return reject(new Error(`sshd exited with ${child.exitCode}`));
      const sock = connect(port, "127.0.0.1");
      sock.once("data", () => {
        sock.destroy();
        resolve();
      });
      sock.once("error", () => {
        sock.destroy();
        if (Date.now() > until) reject(new Error("sshd did not start listening"));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/** Generate a key pair with ssh-keygen; returns the private key path. */
export function generateKey(path: string, type: "ed25519" | "rsa" | "ecdsa" = "ed25519", passphrase = ""): string {
  const args = ["-q", "-t", type, "-N", passphrase, "-f", path, "-C", "scanbridge-test"];
  if (type === "rsa") args.push("-b", "2048");
  sh("ssh-keygen", args);
  return path;
}

/** SHA256 fingerprint ("SHA256:...") of a public key file. */
export function fingerprintOf(pubPath: string): string {
  return sh("ssh-keygen", ["-l", "-E", "sha256", "-f", pubPath]).split(" ")[1]!;
}

/** Start sshd on a random port with a fresh account; call stop() afterwards. */
export async function startSshd(opts: SshdOptions = {}): Promise<SshdServer> {
  const dir = mkdtempSync(join(tmpdir(), "sb-sshd-"));
  chmodSync(dir, 0o755);
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const user = `sbt${randomBytes(5).toString("hex")}`;
  const password = `pw-${randomBytes(9).toString("base64url")}`;
  const keyPassphrase = `kp-${randomBytes(9).toString("base64url")}`;
  const home = join(dir, "home");
  sh("useradd", ["-M", "-d", home, "-s", "/bin/sh", user]);
  sh("chpasswd", [], `${user}:${password}\n`);
  const uid = Number(sh("id", ["-u", user]).trim());
  const gid = Number(sh("id", ["-g", user]).trim());
  mkdirSync(home, { mode: 0o755 });
  chownSync(home, uid, gid);

  const hostKeyType = opts.hostKeyType ?? "ed25519";
  const hostKey = generateKey(join(dir, `host_${hostKeyType}`), hostKeyType);
  const hostPublicKey = readFileSync(hostKey + ".pub", "utf8").trim().split(" ").slice(0, 2).join(" ");
  const hostFingerprint = fingerprintOf(hostKey + ".pub");
  const privateKeyPath = generateKey(join(dir, "user_key"));
  const encryptedKeyPath = join(dir, "user_key_enc");
  writeFileSync(encryptedKeyPath, readFileSync(privateKeyPath), { mode: 0o600 });
  sh("ssh-keygen", ["-q", "-p", "-N", keyPassphrase, "-P", "", "-f", encryptedKeyPath]);
  const authorized = join(dir, "authorized_keys");
  writeFileSync(authorized, readFileSync(privateKeyPath + ".pub"), { mode: 0o644 });

  let lastErr: unknown;
  for (let tries = 0; tries < 5; tries++) {
    const port = await freePort();
    const config = [
      // sshd keeps the first value of a keyword: the caller's lines come first so they override the defaults below.
      ...(opts.extraConfig ?? []),
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${authorized}`,
      "StrictModes no",
      `UsePAM ${opts.usePam ? "yes" : "no"}`,
      `PasswordAuthentication ${opts.passwordAuthentication === false ? "no" : "yes"}`,
      `KbdInteractiveAuthentication ${opts.usePam ? "yes" : "no"}`,
      "PubkeyAuthentication yes",
      "PermitRootLogin no",
      `AllowUsers ${user}`,
      `Subsystem sftp ${opts.subsystem ?? "internal-sftp"}`,
      "LogLevel VERBOSE",
      "MaxStartups 100:30:200",
      "MaxSessions 50",
      "MaxAuthTries 6",
    ].join("\n");
    const cfgPath = join(dir, "sshd_config");
    writeFileSync(cfgPath, config + "\n");
    // The log goes to a file, not to a pipe this process drains: a caller that blocks its event loop (spawnSync of a
    // long command) would otherwise fill the pipe, and sshd, blocked writing a log line, would stop answering (a
    // benchmark script hung so).
    const logPath = join(dir, "sshd.log");
    const child = spawn("/usr/sbin/sshd", ["-D", "-E", logPath, "-f", cfgPath], { stdio: "ignore" });
    const log = (): string => {
      try {
        const text = readFileSync(logPath, "utf8");
        return text.length > 1_000_000 ? text.slice(-1_000_000) : text;
      } catch {
        return "";
      }
    };
    try {
      await waitListening(port, child, 10_000);
    } catch (err) {
      lastErr = new Error(`${(err as Error).message}: ${log()}`);
      child.kill("SIGKILL");
      continue;
    }
    const knownHostsPath = join(dir, "known_hosts");
    const mounts: string[] = [];
    writeFileSync(knownHostsPath, `[127.0.0.1]:${port} ${hostPublicKey}\n`);
    const server: SshdServer = {
      host: "127.0.0.1",
      port,
      user,
      password,
      uid,
      gid,
      home,
      privateKeyPath,
      encryptedKeyPath,
      keyPassphrase,
      hostPublicKey,
      hostFingerprint,
      knownHostsPath,
      dir,
      log,
      url: (p = "") => `sftp://${user}@127.0.0.1:${port}/${p.replace(/^\/+/, "")}`,
      mkdirOwned(rel, mode = 0o755) {
        const full = join(home, rel);
        mkdirSync(full, { recursive: true });
        chownSync(full, uid, gid);
        chmodSync(full, mode);
        return full;
      },
      mountTmpfs(rel, size) {
        const full = server.mkdirOwned(rel);
        sh("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", full]);
        mounts.push(full);
        chownSync(full, uid, gid);
        return full;
      },
      async stop() {
        for (const m of mounts.splice(0).reverse()) {
          try {
            sh("umount", ["-l", m]);
          } catch {
            /* already unmounted */
          }
        }
        if (child.exitCode === null) {
          const gone = new Promise((r) => child.once("exit", r));
          child.kill("SIGTERM");
          await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
        }
        // Session processes of the account may linger for a moment after the listener exits.
        try {
          execFileSync("pkill", ["-KILL", "-u", user], { stdio: "ignore" });
        } catch {
          /* none left */
        }
        try {
          sh("userdel", [user]);
        } catch {
          /* already gone */
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
    return server;
  }
  sh("userdel", [user]);
  rmSync(dir, { recursive: true, force: true });
  throw lastErr;
}
