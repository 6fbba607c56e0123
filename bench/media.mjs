#!/usr/bin/env node
// Benchmark: `scanbridge media <ready folder> --out DIR --iso FILE` against its peer on the same files in the same
// run: `cp -r` of the delivery folder followed by `xorriso -as mkisofs -iso-level 1` of the copy. Every run is
// printed with its ratio (goal: within 1.5x), plus scanbridge's peak memory (RSS) to show it stays flat.
// Data: about 1 GB of synthetic CT-like DICOM (512x512, 16-bit, explicit VR LE, real pixel module so previews are
// decoded) in 2,000 files of 4 series, two PDF reports and a manifest.json, generated once into .bench-cache/.
// Usage: npm run bench:media [-- --size-mb 1000 --files 2000 --rounds 3]
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const SIZE_MB = arg("size-mb", 1000);
const FILES = arg("files", 2000);
const ROUNDS = arg("rounds", 3);
const CACHE = join(ROOT, ".bench-cache");
const DATA = join(CACHE, `media-${SIZE_MB}mb-${FILES}`);
const DELIVERY = join(DATA, "Bench Patient");
const OUT = join(CACHE, "media-out");
const BIN = join(ROOT, "bin", "scanbridge.js");
const TIME = "/usr/bin/time";
const SLICE = 512 * 512 * 2;

for (const [bin, pkg] of [["xorriso", "xorriso"], ["time", "time"]]) {
  if (spawnSync("sh", ["-c", `command -v ${bin}`]).status !== 0) throw new Error(`${bin} is missing: apt-get install ${pkg}`);
}

/** CT-like pixels (body disc, texture, noise), varied per file so nothing deduplicates. */
function ctSlice(seed) {
  const px = new Uint16Array(SLICE / 2);
  let s = (seed * 2654435761) >>> 0;
  for (let i = 0; i < px.length; i++) {
    const x = i % 512, y = (i / 512) | 0;
    const r = Math.hypot(x - 256, y - 256);
    s = (s * 1664525 + 1013904223) >>> 0;
    const body = r < 215 ? 1000 + ((Math.sin(x / 17 + seed) * 60 + Math.cos(y / 23) * 40) | 0) : 24;
    px[i] = Math.max(0, Math.min(4095, body + ((s >>> 24) & 0x1f)));
  }
  return Buffer.from(px.buffer);
}

async function generate() {
  if (existsSync(join(DATA, ".complete"))) return;
  rmSync(DATA, { recursive: true, force: true });
  mkdirSync(DELIVERY, { recursive: true });
  const { buildDicom, TransferSyntax } = await import(join(ROOT, "dist-fixtures/dicom-builder.js"));
  const { manifestFor } = await import(join(ROOT, "dist-fixtures/package-builder.js"));
  const { pdfReport } = await import(join(ROOT, "dist-fixtures/media-builder.js"));
  const perFile = Math.max(1, Math.round((SIZE_MB * 1e6) / FILES / SLICE));
  console.error(`generating ${FILES} DICOM files of ${((perFile * SLICE) / 1e6).toFixed(2)} MB (${perFile} frame(s) of 512x512) into ${DATA} (once)`);
  const base = ctSlice(1);
  const listed = [];
  const studyUid = "1.2.826.0.1.3680043.9.7433.88.1";
  for (let i = 0; i < FILES; i++) {
    const series = Math.floor((i * 4) / FILES) + 1;
    const rel = `DICOM/SE${series}/IM${String(i + 1).padStart(5, "0")}.dcm`;
    mkdirSync(join(DELIVERY, dirname(rel)), { recursive: true });
    const bytes = perFile * SLICE;
    const file = buildDicom({
      transferSyntax: TransferSyntax.explicitLE,
      patientName: "BENCH^SYNTHETIC", patientId: "BENCH-0001", patientBirthDate: "19700101", patientSex: "O",
      studyInstanceUid: studyUid, seriesInstanceUid: `${studyUid}.${series}`, sopInstanceUid: `${studyUid}.${series}.${i + 1}`,
      studyDate: "20250302", studyDescription: "CT CHEST", modality: "CT", instanceNumber: i + 1, seriesNumber: series,
      pixelDataBytes: bytes,
      extraElements: perFile > 1 ? [{ tag: 0x00280008, vr: "IS", value: String(perFile) }] : [],
    });
    const img = Buffer.alloc(bytes);
    for (let f = 0; f < perFile; f++) base.copy(img, f * SLICE);
    img.writeUInt32LE(i, 0);
    for (let k = 0; k < img.length; k += 4096) img[k] ^= i & 0xff;
    img.copy(file, file.length - bytes);
    const fd = openSync(join(DELIVERY, rel), "w");
    writeSync(fd, file);
    closeSync(fd);
    listed.push({ path: rel, size: file.length, sha256: createHash("sha256").update(file).digest("hex"), kind: "dicom" });
  }
  for (const name of ["report CT chest.pdf", "discharge letter.pdf"]) {
    const pdf = pdfReport(name);
    writeFileSync(join(DELIVERY, name), pdf);
    listed.push({ path: name, size: pdf.length, sha256: createHash("sha256").update(pdf).digest("hex"), kind: "document" });
  }
  writeFileSync(join(DELIVERY, "manifest.json"), JSON.stringify(manifestFor("Bench Patient", listed), null, 2));
  writeFileSync(join(DATA, ".complete"), new Date().toISOString());
}

function totalBytes(dir) {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n += statSync(join(e.parentPath ?? e.path, e.name)).size;
  return n;
}

/** Run a command under /usr/bin/time; returns wall seconds and peak RSS in MB. */
function timed(cmd, args, env = process.env) {
  // Each side starts with no dirty pages of the other's writes still being flushed.
  execFileSync("sync");
  const t0 = process.hrtime.bigint();
  const r = spawnSync(TIME, ["-f", "%M", cmd, ...args], { encoding: "utf8", env, maxBuffer: 64 << 20 });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  const rss = Number(r.stderr.trim().split("\n").pop()) / 1024;
  return { secs, rss };
}

await generate();
const bytes = totalBytes(DELIVERY);
// Warm the page cache so neither side pays for the first read.
execFileSync("sh", ["-c", `cat "${DELIVERY}"/DICOM/*/* > /dev/null`]);
console.log(`bench:media — ${FILES} DICOM files + 2 PDFs, ${(bytes / 1e6).toFixed(0)} MB, ${ROUNDS} round(s); peer: cp -r + xorriso -as mkisofs -iso-level 1`);
console.log("round  peer cp -r  peer xorriso  peer total   scanbridge media (file-set + ISO)   ratio   scanbridge peak RSS");
const ratios = [];
for (let round = 1; round <= ROUNDS; round++) {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  const cp = timed("cp", ["-r", DELIVERY, join(OUT, "peer")]);
  const xo = timed("xorriso", ["-as", "mkisofs", "-iso-level", "1", "-V", "PEER", "-quiet", "-o", join(OUT, "peer.iso"), join(OUT, "peer")]);
  rmSync(join(OUT, "peer"), { recursive: true, force: true });
  rmSync(join(OUT, "peer.iso"), { force: true });
  const env = { ...process.env, NO_COLOR: "1" };
  for (const k of Object.keys(env)) if (k.startsWith("SCANBRIDGE_")) delete env[k];
  const sb = timed(process.execPath, [BIN, "media", DELIVERY, "--out", join(OUT, "fileset"), "--iso", join(OUT, "fileset.iso"), "--medium", "usb", "--quiet"], env);
  const peer = cp.secs + xo.secs;
  const ratio = sb.secs / peer;
  ratios.push(ratio);
  console.log(`${String(round).padStart(5)}  ${cp.secs.toFixed(2).padStart(9)}s  ${xo.secs.toFixed(2).padStart(11)}s  ${peer.toFixed(2).padStart(9)}s   ${sb.secs.toFixed(2).padStart(32)}s   ${ratio.toFixed(2).padStart(5)}x   ${sb.rss.toFixed(0).padStart(6)} MB`);
  rmSync(OUT, { recursive: true, force: true });
}
console.log(`ratios, every run: ${ratios.map((r) => r.toFixed(2) + "x").join(", ")} (goal: within 1.5x of the peer)`);
