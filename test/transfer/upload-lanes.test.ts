// Parallel channels chosen by the link and limited by the server, and the package checksum computed from the
// bytes the upload reads anyway. A real OpenSSH sshd with MaxSessions 1 (one channel per connection).
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chownSync, copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { autoLanes, MAX_AUTO_LANES } from "../../src/transfer/lanes.js";
import { InlineHasher } from "../../src/transfer/segments.js";
import { startSshd, type SshdServer } from "../helpers/sshd.js";
import { startRelay } from "./relay.js";

const root = join(import.meta.dirname, "..", "..");
const bin = join(root, "bin", "scanbridge.js");
const PATIENT = "Zoë Lanes-Testpatient";

let sshd: SshdServer;
let work: string;

/** The parts of `upload --json` these tests read. */
interface UploadJson {
  warnings: Array<{ code: string; message: string }>;
  [key: string]: unknown;
}

function run(args: string[]): Promise<{ code: number | null; stdout: string; json?: UploadJson }> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: work, NO_COLOR: "1", XDG_CONFIG_HOME: join(work, ".config") };
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env, cwd: work, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.on("close", (code) => {
      let json: UploadJson | undefined;
      try {
        json = JSON.parse(stdout) as UploadJson;
      } catch {
        /* not JSON */
      }
      resolve({ code, stdout, json });
    });
  });
}

function makePackage(size: number, sidecar: boolean): { path: string; sha256: string } {
  const dir = mkdtempSync(join(work, "pkg-"));
  const path = join(dir, `${PATIENT}.zip`);
  const data = randomBytes(size);
  writeFileSync(path, data);
  const sha256 = createHash("sha256").update(data).digest("hex");
  if (sidecar) writeFileSync(path + ".sha256", `${sha256}  ${PATIENT}.zip\n`);
  return { path, sha256 };
}

const sha = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");
const keyArgs = () => ["--identity", sshd.privateKeyPath, "--known-hosts", sshd.knownHostsPath];

beforeAll(async () => {
  if (!existsSync(join(root, "dist", "src", "cli.js"))) throw new Error("Build first: npx tsc -p tsconfig.json");
  sshd = await startSshd({ extraConfig: ["MaxSessions 1"] });
  work = mkdtempSync(join(tmpdir(), "sb-upload-lanes-"));
});
afterAll(async () => {
  await sshd?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("lanes", () => {
  it("one channel on a LAN; enough channels for the window at long distance; never more than the file has pieces", () => {
    expect(autoLanes(0.3, 1e9)).toBe(1);
    expect(autoLanes(5, 1e9)).toBe(1);
    expect(autoLanes(150, 1e9)).toBeGreaterThanOrEqual(4);
    expect(autoLanes(150, 1e9)).toBeLessThanOrEqual(MAX_AUTO_LANES);
    expect(autoLanes(600, 1e10)).toBe(MAX_AUTO_LANES);
    expect(autoLanes(150, 17 * 1024 * 1024)).toBe(2);
    expect(autoLanes(150, 1e6)).toBe(1);
    expect(autoLanes(Number.NaN, 1e9)).toBe(1);
  });

  it("a server that refuses extra channels (MaxSessions 1): --connections 4 falls back to one, with a warning, and succeeds", async () => {
    const pkg = makePackage(24 * 1024 * 1024, true);
    sshd.mkdirOwned("one");
    const r = await run(["--json", "upload", pkg.path, "--to", sshd.url("one"), ...keyArgs(), "--connections", "4"]);
    expect(r.code, r.stdout).toBe(0);
    expect(r.json).toMatchObject({ ok: true, lanes: 1 });
    expect(r.json!.warnings.map((w) => w.code)).toContain("CHANNELS_LIMITED");
    expect(sha(join(sshd.home, "one", `${PATIENT}.zip`))).toBe(pkg.sha256);
  });
});

describe("lanes opened early on a long link", () => {
  it("through a 100 ms relay to a server that allows one channel: several asked for at once, one granted, a warning, success, nothing left over", async () => {
    const size = 24 * 1024 * 1024;
    const pkg = makePackage(size, true);
    const dir = sshd.mkdirOwned("far-one");
    const relay = await startRelay(sshd.port, { delayMs: 50 });
    try {
      const r = await run(["--json", "upload", pkg.path, "--to", `sftp://${sshd.user}@127.0.0.1:${relay.port}/far-one`, "--identity", sshd.privateKeyPath, "--host-fingerprint", sshd.hostFingerprint]);
      expect(r.code, r.stdout).toBe(0);
      expect(r.json).toMatchObject({ ok: true, lanes: 1 });
      expect(r.json!.warnings.map((w) => w.code)).toContain("CHANNELS_LIMITED");
      expect(sha(join(dir, `${PATIENT}.zip`))).toBe(pkg.sha256);
      expect(readdirSync(dir).sort()).toEqual([`${PATIENT}.zip`, `${PATIENT}.zip.sha256`]);
    } finally {
      await relay.close();
    }
  });
});

describe("the checksum of a package without .sha256 comes from the bytes sent", () => {
  it("a whole upload: the marker and the receipt carry the right SHA-256", async () => {
    const pkg = makePackage(5 * 1024 * 1024 + 123, false);
    sshd.mkdirOwned("nosidecar");
    const r = await run(["--json", "upload", pkg.path, "--to", sshd.url("nosidecar"), ...keyArgs()]);
    expect(r.code, r.stdout).toBe(0);
    expect(r.json!.sha256).toBe(pkg.sha256);
    expect(readFileSync(join(sshd.home, "nosidecar", `${PATIENT}.zip.sha256`), "utf8")).toBe(`${pkg.sha256}  ${PATIENT}.zip\n`);
  });

  it("a resumed upload (half already there), with and without --verify: the prefix is hashed, the rest as it is sent", async () => {
    for (const verify of [false, true]) {
      const size = 6 * 1024 * 1024 + 7;
      const pkg = makePackage(size, false);
      const folder = `resume-${verify}`;
      const dir = sshd.mkdirOwned(folder);
      const partial = join(dir, `.${PATIENT}.zip.partial`);
      copyFileSync(pkg.path, partial);
      truncateSync(partial, Math.floor(size / 2));
      chownSync(partial, sshd.uid, sshd.gid);
      const r = await run(["--json", "upload", pkg.path, "--to", sshd.url(folder), ...keyArgs(), ...(verify ? ["--verify"] : [])]);
      expect(r.code, r.stdout).toBe(0);
      expect(r.json).toMatchObject({ resumedFrom: Math.floor(size / 2), sha256: pkg.sha256 });
      expect(sha(join(dir, `${PATIENT}.zip`))).toBe(pkg.sha256);
    }
  });

  it("InlineHasher: chunks out of order, overlapping or behind are handled; what was not seen is read from disk", async () => {
    const data = randomBytes(300_000);
    const path = join(work, "inline.bin");
    writeFileSync(path, data);
    const want = createHash("sha256").update(data).digest("hex");
    const h = new InlineHasher(path);
    h.feed(data.subarray(0, 100_000), 0);
    h.feed(data.subarray(200_000, 250_000), 200_000); // ahead of the hashed prefix: ignored
    h.feed(data.subarray(50_000, 150_000), 50_000); // overlaps: only the new part counts
    expect(h.pos).toBe(150_000);
    expect(await h.digest(data.length)).toBe(want);
  });
});
