// The ramp: an upload that starts with fewer lanes than the link can carry opens more while the data is sent
// (src/transfer/lanes.ts). A real OpenSSH sshd behind the test relay adding 300 ms of round trip; the start is
// held at 2 lanes with SCANBRIDGE_FIRST_LANES, so that the link, not the machine's speed, decides the ramp.
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rampSplit, stillRising, windowBound, CHANNEL_WINDOW_BYTES, MIN_SEGMENT_BYTES } from "../../src/transfer/lanes.js";
import { ROOT, cleanEnv, runCli, spawnCli, waitCli } from "../helpers/cli.js";
import { startSshd, type SshdServer } from "../helpers/sshd.js";
import { startRelay, type Relay } from "./relay.js";

const PATIENT = "Zoë Ramp-Testpatient";
const SIZE = 96 * 1024 * 1024;

let sshd: SshdServer;
let limited: SshdServer;
let work: string;
let pkg: { path: string; sha256: string };

beforeAll(async () => {
  if (!existsSync(join(ROOT, "dist", "src", "cli.js"))) throw new Error("Build first: npx tsc -p tsconfig.json");
  [sshd, limited] = await Promise.all([startSshd(), startSshd({ extraConfig: ["MaxSessions 2"] })]);
  work = mkdtempSync(join(tmpdir(), "sb-upload-ramp-"));
  const data = randomBytes(SIZE);
  const path = join(work, `${PATIENT}.zip`);
  writeFileSync(path, data);
  pkg = { path, sha256: createHash("sha256").update(data).digest("hex") };
  writeFileSync(path + ".sha256", `${pkg.sha256}  ${PATIENT}.zip\n`);
}, 60_000);
afterAll(async () => {
  await Promise.all([sshd?.stop(), limited?.stop()]);
  if (work) rmSync(work, { recursive: true, force: true });
});

const sha = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");
const env = () => cleanEnv(work, { SCANBRIDGE_FIRST_LANES: "2" });
const args = (server: SshdServer, relay: Relay | undefined, folder: string) => [
  "--json", "upload", pkg.path,
  "--to", `sftp://${server.user}@127.0.0.1:${relay ? relay.port : server.port}/${folder}`,
  "--identity", server.privateKeyPath, "--host-fingerprint", server.hostFingerprint,
];
const journalPath = () => join(work, `.${PATIENT}.zip.upload.json`);

describe("ramp decisions", () => {
  it("adds a lane only while the lanes are window-bound and the last one raised the throughput; splits only a half worth a lane", () => {
    const perLane = CHANNEL_WINDOW_BYTES / 0.3; // one window per 300 ms round trip
    expect(windowBound(2 * perLane * 0.7, 2, 300, 4 * CHANNEL_WINDOW_BYTES)).toBe(true);
    expect(windowBound(2 * perLane * 0.2, 2, 300, 4 * CHANNEL_WINDOW_BYTES)).toBe(false); // line- or CPU-bound
    expect(windowBound(1e9, 2, Number.NaN, CHANNEL_WINDOW_BYTES)).toBe(false);
    expect(stillRising(10e6, 14e6, 3)).toBe(true);
    expect(stillRising(10e6, 11e6, 3)).toBe(false);
    expect(rampSplit(MIN_SEGMENT_BYTES, 3 * MIN_SEGMENT_BYTES)).toBe(2 * MIN_SEGMENT_BYTES);
    expect(rampSplit(0, MIN_SEGMENT_BYTES / 2)).toBeUndefined();
  });
});

describe("ramping lanes through a 300 ms relay", () => {
  it("starts with 2 lanes, adds lanes while sending, and the file arrives byte-identical with only the zip and marker left", async () => {
    const dir = sshd.mkdirOwned("ramp");
    const relay = await startRelay(sshd.port, { delayMs: 150 });
    try {
      const r = await runCli(args(sshd, relay, "ramp"), { cwd: work, env: env() });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const j = JSON.parse(r.stdout) as { lanes: number; lanesAdded: number; rttMs: number };
      expect(j.rttMs).toBeGreaterThanOrEqual(300);
      expect(j.lanesAdded).toBeGreaterThanOrEqual(1);
      expect(j.lanes).toBe(2 + j.lanesAdded);
      expect(sha(join(dir, `${PATIENT}.zip`))).toBe(pkg.sha256);
      expect(readdirSync(dir).sort()).toEqual([`${PATIENT}.zip`, `${PATIENT}.zip.sha256`]);
      expect(existsSync(journalPath())).toBe(false);
    } finally {
      await relay.close();
    }
  }, 120_000);

  it("interrupted after a split (the journal holds the new segment), a re-run resumes every segment and the file is byte-identical", async () => {
    const dir = sshd.mkdirOwned("ramp-cut");
    const relay = await startRelay(sshd.port, { delayMs: 150 });
    let segments: Array<{ start: number; end: number; done: number }> = [];
    try {
      const child = spawnCli(args(sshd, relay, "ramp-cut"), { cwd: work, env: env() });
      const exited = waitCli(child);
      // Poll (bounded) for the journal of a split: three segments or more.
      for (let i = 0; i < 1200 && child.exitCode === null; i++) {
        try {
          segments = (JSON.parse(readFileSync(journalPath(), "utf8")) as { segments: typeof segments }).segments;
        } catch {
          segments = [];
        }
        if (segments.length >= 3) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(segments.length).toBeGreaterThanOrEqual(3);
      child.kill("SIGINT");
      const r = await exited;
      expect(r.code, r.stdout + r.stderr).toBe(130);
      const saved = (JSON.parse(readFileSync(journalPath(), "utf8")) as { segments: typeof segments }).segments;
      // The segments still tile the file, whatever was split.
      const tiles = [...saved].sort((a, b) => a.start - b.start);
      expect(tiles[0]!.start).toBe(0);
      for (let i = 1; i < tiles.length; i++) expect(tiles[i]!.start).toBe(tiles[i - 1]!.end);
      expect(tiles.at(-1)!.end).toBe(SIZE);
      const doneBefore = saved.reduce((a, s) => a + (s.done - s.start), 0);
      expect(doneBefore).toBeGreaterThan(0);
      // The same destination (the journal belongs to it): every segment resumes where its journal says.
      const again = await runCli(args(sshd, relay, "ramp-cut"), { cwd: work, env: env() });
      expect(again.code, again.stdout + again.stderr).toBe(0);
      expect((JSON.parse(again.stdout) as { resumedFrom: number }).resumedFrom).toBe(doneBefore);
    } finally {
      await relay.close();
    }
    expect(sha(join(dir, `${PATIENT}.zip`))).toBe(pkg.sha256);
    expect(readdirSync(dir).sort()).toEqual([`${PATIENT}.zip`, `${PATIENT}.zip.sha256`]);
    expect(existsSync(journalPath())).toBe(false);
  }, 120_000);

  it("a server that refuses the ramp's next channel (MaxSessions 2): one CHANNELS_LIMITED warning, 2 lanes, success", async () => {
    const dir = limited.mkdirOwned("ramp-limited");
    const relay = await startRelay(limited.port, { delayMs: 150 });
    try {
      const r = await runCli(args(limited, relay, "ramp-limited"), { cwd: work, env: env() });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const j = JSON.parse(r.stdout) as { lanes: number; lanesAdded: number; warnings: Array<{ code: string }> };
      expect(j).toMatchObject({ lanes: 2, lanesAdded: 0 });
      expect(j.warnings.filter((w) => w.code === "CHANNELS_LIMITED")).toHaveLength(1);
      expect(sha(join(dir, `${PATIENT}.zip`))).toBe(pkg.sha256);
      expect(readdirSync(dir).sort()).toEqual([`${PATIENT}.zip`, `${PATIENT}.zip.sha256`]);
    } finally {
      await relay.close();
    }
  }, 120_000);
});
