// How `upload` reaches the server: the TCP connection opened while the command's modules load (src/transfer/early.ts),
// and TCP_NODELAY from the first handshake byte. A real OpenSSH sshd on loopback, behind the test relay where the
// connections are counted. Run `npm run build` first for the CLI tests.
import { execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Socket, connect, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dropEarlyConnection, hasEarlyConnection, openEarlyConnection, takeEarlyConnection } from "../../src/transfer/early.js";
import { connectSftp, privateKeyType, type SftpConnectOptions } from "../../src/transfer/sftp.js";
import { startSshd, type SshdServer } from "../helpers/sshd.js";
import { until } from "../ingest/helpers.js";
import { startRelay } from "./relay.js";

const bin = join(import.meta.dirname, "..", "..", "bin", "scanbridge.js");

let sshd: SshdServer;
let work: string;

beforeAll(async () => {
  sshd = await startSshd();
  work = mkdtempSync(join(tmpdir(), "sb-connect-"));
}, 60_000);

afterAll(async () => {
  await sshd?.stop();
  rmSync(work, { recursive: true, force: true });
});

function sftpOptions(port: number, extra: Partial<SftpConnectOptions> = {}): SftpConnectOptions {
  return {
    host: "127.0.0.1",
    port,
    folder: ".",
    url: sshd.url(),
    auth: { username: sshd.user, privateKey: readFileSync(sshd.privateKeyPath) },
    trust: { host: "127.0.0.1", port, pinnedFingerprint: sshd.hostFingerprint, knownHostsFiles: [] },
    connectTimeoutMs: 20_000,
    idleTimeoutMs: 20_000,
    ...extra,
  };
}

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: work, NO_COLOR: "1", XDG_CONFIG_HOME: join(work, ".config") };
  const child = spawn(process.execPath, [bin, ...args], { env, cwd: work, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

/** `upload` of a package of random bytes to `folder` through `port`: the run, and the SHA-256 sent and arrived. */
async function uploadVia(port: number, folder: string, name: string): Promise<{ r: Awaited<ReturnType<typeof runCli>>; sent: string; arrived: () => string }> {
  const pkg = join(mkdtempSync(join(work, "pkg-")), `${name}.zip`);
  const data = randomBytes(300_000);
  writeFileSync(pkg, data);
  const r = await runCli(["upload", pkg, "--to", `sftp://${sshd.user}@127.0.0.1:${port}/${folder}`, "--identity", sshd.privateKeyPath, "--host-fingerprint", sshd.hostFingerprint, "--json"]);
  const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
  return { r, sent: sha(data), arrived: () => sha(readFileSync(join(sshd.home, folder, `${name}.zip`))) };
}

/** A plain TCP server that only counts and holds connections (nothing is ever sent). */
async function silentServer(): Promise<{ port: number; accepted: Socket[]; closed: () => number; close: () => Promise<void> }> {
  const accepted: Socket[] = [];
  let closed = 0;
  const server: Server = createServer((s) => {
    accepted.push(s);
    s.on("close", () => closed++);
    s.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as { port: number }).port,
    accepted,
    closed: () => closed,
    close: async () => {
      for (const s of accepted) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe("TCP_NODELAY", () => {
  it("is on before the first byte of the handshake (not only after the login)", async () => {
    // Nagle's algorithm would hold each small handshake packet until the server's delayed ACK of the one before.
    const calls: Array<{ enable: boolean | undefined; written: number }> = [];
    const original = Object.getOwnPropertyDescriptor(Socket.prototype, "setNoDelay")!.value as (this: Socket, enable?: boolean) => Socket;
    Socket.prototype.setNoDelay = function (this: Socket, enable?: boolean) {
      calls.push({ enable, written: this.bytesWritten ?? 0 });
      return original.call(this, enable);
    };
    let dest;
    try {
      dest = await connectSftp(sftpOptions(sshd.port));
    } finally {
      Socket.prototype.setNoDelay = original;
    }
    try {
      expect(calls.length).toBeGreaterThan(0);
      expect(calls[0]).toEqual({ enable: true, written: 0 });
    } finally {
      await dest.close();
    }
  });
});

describe("the early connection", () => {
  it("is taken only for its own host and port, once, and not after the server closed it", async () => {
    const srv = await silentServer();
    try {
      openEarlyConnection("127.0.0.1", srv.port);
      await until(() => srv.accepted.length === 1, 10_000, "the early connection");
      expect(hasEarlyConnection("127.0.0.1", srv.port)).toBe(true);
      expect(takeEarlyConnection("127.0.0.1", srv.port + 1)).toBeUndefined();
      expect(takeEarlyConnection("localhost", srv.port)).toBeUndefined();
      const sock = takeEarlyConnection("127.0.0.1", srv.port);
      expect(sock).toBeInstanceOf(Socket);
      expect(takeEarlyConnection("127.0.0.1", srv.port)).toBeUndefined();
      sock!.destroy();

      // Closed by the server before anyone took it: not handed out (the caller connects afresh).
      openEarlyConnection("127.0.0.1", srv.port);
      await until(() => srv.accepted.length === 2, 10_000, "the second early connection");
      srv.accepted[1]!.destroy();
      await until(() => srv.closed() === 2, 10_000, "the server side closed");
      await until(() => !hasEarlyConnection("127.0.0.1", srv.port), 10_000, "the client side to notice the close");
      expect(takeEarlyConnection("127.0.0.1", srv.port)).toBeUndefined();

      // Dropped: closed at once.
      openEarlyConnection("127.0.0.1", srv.port);
      await until(() => srv.accepted.length === 3, 10_000, "the third early connection");
      dropEarlyConnection();
      await until(() => srv.closed() === 3, 10_000, "the dropped connection closed");
      expect(takeEarlyConnection("127.0.0.1", srv.port)).toBeUndefined();
    } finally {
      dropEarlyConnection();
      await srv.close();
    }
  });

  it("an SFTP login runs over a connection it is given (host key pinned as always)", async () => {
    const relay = await startRelay(sshd.port);
    try {
      const sock = connect({ host: "127.0.0.1", port: relay.port });
      const dest = await connectSftp(sftpOptions(relay.port, { sock }));
      try {
        expect((await dest.stat("."))?.isDirectory).toBe(true);
      } finally {
        await dest.close();
      }
      expect(relay.connections()).toBe(1);
      // A wrong pin on a given connection still fails closed.
      const sock2 = connect({ host: "127.0.0.1", port: relay.port });
      await expect(connectSftp(sftpOptions(relay.port, { sock: sock2, trust: { host: "127.0.0.1", port: relay.port, pinnedFingerprint: "SHA256:" + "A".repeat(43), knownHostsFiles: [] } }))).rejects.toMatchObject({ code: "HOST_KEY_MISMATCH" });
    } finally {
      await relay.close();
    }
  });

  it("`upload` opens one connection while it loads and logs in over it", async () => {
    const relay = await startRelay(sshd.port);
    try {
      const { r, sent, arrived } = await uploadVia(relay.port, "early", "Early Test");
      expect(r.code, r.stderr + r.stdout).toBe(0);
      expect(arrived()).toBe(sent);
      // Only one connection: the early one was used for the login (not left aside for a second one).
      expect(relay.connections()).toBe(1);
    } finally {
      await relay.close();
    }
  });

  it("`upload` that stops before the login (no such package) closes its early connection and exits", async () => {
    const relay = await startRelay(sshd.port);
    try {
      const r = await runCli(["upload", join(work, "Missing.zip"), "--to", `sftp://${sshd.user}@127.0.0.1:${relay.port}/early`, "--identity", sshd.privateKeyPath, "--json"]);
      expect(r.code).toBe(3);
      expect(JSON.parse(r.stdout).error.code).toBe("PACKAGE_NOT_FOUND");
      // The process exited although its early connection was started. Whether that connection got as far as the
      // relay depends on timing: from the bundle with its code cache (npm run build) the command loads in a few ms
      // and usually stops before the connect is issued; it is never more than one.
      expect(relay.connections()).toBeLessThanOrEqual(1);
    } finally {
      await relay.close();
    }
  });

  it("a server that accepts the connection and never answers: CONNECT_TIMEOUT, exit 5 (not a crash)", async () => {
    const srv = await silentServer();
    try {
      const dir = mkdtempSync(join(work, "pkg-"));
      const pkg = join(dir, "Silent.zip");
      writeFileSync(pkg, randomBytes(1000));
      const r = await runCli(["upload", pkg, "--to", `sftp://${sshd.user}@127.0.0.1:${srv.port}/x`, "--identity", sshd.privateKeyPath, "--host-fingerprint", sshd.hostFingerprint, "--connect-timeout", "1s", "--retries", "0", "--json"]);
      expect(r.stderr).not.toMatch(/Unhandled 'error' event/);
      expect(r.code).toBe(5);
      expect(JSON.parse(r.stdout).error.code).toBe("CONNECT_TIMEOUT");
    } finally {
      await srv.close();
    }
  });

  it("`upload` to a port where nothing listens reports the usual connection error", async () => {
    const srv = await silentServer();
    const port = srv.port;
    await srv.close(); // nothing listens there now
    const dir = mkdtempSync(join(work, "pkg-"));
    const pkg = join(dir, "Refused.zip");
    writeFileSync(pkg, randomBytes(1000));
    const r = await runCli(["upload", pkg, "--to", `sftp://${sshd.user}@127.0.0.1:${port}/x`, "--identity", sshd.privateKeyPath, "--host-fingerprint", sshd.hostFingerprint, "--retries", "0", "--json"]);
    expect(r.code).toBe(5);
    expect(JSON.parse(r.stdout).error.code).toMatch(/^NETWORK_|CONNECT/);
  });
});

describe("a server that never closes its side after the disconnect", () => {
  // The relay passes the disconnect on to sshd but keeps the client's connection open and silent from then on (a hung
  // server, or a middlebox that keeps the connection). ssh2's own destroy() does nothing once a connection has been
  // ended, so without closing the socket itself the process never exited (found with a hung sshd in a benchmark).
  it("`upload` finishes, closes the connection from its end and exits", async () => {
    const relay = await startRelay(sshd.port, { holdOpen: true });
    try {
      const { r, sent, arrived } = await uploadVia(relay.port, "held", "Held Open");
      expect(r.code, r.stderr + r.stdout).toBe(0);
      expect(JSON.parse(r.stdout).ok).toBe(true);
      expect(arrived()).toBe(sent);
      expect(relay.connections()).toBe(1);
    } finally {
      await relay.close();
    }
  }, 60_000);

  // The probe refuses the key it asked for; ssh2 then destroys the socket itself (this held before the change above).
  it("the host-key probe (`init`, the question at a terminal) closes its connection: the process exits", async () => {
    const relay = await startRelay(sshd.port, { holdOpen: true });
    try {
      const mod = pathToFileURL(join(import.meta.dirname, "..", "..", "dist", "src", "transfer", "hostkeys.js")).href;
      const script = `const { fetchHostFingerprint } = await import(${JSON.stringify(mod)}); console.log(await fetchHostFingerprint("127.0.0.1", ${relay.port}));`;
      const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      const code = await new Promise((resolve) => child.on("close", resolve));
      expect(code, stderr).toBe(0);
      expect(stdout.trim()).toBe(sshd.hostFingerprint);
    } finally {
      await relay.close();
    }
  }, 60_000);
});

describe("a key login", () => {
  // sshd at DEBUG3 says whether each publickey request came with a signature ("have ... signature") or was the
  // question whether the key would do ("test pkalg"): the login must not spend a round trip on the question.
  let dbg: SshdServer;
  beforeAll(async () => {
    dbg = await startSshd({ extraConfig: ["LogLevel DEBUG3"] });
  }, 60_000);
  afterAll(async () => {
    await dbg?.stop();
  });

  let trace: string[] = [];
  const login = async (key: Buffer | undefined, password?: string) => {
    const from = dbg.log().length;
    trace = [];
    const dest = await connectSftp({
      debug: (line) => trace.push(line),
      host: "127.0.0.1", port: dbg.port, folder: ".", url: dbg.url(),
      auth: { username: dbg.user, ...(key ? { privateKey: key } : {}), ...(password !== undefined ? { password } : {}) },
      trust: { host: "127.0.0.1", port: dbg.port, pinnedFingerprint: dbg.hostFingerprint, knownHostsFiles: [] },
      connectTimeoutMs: 20_000, idleTimeoutMs: 20_000,
    });
    try {
      expect((await dest.stat("."))?.isDirectory).toBe(true);
    } finally {
      await dest.close();
    }
    // The server's lines of this login (its log is written as it goes; the accepted line is among the last).
    await until(() => /Accepted (publickey|password)/.test(dbg.log().slice(from)), 10_000);
    return dbg.log().slice(from);
  };

  it("sends the signed request at once, with an ed25519 key and with an RSA key (SHA-2 signature)", async () => {
    const rsa = join(dbg.dir, "rsa_key");
    execFileSync("ssh-keygen", ["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", rsa]);
    appendFileSync(join(dbg.dir, "authorized_keys"), readFileSync(`${rsa}.pub`));
    for (const [what, key, algo] of [["ed25519", dbg.privateKeyPath, /ssh-ed25519/], ["rsa", rsa, /rsa-sha2-(256|512)/]] as const) {
      const log = await login(readFileSync(key));
      expect(log, what).toMatch(/Accepted publickey/);
      expect(log, what).toMatch(new RegExp(`have ${algo.source} signature for`));
      expect(log, what).not.toMatch(/test pkalg/);
      // An RSA key waits for the service's acceptance (with it comes the server's list of signature algorithms).
      const firstLogin = trace.findIndex((l) => l.includes("Outbound: Sending USERAUTH_REQUEST"));
      const accepted = trace.findIndex((l) => l.includes("Inbound: Received SERVICE_ACCEPT"));
      if (what === "rsa") expect(firstLogin).toBeGreaterThan(accepted);
      else expect(accepted).toBeGreaterThan(firstLogin);
    }
  });

  it("the first login request goes out with the service request, before the server's acceptance (key or password)", async () => {
    for (const [what, key, password] of [["key", readFileSync(dbg.privateKeyPath), undefined], ["password", undefined, dbg.password]] as const) {
      const log = await login(key, password);
      expect(log, what).toMatch(what === "key" ? /Accepted publickey/ : /Accepted password/);
      const request = trace.findIndex((l) => l.includes("Outbound: Sending SERVICE_REQUEST (ssh-userauth)"));
      const firstLogin = trace.findIndex((l) => l.includes("Outbound: Sending USERAUTH_REQUEST"));
      const accepted = trace.findIndex((l) => l.includes("Inbound: Received SERVICE_ACCEPT"));
      expect(request, what).toBeGreaterThanOrEqual(0);
      expect(firstLogin, what).toBeGreaterThan(request);
      expect(accepted, what).toBeGreaterThan(firstLogin);
      expect(trace.filter((l) => l.includes("Outbound: Sending USERAUTH_REQUEST")), what).toHaveLength(1); // no second try
    }
  });

  it("a key the server does not know is refused (signed, not asked about) and the password still logs in", async () => {
    const stranger = join(dbg.dir, "stranger_key");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", stranger]);
    const log = await login(readFileSync(stranger), dbg.password);
    expect(log).toMatch(/have ssh-ed25519 signature for/);
    expect(log).toMatch(/Accepted password/);
  });
});

describe("privateKeyType", () => {
  it("reads the type from the key file without its passphrase: OpenSSH format (plain and encrypted) and PEM", () => {
    const dir = mkdtempSync(join(tmpdir(), "sb-keytype-"));
    try {
      const make = (name: string, args: string[]) => {
        execFileSync("ssh-keygen", ["-q", ...args, "-f", join(dir, name)]);
        return readFileSync(join(dir, name));
      };
      expect(privateKeyType(make("ed", ["-t", "ed25519", "-N", ""]))).toBe("ssh-ed25519");
      expect(privateKeyType(make("ed-enc", ["-t", "ed25519", "-N", "secret words"]))).toBe("ssh-ed25519");
      expect(privateKeyType(make("ec", ["-t", "ecdsa", "-N", ""]))).toBe("ecdsa-sha2-nistp256");
      expect(privateKeyType(make("rsa", ["-t", "rsa", "-b", "2048", "-N", ""]))).toBe("ssh-rsa");
      expect(privateKeyType(make("rsa-pem", ["-t", "rsa", "-b", "2048", "-N", "", "-m", "PEM"]))).toBe("ssh-rsa");
      expect(privateKeyType(Buffer.from("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"))).toBeUndefined();
      expect(privateKeyType(Buffer.from("not a key"))).toBeUndefined();
      expect(privateKeyType(undefined)).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
