// End to end: the built CLI (`node bin/scanbridge.js upload ...`) against a real OpenSSH sshd on loopback.
// Run `npm run build` first (npm test and a bare vitest run do).
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateKey, startSshd, type SshdServer } from "../helpers/sshd.js";
import { until } from "../ingest/helpers.js";
import { startRelay } from "./relay.js";

const root = join(import.meta.dirname, "..", "..");
const bin = join(root, "bin", "scanbridge.js");
const PATIENT = "Zoë Ångström-Testpatient";

/** The parts of `upload --json` these tests read. */
interface UploadJson {
  warnings: Array<{ code: string; message: string }>;
  resumedFrom: number;
  bytesSent: number;
  [key: string]: unknown;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  json?: UploadJson;
}

let sshd: SshdServer;
let work: string;
let home: string;

/** Environment of a user with an empty ~/.ssh and no agent, plus overrides. */
function userEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: home, NO_COLOR: "1", XDG_CONFIG_HOME: join(home, ".config") };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

function start(args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; done: Promise<Run> } {
  const child = spawn(process.execPath, [bin, ...args], { env, cwd: work, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const done = new Promise<Run>((resolve) =>
    child.on("close", (code) => {
      let json: UploadJson | undefined;
      try {
        json = JSON.parse(stdout);
      } catch {
        /* not --json */
      }
      resolve({ code, stdout, stderr, json });
    }),
  );
  return { child, done };
}

const run = (args: string[], env: NodeJS.ProcessEnv) => start(args, env).done;

/** A package of random bytes with its sha256sum file, as pack writes it. */
function makePackage(name: string, size: number): { path: string; sha256: string } {
  const dir = mkdtempSync(join(work, "pkg-"));
  const path = join(dir, `${name}.zip`);
  const data = randomBytes(size);
  writeFileSync(path, data);
  const sha256 = createHash("sha256").update(data).digest("hex");
  writeFileSync(path + ".sha256", `${sha256}  ${name}.zip\n`);
  return { path, sha256 };
}

const sha = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");
const keyArgs = () => ["--identity", sshd.privateKeyPath, "--known-hosts", sshd.knownHostsPath];

/**
 * What an unfinished upload left in `dir`. The marker's file is opened under a hidden name while the data is sent
 * and written only once the data is complete: an interrupted upload may leave it, always empty.
 */
function unfinished(dir: string): string[] {
  const staged = `.${PATIENT}.zip.sha256.partial`;
  const names = readdirSync(dir).sort();
  if (names.includes(staged)) expect(statSync(join(dir, staged)).size).toBe(0);
  return names.filter((n) => n !== staged);
}

beforeAll(async () => {
  if (!existsSync(join(root, "dist", "src", "cli.js"))) throw new Error("Build first: npm run build");
  sshd = await startSshd();
  work = mkdtempSync(join(tmpdir(), "sb-upload-e2e-"));
  home = join(work, "home");
  mkdirSync(join(home, ".ssh"), { recursive: true });
});

afterAll(async () => {
  await sshd?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("scanbridge upload (e2e, real sshd)", () => {
  it("uploads with a key, verifies by reading back, places the zip, then the .sha256 marker, and writes the receipt", async () => {
    const pkg = makePackage(PATIENT, 5_000_000);
    const r = await run(["--json", "upload", pkg.path, "--to", sshd.url("in/new/folder"), ...keyArgs(), "--verify"], userEnv());
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const dir = join(sshd.home, "in/new/folder");
    expect(readdirSync(dir).sort()).toEqual([`${PATIENT}.zip`, `${PATIENT}.zip.sha256`]);
    expect(sha(join(dir, `${PATIENT}.zip`))).toBe(pkg.sha256);
    expect(readFileSync(join(dir, `${PATIENT}.zip.sha256`), "utf8")).toBe(`${pkg.sha256}  ${PATIENT}.zip\n`);
    // The marker is written after the zip is in place.
    expect(statSync(join(dir, `${PATIENT}.zip.sha256`)).mtimeMs).toBeGreaterThanOrEqual(statSync(join(dir, `${PATIENT}.zip`)).mtimeMs);
    expect(r.json).toMatchObject({ ok: true, verified: "sha256", size: 5_000_000, sha256: pkg.sha256, attempts: 1, placement: "atomic-rename" });
    const receipt = JSON.parse(readFileSync(pkg.path.replace(/\.zip$/, ".receipt.json"), "utf8"));
    expect(receipt).toMatchObject({
      format: "scanbridge-receipt",
      package: `${PATIENT}.zip`,
      destination: `sftp://${sshd.user}@127.0.0.1:${sshd.port}/in/new/folder`,
      remotePath: `in/new/folder/${PATIENT}.zip`,
      size: 5_000_000,
      sha256: pkg.sha256,
      verified: "sha256",
      attempts: 1,
    });
    expect(JSON.stringify(receipt)).not.toMatch(/password|passphrase/i);
  });

  it("refuses to overwrite an existing remote package without --force (exit 3), replaces it with --force", async () => {
    const pkg = makePackage(PATIENT, 100_000);
    sshd.mkdirOwned("exists");
    expect((await run(["upload", pkg.path, "--to", sshd.url("exists"), ...keyArgs()], userEnv())).code).toBe(0);
    const again = await run(["upload", pkg.path, "--to", sshd.url("exists"), ...keyArgs()], userEnv());
    expect(again.code).toBe(3);
    expect(again.stderr).toContain("REMOTE_EXISTS");
    expect(again.stderr).not.toContain("Zoë");
    const forced = await run(["upload", pkg.path, "--to", sshd.url("exists"), ...keyArgs(), "--force"], userEnv());
    expect(forced.code, forced.stderr).toBe(0);
  });

  it("logs in with ssh-agent (SSH_AUTH_SOCK), no key file and no password", async () => {
    const sock = join(work, `agent-${randomBytes(3).toString("hex")}.sock`);
    const agent = spawn("ssh-agent", ["-D", "-a", sock], { stdio: "ignore" });
    try {
      for (let i = 0; i < 50 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
      execFileSync("ssh-add", [sshd.privateKeyPath], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: "ignore" });
      const pkg = makePackage(PATIENT, 200_000);
      const r = await run(["--json", "upload", pkg.path, "--to", sshd.url("agent"), "--known-hosts", sshd.knownHostsPath], userEnv({ SSH_AUTH_SOCK: sock }));
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(sha(join(sshd.home, "agent", `${PATIENT}.zip`))).toBe(pkg.sha256);
    } finally {
      agent.kill();
    }
  });

  it("logs in with a password from SCANBRIDGE_SFTP_PASSWORD, never from argv", async () => {
    const pkg = makePackage(PATIENT, 200_000);
    const r = await run(["upload", pkg.path, "--to", sshd.url("pw"), "--known-hosts", sshd.knownHostsPath], userEnv({ SCANBRIDGE_SFTP_PASSWORD: sshd.password }));
    expect(r.code, r.stderr).toBe(0);
    expect(sha(join(sshd.home, "pw", `${PATIENT}.zip`))).toBe(pkg.sha256);
    const onArgv = await run(["upload", pkg.path, "--to", sshd.url("pw"), "--sftp-password", sshd.password], userEnv());
    expect(onArgv.code).toBe(2);
    const inUrl = await run(["upload", pkg.path, "--to", `sftp://${sshd.user}:${sshd.password}@127.0.0.1:${sshd.port}/pw`], userEnv());
    expect(inUrl.code).toBe(2);
    expect(inUrl.stderr).toContain("SECRET_ON_COMMAND_LINE");
  });

  it("uses an encrypted key with SCANBRIDGE_KEY_PASSPHRASE; a wrong passphrase fails with exit 5", async () => {
    const pkg = makePackage(PATIENT, 100_000);
    const ok = await run(["upload", pkg.path, "--to", sshd.url("enc"), "--identity", sshd.encryptedKeyPath, "--known-hosts", sshd.knownHostsPath], userEnv({ SCANBRIDGE_KEY_PASSPHRASE: sshd.keyPassphrase }));
    expect(ok.code, ok.stderr).toBe(0);
    const bad = await run(["upload", pkg.path, "--to", sshd.url("enc2"), "--identity", sshd.encryptedKeyPath, "--known-hosts", sshd.knownHostsPath], userEnv({ SCANBRIDGE_KEY_PASSPHRASE: "nope" }));
    expect(bad.code).toBe(5);
    const none = await run(["upload", pkg.path, "--to", sshd.url("enc3"), "--identity", sshd.encryptedKeyPath, "--known-hosts", sshd.knownHostsPath], userEnv());
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("KEY_PASSPHRASE_NEEDED");
  });

  it("refuses an unknown host when not at a terminal: exit 5, prints the fingerprint to pin, nothing on the server", async () => {
    const pkg = makePackage(PATIENT, 100_000);
    const r = await run(["upload", pkg.path, "--to", sshd.url("unknown-host"), "--identity", sshd.privateKeyPath], userEnv());
    expect(r.code).toBe(5);
    expect(r.stderr).toContain("HOST_KEY_UNKNOWN");
    expect(r.stderr).toContain(sshd.hostFingerprint);
    expect(r.stderr).toContain(`--host-fingerprint ${sshd.hostFingerprint}`);
    expect(existsSync(join(sshd.home, "unknown-host"))).toBe(false);
    expect(existsSync(join(home, ".ssh", "known_hosts"))).toBe(false);
    // Pinning that fingerprint (flag or config) lets it through.
    const pinned = await run(["upload", pkg.path, "--to", sshd.url("pinned"), "--identity", sshd.privateKeyPath, "--host-fingerprint", sshd.hostFingerprint], userEnv());
    expect(pinned.code, pinned.stderr).toBe(0);
    mkdirSync(join(home, ".config", "scanbridge"), { recursive: true });
    writeFileSync(join(home, ".config", "scanbridge", "config.json"), JSON.stringify({ hostFingerprint: sshd.hostFingerprint, identity: sshd.privateKeyPath }));
    try {
      const fromConfig = await run(["upload", pkg.path, "--to", sshd.url("pinned-config")], userEnv());
      expect(fromConfig.code, fromConfig.stderr).toBe(0);
    } finally {
      rmSync(join(home, ".config"), { recursive: true, force: true });
    }
  });

  it("refuses a changed host key loudly (known_hosts and pinned), exit 5, nothing sent", async () => {
    const pkg = makePackage(PATIENT, 100_000);
    const other = generateKey(join(work, `other-host-${randomBytes(3).toString("hex")}`));
    const otherPub = readFileSync(other + ".pub", "utf8").split(" ").slice(0, 2).join(" ");
    const kh = join(work, "known_hosts_changed");
    // A hashed entry (|1|salt|hash) as Debian's ssh writes them.
    writeFileSync(kh, `[127.0.0.1]:${sshd.port} ${otherPub}\n`);
    execFileSync("ssh-keygen", ["-H", "-f", kh], { stdio: "ignore" });
    expect(readFileSync(kh, "utf8")).toMatch(/^\|1\|/);
    const r = await run(["upload", pkg.path, "--to", sshd.url("mitm"), "--identity", sshd.privateKeyPath, "--known-hosts", kh], userEnv({ SCANBRIDGE_SFTP_PASSWORD: sshd.password }));
    expect(r.code).toBe(5);
    expect(r.stderr).toContain("HOST_KEY_MISMATCH");
    expect(r.stderr).toMatch(/CHANGED/);
    expect(existsSync(join(sshd.home, "mitm"))).toBe(false);
    const wrongPin = await run(["upload", pkg.path, "--to", sshd.url("mitm"), "--identity", sshd.privateKeyPath, "--host-fingerprint", "SHA256:" + "A".repeat(43)], userEnv());
    expect(wrongPin.code).toBe(5);
    expect(wrongPin.stderr).toContain("HOST_KEY_MISMATCH");
    // No login was attempted after the key was refused.
    expect(sshd.log()).not.toMatch(new RegExp(`Accepted \\S+ for ${sshd.user} .*\\n(?![\\s\\S]*Accepted)[\\s\\S]*mitm`));
    expect(existsSync(join(sshd.home, "mitm"))).toBe(false);
  });

  it("fails a wrong password with exit 5 quickly, without a retry storm", async () => {
    const pkg = makePackage(PATIENT, 100_000);
    const before = (sshd.log().match(/Failed password/g) ?? []).length;
    const r = await run(["upload", pkg.path, "--to", sshd.url("wrongpw"), "--known-hosts", sshd.knownHostsPath], userEnv({ SCANBRIDGE_SFTP_PASSWORD: "wrong" }));
    expect(r.code).toBe(5);
    expect(r.stderr).toContain("AUTH_FAILED");
    // One refused login, not a retry storm (speed is the benchmarks' business, not a test's).
    const failures = () => (sshd.log().match(/Failed password/g) ?? []).length - before;
    await until(() => failures() >= 1, 10_000, "sshd to log the refused login");
    expect(failures()).toBe(1);
    expect(r.stderr).not.toMatch(/retrying/i);
  });

  it("reports a remote folder that is not writable (exit 5, no patient name in the message)", async () => {
    sshd.mkdirOwned("readonly", 0o555);
    const pkg = makePackage(PATIENT, 100_000);
    const r = await run(["upload", pkg.path, "--to", sshd.url("readonly"), ...keyArgs()], userEnv());
    expect(r.code).toBe(5);
    expect(r.stderr).toContain("REMOTE_PERMISSION_DENIED");
    expect(r.stderr).not.toContain("Zoë");
    expect(readdirSync(join(sshd.home, "readonly"))).toEqual([]);
    const verbose = await run(["upload", pkg.path, "--to", sshd.url("readonly"), ...keyArgs(), "--retries", "0"], userEnv());
    expect(verbose.code).toBe(5);
  });

  it("reports a full remote disk (2 MB tmpfs) as REMOTE_DISK_FULL, exit 5, without retrying", async () => {
    const dir = sshd.mountTmpfs("full", "2m");
    {
      const pkg = makePackage(PATIENT, 5_000_000);
      const r = await run(["upload", pkg.path, "--to", sshd.url("full"), ...keyArgs(), "--retry-delay", "0.1s"], userEnv());
      expect(r.code).toBe(5);
      expect(r.stderr).toContain("REMOTE_DISK_FULL");
      expect(r.stderr).not.toMatch(/retrying/i);
      expect(existsSync(join(dir, `${PATIENT}.zip`))).toBe(false);
      expect(existsSync(join(dir, `${PATIENT}.zip.sha256`))).toBe(false);
    }
  });

  it("survives connection cuts at about 10%, 50% and 90% with built-in retries, resuming to a byte-identical verified file", async () => {
    const size = 40 * 1024 * 1024;
    const pkg = makePackage(PATIENT, size);
    const relay = await startRelay(sshd.port, { cuts: [0.1 * size, 0.4 * size, 0.4 * size] });
    try {
      const kh = join(work, "kh-relay");
      writeFileSync(kh, `[127.0.0.1]:${relay.port} ${sshd.hostPublicKey}\n`);
      const r = await run(
        ["--json", "upload", pkg.path, "--to", `sftp://${sshd.user}@127.0.0.1:${relay.port}/cuts`, "--identity", sshd.privateKeyPath, "--known-hosts", kh, "--verify", "--retry-delay", "0.2s"],
        userEnv(),
      );
      expect(r.code, r.stdout).toBe(0);
      expect(relay.connections()).toBe(4);
      expect(r.json).toMatchObject({ ok: true, attempts: 4, verified: "sha256" });
      // Only the bytes after each cut were sent again: far less than 4 full copies.
      expect(relay.forwarded().reduce((a, b) => a + b, 0)).toBeLessThan(size * 1.3);
      expect(r.json!.warnings.filter((w: { code: string }) => w.code === "UPLOAD_RETRY")).toHaveLength(3);
      expect(sha(join(sshd.home, "cuts", `${PATIENT}.zip`))).toBe(pkg.sha256);
      expect(readdirSync(join(sshd.home, "cuts")).sort()).toEqual([`${PATIENT}.zip`, `${PATIENT}.zip.sha256`]);
    } finally {
      await relay.close();
    }
  });

  it("resumes by a re-run after a cut at 50% with --retries 0, checking the partial by content with --verify", async () => {
    const size = 40 * 1024 * 1024;
    const pkg = makePackage(PATIENT, size);
    const relay = await startRelay(sshd.port, { cuts: [0.5 * size] });
    const kh = join(work, "kh-relay2");
    writeFileSync(kh, `[127.0.0.1]:${relay.port} ${sshd.hostPublicKey}\n`);
    const args = ["--json", "upload", pkg.path, "--to", `sftp://${sshd.user}@127.0.0.1:${relay.port}/rerun`, "--identity", sshd.privateKeyPath, "--known-hosts", kh, "--verify", "--retries", "0", "--connections", "1"];
    try {
      const first = await run(args, userEnv());
      expect(first.code).toBe(5);
      const partial = join(sshd.home, "rerun", `.${PATIENT}.zip.partial`);
      const partSize = statSync(partial).size;
      expect(partSize).toBeGreaterThan(0.3 * size);
      expect(partSize).toBeLessThan(0.55 * size);
      expect(unfinished(join(sshd.home, "rerun"))).toEqual([`.${PATIENT}.zip.partial`]);
      const second = await run(args, userEnv());
      expect(second.code, second.stdout).toBe(0);
      expect(second.json).toMatchObject({ resumedFrom: partSize, bytesSent: size - partSize, verified: "sha256" });
      expect(sha(join(sshd.home, "rerun", `${PATIENT}.zip`))).toBe(pkg.sha256);
    } finally {
      await relay.close();
    }
  });

  it("resumes a half-uploaded partial over several channels (--connections 3): only the rest is sent, byte-identical", async () => {
    const size = 40 * 1024 * 1024;
    const pkg = makePackage(PATIENT, size);
    const dir = sshd.mkdirOwned("resume-lanes");
    const partial = join(dir, `.${PATIENT}.zip.partial`);
    writeFileSync(partial, readFileSync(pkg.path).subarray(0, size / 2));
    chownSync(partial, sshd.uid, sshd.gid);
    const r = await run(["--json", "upload", pkg.path, "--to", sshd.url("resume-lanes"), ...keyArgs(), "--connections", "3"], userEnv());
    expect(r.code, r.stdout).toBe(0);
    expect(r.json).toMatchObject({ resumedFrom: size / 2, bytesSent: size / 2, lanes: 3 });
    expect(sha(join(dir, `${PATIENT}.zip`))).toBe(pkg.sha256);
    expect(readdirSync(dir).sort()).toEqual([`${PATIENT}.zip`, `${PATIENT}.zip.sha256`]);
    expect(existsSync(join(pkg.path, "..", `.${PATIENT}.zip.upload.json`))).toBe(false);
  });

  it("through a 100 ms round-trip relay into a folder that does not exist yet: created, then several channels (the early parts-file opens had nowhere to go)", async () => {
    const size = 24 * 1024 * 1024;
    const pkg = makePackage(PATIENT, size);
    const relay = await startRelay(sshd.port, { delayMs: 50 });
    try {
      const r = await run(["--json", "upload", pkg.path, "--to", `sftp://${sshd.user}@127.0.0.1:${relay.port}/far-new/patient`, "--identity", sshd.privateKeyPath, "--host-fingerprint", sshd.hostFingerprint, "--retries", "0"], userEnv());
      expect(r.code, r.stdout).toBe(0);
      expect(r.json!.lanes).toBeGreaterThan(1);
      const dir = join(sshd.home, "far-new", "patient");
      expect(sha(join(dir, `${PATIENT}.zip`))).toBe(pkg.sha256);
      expect(readdirSync(dir).sort()).toEqual([`${PATIENT}.zip`, `${PATIENT}.zip.sha256`]);
    } finally {
      await relay.close();
    }
  });

  it("through a 100 ms round-trip relay, the defaults choose several channels (opened alongside the first), replace with --force, resume a partial, and leave only the zip and its marker", async () => {
    const size = 24 * 1024 * 1024;
    const pkg = makePackage(PATIENT, size);
    const dir = sshd.mkdirOwned("far");
    const relay = await startRelay(sshd.port, { delayMs: 50 });
    const args = ["--json", "upload", pkg.path, "--to", `sftp://${sshd.user}@127.0.0.1:${relay.port}/far`, "--identity", sshd.privateKeyPath, "--host-fingerprint", sshd.hostFingerprint];
    const marker = `${pkg.sha256}  ${PATIENT}.zip\n`;
    const finished = () => {
      expect(sha(join(dir, `${PATIENT}.zip`))).toBe(pkg.sha256);
      expect(readFileSync(join(dir, `${PATIENT}.zip.sha256`), "utf8")).toBe(marker);
      expect(readdirSync(dir).sort()).toEqual([`${PATIENT}.zip`, `${PATIENT}.zip.sha256`]);
    };
    try {
      const first = await run(args, userEnv());
      expect(first.code, first.stdout).toBe(0);
      expect(first.json!.lanes).toBeGreaterThan(1);
      expect(first.json!.rttMs).toBeGreaterThanOrEqual(100);
      finished();
      // Already there: refused without --force, and the parts file opened early is removed again.
      const again = await run(args, userEnv());
      expect(again.code).toBe(3);
      expect(again.stdout).toContain("REMOTE_EXISTS");
      finished();
      // --force: the old marker goes with the closes, the new one is renamed into place after the zip.
      const forced = await run([...args, "--force"], userEnv());
      expect(forced.code, forced.stdout).toBe(0);
      finished();
      // Half of it already there: resumed (the early parts file is dropped), only the rest sent.
      rmSync(join(dir, `${PATIENT}.zip`));
      rmSync(join(dir, `${PATIENT}.zip.sha256`));
      const partial = join(dir, `.${PATIENT}.zip.partial`);
      writeFileSync(partial, readFileSync(pkg.path).subarray(0, size / 2));
      chownSync(partial, sshd.uid, sshd.gid);
      const resumed = await run(args, userEnv());
      expect(resumed.code, resumed.stdout).toBe(0);
      expect(resumed.json).toMatchObject({ resumedFrom: size / 2, bytesSent: size / 2 });
      finished();
    } finally {
      await relay.close();
    }
  });

  it("starts over when the partial at the destination is not this package", async () => {
    const size = 3_000_000;
    const pkg = makePackage(PATIENT, size);
    const dir = sshd.mkdirOwned("stale");
    const partial = join(dir, `.${PATIENT}.zip.partial`);
    writeFileSync(partial, randomBytes(1_000_000));
    chownSync(partial, sshd.uid, sshd.gid);
    const r = await run(["--json", "upload", pkg.path, "--to", sshd.url("stale"), ...keyArgs()], userEnv());
    expect(r.code, r.stdout).toBe(0);
    expect(r.json!.warnings.map((w: { code: string }) => w.code)).toContain("PARTIAL_DISCARDED");
    expect(r.json).toMatchObject({ resumedFrom: 0, bytesSent: size });
    expect(sha(join(dir, `${PATIENT}.zip`))).toBe(pkg.sha256);
  });

  it("uploads over several parallel channels (--connections 4), also across a cut, to a byte-identical file", async () => {
    const size = 48 * 1024 * 1024;
    const pkg = makePackage(PATIENT, size);
    const relay = await startRelay(sshd.port, { cuts: [0.5 * size] });
    const kh = join(work, "kh-relay3");
    writeFileSync(kh, `[127.0.0.1]:${relay.port} ${sshd.hostPublicKey}\n`);
    try {
      const r = await run(
        ["--json", "upload", pkg.path, "--to", `sftp://${sshd.user}@127.0.0.1:${relay.port}/parallel`, "--identity", sshd.privateKeyPath, "--known-hosts", kh, "--connections", "4", "--retry-delay", "0.2s"],
        userEnv(),
      );
      expect(r.code, r.stdout).toBe(0);
      expect(r.json).toMatchObject({ attempts: 2 });
      expect(relay.forwarded().reduce((a, b) => a + b, 0)).toBeLessThan(size * 1.2);
      expect(sha(join(sshd.home, "parallel", `${PATIENT}.zip`))).toBe(pkg.sha256);
      expect(readdirSync(join(sshd.home, "parallel")).sort()).toEqual([`${PATIENT}.zip`, `${PATIENT}.zip.sha256`]);
      expect(existsSync(join(pkg.path, "..", `.${PATIENT}.zip.upload.json`))).toBe(false);
    } finally {
      await relay.close();
    }
  });

  it("detects a silently dead link (no answers, no reset) with the idle timeout and resumes on a new connection", async () => {
    const size = 20 * 1024 * 1024;
    const pkg = makePackage(PATIENT, size);
    const relay = await startRelay(sshd.port, { stalls: [0.3 * size] });
    const kh = join(work, "kh-relay-stall");
    writeFileSync(kh, `[127.0.0.1]:${relay.port} ${sshd.hostPublicKey}\n`);
    try {
      const r = await run(
        ["--json", "upload", pkg.path, "--to", `sftp://${sshd.user}@127.0.0.1:${relay.port}/stall`, "--identity", sshd.privateKeyPath, "--known-hosts", kh, "--idle-timeout", "2s", "--retry-delay", "0.2s"],
        userEnv(),
      );
      expect(r.code, r.stdout).toBe(0);
      expect(r.json).toMatchObject({ attempts: 2 });
      expect(r.json!.warnings[0].message).toMatch(/No answer from the server/);
      expect(sha(join(sshd.home, "stall", `${PATIENT}.zip`))).toBe(pkg.sha256);
    } finally {
      await relay.close();
    }
  });

  it("retries a refused connection with backoff, then gives up with exit 5", async () => {
    const pkg = makePackage(PATIENT, 1000);
    const relay = await startRelay(sshd.port);
    const port = relay.port;
    await relay.close(); // Nothing listens there now.
    const r = await run(["upload", pkg.path, "--to", `sftp://${sshd.user}@127.0.0.1:${port}/refused`, "--identity", sshd.privateKeyPath, "--host-fingerprint", sshd.hostFingerprint, "--retries", "2", "--retry-delay", "0.2s"], userEnv());
    expect(r.code).toBe(5);
    expect(r.stderr.match(/warning: Connecting failed/g)).toHaveLength(2);
    expect(r.stderr).toContain("connection refused");
  });

  it("a parallel upload cut with --retries 0 is resumed by a re-run from its journal", async () => {
    const size = 48 * 1024 * 1024;
    const pkg = makePackage(PATIENT, size);
    const relay = await startRelay(sshd.port, { cuts: [0.5 * size] });
    const kh = join(work, "kh-relay5");
    writeFileSync(kh, `[127.0.0.1]:${relay.port} ${sshd.hostPublicKey}\n`);
    try {
      const args = ["--json", "upload", pkg.path, "--to", `sftp://${sshd.user}@127.0.0.1:${relay.port}/parallel-rerun`, "--identity", sshd.privateKeyPath, "--known-hosts", kh, "--connections", "4", "--retries", "0"];
      const first = await run(args, userEnv());
      expect(first.code).toBe(5);
      expect(unfinished(join(sshd.home, "parallel-rerun"))).toEqual([`.${PATIENT}.zip.parts`]);
      expect(existsSync(join(pkg.path, "..", `.${PATIENT}.zip.upload.json`))).toBe(true);
      const second = await run([...args, "--verify"], userEnv());
      expect(second.code, second.stdout).toBe(0);
      expect(second.json!.resumedFrom).toBeGreaterThan(0.2 * size);
      expect(second.json!.bytesSent).toBeLessThan(0.8 * size);
      expect(sha(join(sshd.home, "parallel-rerun", `${PATIENT}.zip`))).toBe(pkg.sha256);
      expect(existsSync(join(pkg.path, "..", `.${PATIENT}.zip.upload.json`))).toBe(false);
    } finally {
      await relay.close();
    }
  });

  it("Ctrl-C during an upload leaves only the partial (exit 130); the next run resumes it", async () => {
    const size = 40 * 1024 * 1024;
    const pkg = makePackage(PATIENT, size);
    const relay = await startRelay(sshd.port, { rate: 8 * 1024 * 1024 });
    const kh = join(work, "kh-relay4");
    writeFileSync(kh, `[127.0.0.1]:${relay.port} ${sshd.hostPublicKey}\n`);
    const args = ["upload", pkg.path, "--to", `sftp://${sshd.user}@127.0.0.1:${relay.port}/ctrlc`, "--identity", sshd.privateKeyPath, "--known-hosts", kh, "--connections", "1"];
    const dir = join(sshd.home, "ctrlc");
    const partial = join(dir, `.${PATIENT}.zip.partial`);
    try {
      const { child, done } = start(args, userEnv());
      const until = Date.now() + 20_000;
      while (Date.now() < until && !(existsSync(partial) && statSync(partial).size > 4 * 1024 * 1024)) await new Promise((r) => setTimeout(r, 50));
      child.kill("SIGINT");
      const r = await done;
      expect(r.code).toBe(130);
      expect(r.stderr).toContain("INTERRUPTED");
      expect(r.stderr).not.toContain("Zoë");
      expect(unfinished(dir)).toEqual([`.${PATIENT}.zip.partial`]);
      const partSize = statSync(partial).size;
      expect(partSize).toBeLessThan(size);
      const again = await run(["--json", "upload", pkg.path, "--to", sshd.url("ctrlc"), ...keyArgs(), "--verify", "--connections", "1"], userEnv());
      expect(again.code, again.stdout).toBe(0);
      expect(again.json!.resumedFrom).toBeGreaterThanOrEqual(partSize);
      expect(sha(join(dir, `${PATIENT}.zip`))).toBe(pkg.sha256);
    } finally {
      await relay.close();
    }
  });
});
