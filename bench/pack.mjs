#!/usr/bin/env node
// Benchmark: `scanbridge pack` against Info-ZIP `zip -r` and `7z a -tzip` at equal compression level, deflate and
// store, plus a plain read of the same bytes; header inspection on and off; DICOM header reading next to dcmdump.
// Data: about 1 GB of synthetic CT-like DICOM in about 2,000 files, generated once into .bench-cache/.
// Usage: npm run bench:pack [-- --size-mb 1000 --files 2000 --rounds 1]
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync, openSync, writeSync, closeSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const SIZE_MB = arg("size-mb", 1000);
const FILES = arg("files", 2000);
const ROUNDS = arg("rounds", 1);
const CACHE = join(ROOT, ".bench-cache");
const DATA = join(CACHE, `ct-${SIZE_MB}mb-${FILES}`);
const OUT = join(CACHE, "out");
const BIN = join(ROOT, "bin", "scanbridge.js");
const TIME = "/usr/bin/time";

function need(bin, pkg) {
  if (spawnSync("sh", ["-c", `command -v ${bin}`]).status === 0) return;
  if (process.getuid?.() === 0) execFileSync("apt-get", ["install", "-y", "--no-install-recommends", pkg], { stdio: "inherit" });
  else throw new Error(`${bin} is missing: apt-get install ${pkg}`);
}

/** CT-like 16-bit pixels: smooth anatomy-like field plus noise, 12 bits used, like a real CT slice. */
function ctSlice(seed, bytes) {
  const px = new Uint16Array(bytes / 2);
  const side = Math.round(Math.sqrt(px.length));
  let s = seed * 2654435761 >>> 0;
  for (let i = 0; i < px.length; i++) {
    const x = i % side, y = (i / side) | 0;
    const dx = x - side / 2, dy = y - side / 2;
    const r = Math.sqrt(dx * dx + dy * dy);
    s = (s * 1664525 + 1013904223) >>> 0;
    const noise = (s >>> 24) & 0x1f;
    const body = r < side * 0.42 ? 1000 + ((Math.sin(x / 17 + seed) * 60 + Math.cos(y / 23) * 40) | 0) : 24;
    px[i] = Math.max(0, Math.min(4095, body + noise));
  }
  return Buffer.from(px.buffer);
}

async function generate() {
  if (existsSync(join(DATA, ".complete"))) return;
  rmSync(DATA, { recursive: true, force: true });
  mkdirSync(DATA, { recursive: true });
  const { buildDicom, TransferSyntax } = await import(join(ROOT, "dist-fixtures/dicom-builder.js"));
  const per = Math.floor((SIZE_MB * 1e6) / FILES / 2) * 2;
  const studyUid = "1.2.826.0.1.3680043.9.7777.1";
  console.error(`generating ${FILES} CT-like DICOM files of ${(per / 1e6).toFixed(2)} MB into ${DATA} (once)`);
  const slice = ctSlice(1, per);
  for (let i = 0; i < FILES; i++) {
    const series = Math.floor(i / 250) + 1;
    const dir = join(DATA, "DICOM", `SE${String(series).padStart(4, "0")}`);
    mkdirSync(dir, { recursive: true });
    const header = buildDicom({
      transferSyntax: TransferSyntax.explicitLE,
      patientName: "BENCH^SYNTHETIC", patientId: "BENCH-0001", patientBirthDate: "19700101", patientSex: "O",
      studyInstanceUid: studyUid, seriesInstanceUid: `${studyUid}.${series}`, sopInstanceUid: `${studyUid}.${series}.${i + 1}`,
      studyDate: "20250302", studyDescription: "CT CHEST", modality: "CT", instanceNumber: i + 1, seriesNumber: series,
      pixelDataBytes: per,
    });
    // Replace the pixel data with CT-like content (varies per file so nothing deduplicates).
    const img = Buffer.from(slice);
    img.writeUInt32LE(i, 0);
    for (let k = 0; k < img.length; k += 4096) img[k] ^= i & 0xff;
    img.copy(header, header.length - per);
    const fd = openSync(join(dir, `IM${String(i + 1).padStart(5, "0")}`), "w");
    writeSync(fd, header);
    closeSync(fd);
  }
  writeFileSync(join(DATA, ".complete"), new Date().toISOString());
}

function totalBytes(dir) {
  let n = 0, files = 0;
  for (const f of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (f.isFile() && f.name !== ".complete") {
      n += statSync(join(f.parentPath ?? f.path, f.name)).size;
      files++;
    }
  }
  return { bytes: n, files };
}

/** Run a command under GNU time; returns seconds and peak RSS (MB). */
function timed(label, cmd, args, opts = {}) {
  const r = spawnSync(TIME, ["-f", "%e %M", cmd, ...args], { encoding: "utf8", maxBuffer: 1 << 26, ...opts });
  if (r.status !== 0) throw new Error(`${label} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  const last = r.stderr.trim().split("\n").pop().split(" ");
  return { label, seconds: Number(last[0]), rssMB: Number(last[1]) / 1024 };
}

function clean() {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
}

async function main() {
  need("zip", "zip");
  need("7z", "p7zip-full");
  need("dcmdump", "dcmtk");
  if (!existsSync(TIME)) need("time", "time");
  await generate();
  const { bytes, files } = totalBytes(DATA);
  const mb = bytes / 1e6;
  console.error(`data: ${files} files, ${mb.toFixed(0)} MB`);
  const env = { ...process.env, NO_COLOR: "1" };
  const results = [];
  const sizeOf = (p) => statSync(p).size;
  const best = (fn) => {
    let b;
    for (let r = 0; r < ROUNDS; r++) {
      clean();
      const x = fn();
      if (!b || x.seconds < b.seconds) b = x;
    }
    return b;
  };
  // Warm the page cache, and measure a plain read of the same bytes.
  timed("warm", "sh", ["-c", `find '${DATA}' -type f -exec cat {} + > /dev/null`]);
  results.push({ ...best(() => timed("plain read (cat)", "sh", ["-c", `find '${DATA}' -type f -exec cat {} + > /dev/null`])), size: null });

  const runs = [
    ["scanbridge pack --level 6", () => timed("scanbridge -6", process.execPath, [BIN, "pack", DATA, "--patient", "Bench Synthetic", "--out", OUT, "--level", "6", "--quiet"], { env }), () => join(OUT, "Bench Synthetic.zip")],
    ["zip -r -6", () => timed("zip -6", "zip", ["-q", "-r", "-6", join(OUT, "z.zip"), "."], { cwd: DATA }), () => join(OUT, "z.zip")],
    ["7z a -tzip -mx=5", () => timed("7z -mx=5", "7z", ["a", "-tzip", "-mx=5", "-bd", "-bso0", join(OUT, "s.zip"), "."], { cwd: DATA }), () => join(OUT, "s.zip")],
    ["scanbridge pack --store", () => timed("scanbridge store", process.execPath, [BIN, "pack", DATA, "--patient", "Bench Synthetic", "--out", OUT, "--store", "--quiet"], { env }), () => join(OUT, "Bench Synthetic.zip")],
    ["zip -r -0", () => timed("zip -0", "zip", ["-q", "-r", "-0", join(OUT, "z.zip"), "."], { cwd: DATA }), () => join(OUT, "z.zip")],
    ["7z a -tzip -mx=0", () => timed("7z -mx=0", "7z", ["a", "-tzip", "-mx=0", "-bd", "-bso0", join(OUT, "s.zip"), "."], { cwd: DATA }), () => join(OUT, "s.zip")],
    ["scanbridge pack -6, no inspection", () => timed("scanbridge -6 no-inspect", process.execPath, [BIN, "pack", DATA, "--patient", "Bench Synthetic", "--out", OUT, "--level", "6", "--quiet"], { env: { ...env, SCANBRIDGE_BENCH_SKIP_INSPECT: "1" } }), () => join(OUT, "Bench Synthetic.zip")],
  ];
  for (const [label, run, out] of runs) {
    let size;
    const r = best(() => {
      const x = run();
      size = sizeOf(out());
      return x;
    });
    results.push({ ...r, label, size });
  }
  clean();
  // DICOM header reading: scanbridge inspect (pack --dry-run) vs dcmdump over the same files.
  const dry = best(() => timed("scanbridge pack --dry-run", process.execPath, [BIN, "pack", DATA, "--patient", "Bench Synthetic", "--dry-run", "--quiet"], { env }));
  const dcm = best(() => timed("dcmdump (headers)", "sh", ["-c", `find '${DATA}/DICOM' -type f -print0 | xargs -0 dcmdump -q +P 0010,0010 +P 0020,000d > /dev/null`]));

  const get = (l) => results.find((r) => r.label === l);
  const rate = (r) => mb / r.seconds;
  const lines = [];
  lines.push(`pack benchmark: ${files} files, ${mb.toFixed(0)} MB CT-like DICOM, warm cache, best of ${ROUNDS}`);
  lines.push("| run | seconds | MB/s | zip size (MB) | peak RSS (MB) |");
  lines.push("|---|---:|---:|---:|---:|");
  for (const r of results) lines.push(`| ${r.label} | ${r.seconds.toFixed(2)} | ${rate(r).toFixed(0)} | ${r.size ? (r.size / 1e6).toFixed(1) : "-"} | ${r.rssMB.toFixed(0)} |`);
  const sb6 = get("scanbridge pack --level 6"), z6 = get("zip -r -6"), s5 = get("7z a -tzip -mx=5");
  const sbs = get("scanbridge pack --store"), noi = get("scanbridge pack -6, no inspection");
  lines.push("");
  lines.push(`deflate: scanbridge ${(z6.seconds / sb6.seconds).toFixed(2)}x zip -6 throughput (target >= 1.4), ${(s5.seconds / sb6.seconds).toFixed(2)}x 7z -mx=5 (target >= 1.0)`);
  lines.push(`store: scanbridge ${rate(sbs).toFixed(0)} MB/s (target >= 600), zip -0 ${rate(get("zip -r -0")).toFixed(0)} MB/s, 7z -mx=0 ${rate(get("7z a -tzip -mx=0")).toFixed(0)} MB/s`);
  lines.push(`inspection adds ${(((sb6.seconds - noi.seconds) / noi.seconds) * 100).toFixed(1)}% to pack time (target <= 10%)`);
  lines.push(`header reading: scanbridge pack --dry-run ${(files / dry.seconds).toFixed(0)} files/s (scan + classify + inspect), dcmdump ${(files / dcm.seconds).toFixed(0)} files/s`);
  console.log(lines.join("\n"));
  writeFileSync(join(CACHE, "pack-results.md"), lines.join("\n") + "\n");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
