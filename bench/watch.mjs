#!/usr/bin/env node
// Benchmark of `scanbridge watch` against its peers, in the same run on the same files:
//   1. ingest of one large package (default 1 GB) vs `unzip -t` followed by `unzip` of the same zip and `sync` of
//      what unzip wrote (one fsync per file and folder, as watch does before it files a delivery; the issue's peer
//      is "unzip -t + unzip + sync"); the ratio without the sync is printed too;
//   2. throughput of 100 small packages arriving at once;
//   3. CPU used by an idle watch over 60 s.
// Usage: npm run bench:watch -- [--size-mb 1024] [--small 100] [--idle-seconds 60] [--handmade] [--only-large]
//   --handmade: the large package is a hand-made zip (the patient's folder zipped with Info-ZIP `zip -1 -r`, no
//   manifest, no marker), so watch also runs intake (DICOM headers, its own manifest with every file's SHA-256).
// Needs the built fixtures (dist-fixtures/package-builder.js) and unzip on PATH.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BIN = join(ROOT, "bin", "scanbridge.js");
const { writeSealedPackage, writeSmallPackage, pseudoRandomStream } = await import(join(ROOT, "dist-fixtures/package-builder.js"));

const arg = (name, def) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const SIZE_MB = arg("--size-mb", 1024);
const SMALL = arg("--small", 100);
const IDLE_S = arg("--idle-seconds", 60);
const HANDMADE = process.argv.includes("--handmade");
const ONLY_LARGE = process.argv.includes("--only-large");
const work = mkdtempSync(join(tmpdir(), "sb-bench-watch-"));
const env = { ...process.env, NO_COLOR: "1", HOME: work, XDG_CONFIG_HOME: join(work, ".config") };

const timeIt = (fn) => {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
};
const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { env, stdio: ["ignore", "ignore", "pipe"], maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
};
const fmt = (s) => `${s.toFixed(2)} s`;
/** Every file and folder under `dir` (for `sync FILE...`: coreutils fsyncs each one it is given). */
const treeOf = (dir) => [dir, ...readdirSync(dir, { recursive: true }).map((p) => join(dir, p))];

// 1. One large package: 16 files, pixel-like data that deflates about 2:1, deflate level 1.
console.log(`building a ${SIZE_MB} MB package ...`);
const files = Array.from({ length: 16 }, (_, i) => {
  const size = Math.floor((SIZE_MB * 1024 * 1024) / 16);
  return { path: `CT/series${i}.dcm`, data: { size, stream: () => pseudoRandomStream(size, i + 1, true) } };
});
let big;
if (HANDMADE) {
  // The patient's folder on disk, zipped whole by Info-ZIP as a Linux user would (`zip -1 -r`).
  const folder = join(work, "folder", "Bench Patient");
  mkdirSync(join(folder, "CT"), { recursive: true });
  const { createWriteStream } = await import("node:fs");
  const { pipeline } = await import("node:stream/promises");
  for (const f of files) await pipeline(f.data.stream(), createWriteStream(join(folder, f.path)));
  const zipPath = join(work, "src", "Bench Patient.zip");
  mkdirSync(dirname(zipPath), { recursive: true });
  execFileSync("zip", ["-1", "-q", "-r", zipPath, "Bench Patient"], { cwd: join(work, "folder") });
  rmSync(join(work, "folder"), { recursive: true, force: true });
  big = { zipPath, markerPath: undefined, size: (await import("node:fs")).statSync(zipPath).size };
} else {
  big = await writeSealedPackage(join(work, "src"), "Bench Patient", files, { level: 1 });
}
console.log(`package: ${(big.size / 1e6).toFixed(0)} MB compressed`);
// Warm the page cache for everyone alike.
execFileSync("cat", [big.zipPath], { stdio: ["ignore", "ignore", "inherit"] });

const results = { peer: [], peerNoSync: [], ours: [] };
for (let round = 0; round < 2; round++) {
  const out = join(work, `unzip-${round}`);
  const tTest = timeIt(() => run("unzip", ["-tqq", big.zipPath]));
  const tExtract = timeIt(() => run("unzip", ["-qq", big.zipPath, "-d", out]));
  const tSync = timeIt(() => run("sync", treeOf(out)));
  const tPeer = tTest + tExtract + tSync;
  results.peer.push(tPeer);
  results.peerNoSync.push(tTest + tExtract);
  rmSync(out, { recursive: true, force: true });

  const drop = join(work, `drop-${round}`);
  const ready = join(work, `ready-${round}`);
  mkdirSync(drop, { recursive: true });
  copyFileSync(big.zipPath, join(drop, "Bench Patient.zip"));
  if (big.markerPath) copyFileSync(big.markerPath, join(drop, "Bench Patient.zip.sha256"));
  const t = timeIt(() => run(process.execPath, [BIN, "watch", drop, "--ready", ready, "--once", "--settle", "0", "--quiet"]));
  results.ours.push(t);
  // The audit log is in the state folder (beside ready/); the delivery itself is what counts here.
  if (!existsSync(join(ready, "Bench Patient", "CT", "series0.dcm"))) throw new Error("bench package was not ingested");
  rmSync(join(work, "scanbridge-state"), { recursive: true, force: true });
  rmSync(drop, { recursive: true, force: true });
  rmSync(ready, { recursive: true, force: true });
  console.log(`round ${round + 1}: unzip -t + unzip + sync ${fmt(tTest)} + ${fmt(tExtract)} + ${fmt(tSync)} = ${fmt(tPeer)}; scanbridge watch --once ${fmt(t)} = ${(t / tPeer).toFixed(2)}x (${(t / (tTest + tExtract)).toFixed(2)}x without the sync); load ${loadavg()[0].toFixed(2)}`);
}
const ratios = results.ours.map((t, i) => t / results.peer[i]);
const ratiosNoSync = results.ours.map((t, i) => t / results.peerNoSync[i]);
const ours = Math.min(...results.ours);
console.log(`large package, every round: ${ratios.map((r) => `${r.toFixed(2)}x`).join(", ")} of unzip -t + unzip + sync in the same round (target <= 1.2x on every run); without the sync ${ratiosNoSync.map((r) => `${r.toFixed(2)}x`).join(", ")}; best ${(SIZE_MB / ours).toFixed(0)} MB/s`);
console.log("  (scanbridge also copies the zip privately, hashes it and every file with SHA-256, and writes the specialist's page; unzip does none of that)");
rmSync(join(work, "src"), { recursive: true, force: true });
if (ONLY_LARGE) {
  rmSync(work, { recursive: true, force: true });
  process.exit(0);
}

// 2. Many small packages at once.
{
  const drop = join(work, "drop-small");
  const ready = join(work, "ready-small");
  await Promise.all(Array.from({ length: SMALL }, (_, i) => writeSmallPackage(drop, `Small ${i}`)));
  const t = timeIt(() => run(process.execPath, [BIN, "watch", drop, "--ready", ready, "--once", "--settle", "0", "--concurrency", "4", "--quiet"]));
  const n = readFileSync(join(work, "scanbridge-state", "audit.jsonl"), "utf8").split("\n").filter((l) => l.includes('"event":"ready"')).length;
  console.log(`${SMALL} small packages: ${n} ready in ${fmt(t)} = ${(n / t).toFixed(1)} packages/s (incl. process start)`);
}

// 3. Idle CPU.
{
  const drop = join(work, "drop-idle");
  mkdirSync(drop, { recursive: true });
  const child = spawn(process.execPath, [BIN, "watch", drop, "--ready", join(work, "ready-idle"), "--quiet"], { env, stdio: "ignore" });
  const ticks = () => {
    const f = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1].split(" ");
    return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15), clock ticks
  };
  const hz = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
  await new Promise((r) => setTimeout(r, 3000)); // start-up is not idle
  const c0 = ticks();
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, IDLE_S * 1000));
  const c1 = ticks();
  const secs = (Date.now() - t0) / 1000;
  child.kill("SIGTERM");
  await new Promise((r) => child.on("close", r));
  console.log(`idle watch: ${(((c1 - c0) / hz / secs) * 100).toFixed(3)}% of one CPU over ${secs.toFixed(0)} s (${c1 - c0} ticks; target < 1%)`);
}

rmSync(work, { recursive: true, force: true });
