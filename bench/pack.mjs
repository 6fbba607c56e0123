#!/usr/bin/env node
// Benchmark: `scanbridge pack` against Info-ZIP `zip -r` and `7z a -tzip` (2 threads) at equal compression level,
// deflate and store, on several kinds of data of different compressibility, in the same run; plus a plain read.
// Kinds: smooth (CT-like, little noise), noisy (CT-like, 10 bits of noise), mixed (CT-like DICOM with JPEG and
// PDF files, i.e. already-compressed content), ct (the earlier bundled data). Generated once into .bench-cache/.
// Store mode is reported with and without the final fsync (pack --json gives its timings).
// Every scanbridge run also prints its phases from pack --json (start-up, scan, inspection, zip, fsync, finish).
// Usage: npm run bench:pack [-- --size-mb 300 --files 600 --rounds 2 --kinds smooth,noisy,mixed --inspection]
//        node bench/pack.mjs --rss-scan [100,1000,5000]   peak RSS of pack (deflate and --store) at each size in MB:
//        one 100 MB set of noisy CT-like files, hard-linked as many times as needed (no extra disk for the input;
//        the zip itself is written and deleted after each run; check `df` first).
//        node bench/pack.mjs --rss-scan 100,1000,5000 --rss-files 1000,10000,50000   and by number of files: one set
//        of 500 small CT-like files (20 KB), hard-linked as many times as needed (50,000 files: a 1 GB package).
//        ... --rss-large 100,5000   and of large files (25 MB each, read in several pieces). Store rows also give
//        Info-ZIP `zip -r -0`'s peak RSS on the same input, from the same run. `--rss-modes store` (or deflate):
//        one mode only. The environment is passed on (e.g. GLIBC_TUNABLES, see the README's memory section);
//        `--node-flags "--no-turbofan"` runs scanbridge under those Node/V8 flags (to see what the JIT adds).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, openSync, writeSync, closeSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const SIZE_MB = arg("size-mb", 300);
const FILES = arg("files", 600);
const ROUNDS = arg("rounds", 1);
const KINDS = (process.argv.includes("--kinds") ? process.argv[process.argv.indexOf("--kinds") + 1] : "smooth,noisy,mixed").split(",");
const INSPECTION = process.argv.includes("--inspection");
const RSS_SCAN = process.argv.includes("--rss-scan")
  ? (process.argv[process.argv.indexOf("--rss-scan") + 1]?.match(/^[\d,]+$/) ? process.argv[process.argv.indexOf("--rss-scan") + 1] : "100,1000,5000").split(",").map(Number)
  : undefined;
const RSS_FILES = process.argv.includes("--rss-files") ? process.argv[process.argv.indexOf("--rss-files") + 1].split(",").map(Number) : [];
const RSS_LARGE = process.argv.includes("--rss-large") ? process.argv[process.argv.indexOf("--rss-large") + 1].split(",").map(Number) : [];
const RSS_MODES = process.argv.includes("--rss-modes") ? process.argv[process.argv.indexOf("--rss-modes") + 1].split(",") : ["deflate", "store"];
// Node/V8 flags for scanbridge's runs (not the peers'), e.g. --node-flags "--no-turbofan" to see what V8's optimizing
// compiler adds to peak RSS (README, memory section). Empty by default: the runs are the shipped command.
const NODE_FLAGS = process.argv.includes("--node-flags") ? process.argv[process.argv.indexOf("--node-flags") + 1].split(" ").filter(Boolean) : [];
const CACHE = join(ROOT, ".bench-cache");
let DATA = join(CACHE, `ct-${SIZE_MB}mb-${FILES}`);
const OUT = join(CACHE, "out");
const BIN = join(ROOT, "bin", "scanbridge.js");
const TIME = "/usr/bin/time";

function need(bin, pkg) {
  if (spawnSync("sh", ["-c", `command -v ${bin}`]).status === 0) return;
  if (process.getuid?.() === 0) execFileSync("apt-get", ["install", "-y", "--no-install-recommends", pkg], { stdio: "inherit" });
  else throw new Error(`${bin} is missing: apt-get install ${pkg}`);
}

/** CT-like 16-bit pixels: smooth anatomy-like field plus noise, 12 bits used, like a real CT slice. */
function ctSlice(seed, bytes, noiseMask = 0x1f) {
  const px = new Uint16Array(bytes / 2);
  const side = Math.round(Math.sqrt(px.length));
  let s = seed * 2654435761 >>> 0;
  for (let i = 0; i < px.length; i++) {
    const x = i % side, y = (i / side) | 0;
    const dx = x - side / 2, dy = y - side / 2;
    const r = Math.sqrt(dx * dx + dy * dy);
    s = (s * 1664525 + 1013904223) >>> 0;
    const noise = (s >>> 20) & noiseMask;
    const body = r < side * 0.42 ? 1000 + ((Math.sin(x / 17 + seed) * 60 + Math.cos(y / 23) * 40) | 0) : 24;
    px[i] = Math.max(0, Math.min(4095, body + noise));
  }
  return Buffer.from(px.buffer);
}

const NOISE = { ct: 0x1f, smooth: 0x03, noisy: 0x3ff, mixed: 0x1f };

/** Bytes that look like a JPEG or a PDF: a real header, then incompressible content (as in real ones). */
function compressedLike(kind, i, bytes) {
  const head = kind === "jpg" ? Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00]) : Buffer.from(`%PDF-1.7\n%\xe2\xe3\n1 0 obj <</Length ${bytes}/Filter/FlateDecode>>\nstream\n`, "latin1");
  const body = Buffer.alloc(bytes);
  let s = (i * 2654435761) >>> 0;
  for (let k = 0; k < bytes; k += 4) {
    s = (s * 1664525 + 1013904223) >>> 0;
    body.writeUInt32LE(s, Math.min(k, bytes - 4));
  }
  head.copy(body, 0);
  return body;
}

async function generate(kind) {
  DATA = join(CACHE, `${kind}-${SIZE_MB}mb-${FILES}`);
  await generateInto(kind, DATA, SIZE_MB, FILES);
}

async function generateInto(kind, DATA, SIZE_MB, FILES) {
  if (existsSync(join(DATA, ".complete"))) return;
  rmSync(DATA, { recursive: true, force: true });
  mkdirSync(DATA, { recursive: true });
  const { buildDicom, TransferSyntax } = await import(join(ROOT, "dist-fixtures/dicom-builder.js"));
  const per = Math.floor((SIZE_MB * 1e6) / FILES / 2) * 2;
  const studyUid = "1.2.826.0.1.3680043.9.7777.1";
  console.error(`generating ${FILES} CT-like DICOM files of ${(per / 1e6).toFixed(2)} MB into ${DATA} (once)`);
  const slice = ctSlice(1, per, NOISE[kind]);
  for (let i = 0; i < FILES; i++) {
    if (kind === "mixed" && i % 10 >= 7) {
      // 20% photos (JPEG), 10% reports (PDF): already compressed.
      const ext = i % 10 === 9 ? "pdf" : "jpg";
      const dir = join(DATA, ext === "pdf" ? "REPORTS" : "PHOTOS");
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `F${String(i + 1).padStart(5, "0")}.${ext}`), compressedLike(ext, i, per));
      continue;
    }
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
  return { label, seconds: Number(last[0]), rssMB: Number(last[1]) / 1024, stdout: r.stdout };
}

function clean() {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
}

/**
 * A folder of `totalMB` of input (0.5 MB files), or of `files` small files (20 KB): hard links to one generated set
 * (100 MB of 200 files, or 10 MB of 500 files), in numbered sub-folders.
 */
async function linkFarm(totalMB, count) {
  const small = count !== undefined;
  const base = join(CACHE, small ? "noisy-10mb-500" : "noisy-100mb-200");
  await generateInto("noisy", base, small ? 10 : 100, small ? 500 : 200);
  const dir = join(CACHE, small ? `rss-${count}-files` : `rss-${totalMB}mb`);
  if (existsSync(join(dir, ".complete"))) return dir;
  rmSync(dir, { recursive: true, force: true });
  const copies = small ? Math.max(1, Math.round(count / 500)) : Math.max(1, Math.round(totalMB / 100));
  const files = readdirSync(base, { recursive: true, withFileTypes: true }).filter((f) => f.isFile() && f.name !== ".complete");
  for (let c = 0; c < copies; c++) {
    for (const f of files) {
      const from = join(f.parentPath ?? f.path, f.name);
      const to = join(dir, `copy-${String(c + 1).padStart(3, "0")}`, from.slice(base.length + 1));
      mkdirSync(dirname(to), { recursive: true });
      linkSync(from, to);
    }
  }
  writeFileSync(join(dir, ".complete"), new Date().toISOString());
  return dir;
}

/**
 * A folder of `totalMB` of large files (25 MB each, fifty of the noisy 0.5 MB files end to end: a DICOM header, then
 * CT-like data): hard links to one such file. Large files are read in several pieces each (multi-frame images,
 * videos, big PDFs); the sets above have only one-piece files.
 */
async function largeFarm(totalMB) {
  const base = join(CACHE, "noisy-100mb-200");
  await generateInto("noisy", base, 100, 200);
  const dir = join(CACHE, `rss-large-${totalMB}mb`);
  if (existsSync(join(dir, ".complete"))) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const parts = readdirSync(base, { recursive: true, withFileTypes: true }).filter((f) => f.isFile() && f.name !== ".complete").slice(0, 50);
  const big = join(dir, ".big.dcm");
  writeFileSync(big, Buffer.concat(parts.map((f) => readFileSync(join(f.parentPath ?? f.path, f.name)))));
  for (let i = 0; i < Math.max(1, Math.round(totalMB / 25)); i++) linkSync(big, join(dir, `IMG${String(i + 1).padStart(4, "0")}.dcm`));
  rmSync(big);
  writeFileSync(join(dir, ".complete"), new Date().toISOString());
  return dir;
}

/**
 * Peak RSS of pack (deflate -6 and --store) at each size, then at each number of small files, then at each size of
 * large files: flat means memory does not grow with the package.
 */
async function rssScan(sizes, fileCounts, largeSizes = []) {
  const lines = [];
  const load = () => spawnSync("uptime", { encoding: "utf8" }).stdout.trim().replace(/.*load/, "load");
  lines.push(`pack peak RSS by package size (noisy CT-like data, 0.5 MB files) and by number of files (20 KB files); ${load()}; GLIBC_TUNABLES=${process.env.GLIBC_TUNABLES ?? "(unset)"}; node flags: ${NODE_FLAGS.join(" ") || "(none)"}`);
  lines.push("| input | mode | seconds | MB/s | zip size (MB) | peak RSS (MB) | zip ms (no fsync) | fsync ms | `zip -r -0` peak RSS (MB) |");
  lines.push("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
  const sets = [...sizes.map((mb) => ({ mb })), ...fileCounts.map((files) => ({ files })), ...largeSizes.map((large) => ({ large }))];
  for (const { mb, files, large } of sets) {
    const dir = large !== undefined ? await largeFarm(large) : await linkFarm(mb, files);
    const { bytes, files: n } = totalBytes(dir);
    const input = large !== undefined ? `${n} files of 25 MB, ${(bytes / 1e6).toFixed(0)} MB` : files === undefined ? `${(bytes / 1e6).toFixed(0)} MB` : `${n.toLocaleString("en")} files, ${(bytes / 1e6).toFixed(0)} MB`;
    for (const [mode, extra] of [["deflate -6", ["--level", "6"]], ["store", ["--store"]]].filter(([m]) => RSS_MODES.includes(m.split(" ")[0]))) {
      clean();
      const x = timed(`pack ${mode}`, process.execPath, [...NODE_FLAGS, BIN, "pack", dir, "--patient", "Bench Synthetic", "--out", OUT, "--json", ...extra], { env: { ...process.env, NO_COLOR: "1" } });
      const j = JSON.parse(x.stdout);
      let peer = "-";
      if (mode === "store") {
        clean();
        peer = timed("zip -r -0", "zip", ["-q", "-r", "-0", join(OUT, "peer.zip"), "."], { cwd: dir }).rssMB.toFixed(0);
      }
      const line = `| ${input} | ${mode} | ${x.seconds.toFixed(2)} | ${(bytes / 1e6 / x.seconds).toFixed(0)} | ${(j.size / 1e6).toFixed(0)} | ${x.rssMB.toFixed(0)} | ${j.timings.zipMs - j.timings.fsyncMs} | ${j.timings.fsyncMs} | ${peer} |`;
      console.error(line);
      lines.push(line);
    }
    clean();
  }
  lines.push(`(${load()} at the end)`);
  return lines;
}

async function main() {
  if (RSS_SCAN) {
    const lines = await rssScan(RSS_SCAN, RSS_FILES, RSS_LARGE);
    console.log(lines.join("\n"));
    writeFileSync(join(CACHE, "pack-rss.md"), lines.join("\n") + "\n");
    return;
  }
  need("zip", "zip");
  need("7z", "p7zip-full");
  if (INSPECTION) need("dcmdump", "dcmtk");
  if (!existsSync(TIME)) need("time", "time");
  const all = [];
  for (const kind of KINDS) all.push(...(await benchKind(kind)));
  console.log(all.join("\n"));
  writeFileSync(join(CACHE, "pack-results.md"), all.join("\n") + "\n");
}

async function benchKind(kind) {
  await generate(kind);
  const { bytes, files } = totalBytes(DATA);
  const mb = bytes / 1e6;
  console.error(`${kind}: ${files} files, ${mb.toFixed(0)} MB`);
  const env = { ...process.env, NO_COLOR: "1" };
  const results = [];
  const sizeOf = (p) => statSync(p).size;
  const every = (fn) => {
    const xs = [];
    for (let r = 0; r < ROUNDS; r++) {
      clean();
      xs.push(fn());
    }
    return xs;
  };
  timed("warm", "sh", ["-c", `find '${DATA}' -type f -exec cat {} + > /dev/null`]);
  for (const x of every(() => timed("plain read (cat)", "sh", ["-c", `find '${DATA}' -type f -exec cat {} + > /dev/null`]))) results.push({ ...x, size: null });
  const sb = (label, extra) => () => {
    const x = timed(label, process.execPath, [...NODE_FLAGS, BIN, "pack", DATA, "--patient", "Bench Synthetic", "--out", OUT, "--json", ...extra], { env });
    const j = JSON.parse(x.stdout);
    return { ...x, fsyncS: (j.timings?.fsyncMs ?? 0) / 1000, timings: j.timings };
  };
  const runs = [
    ["scanbridge pack --level 6", sb("scanbridge -6", ["--level", "6"]), () => join(OUT, "Bench Synthetic.zip")],
    ["zip -r -6", () => timed("zip -6", "zip", ["-q", "-r", "-6", join(OUT, "z.zip"), "."], { cwd: DATA }), () => join(OUT, "z.zip")],
    ["7z a -tzip -mx=5 -mmt=2", () => timed("7z -mx=5", "7z", ["a", "-tzip", "-mx=5", "-mmt=2", "-bd", "-bso0", join(OUT, "s.zip"), "."], { cwd: DATA }), () => join(OUT, "s.zip")],
    ["scanbridge pack --store", sb("scanbridge store", ["--store"]), () => join(OUT, "Bench Synthetic.zip")],
    ["zip -r -0", () => timed("zip -0", "zip", ["-q", "-r", "-0", join(OUT, "z.zip"), "."], { cwd: DATA }), () => join(OUT, "z.zip")],
    ["7z a -tzip -mx=0", () => timed("7z -mx=0", "7z", ["a", "-tzip", "-mx=0", "-bd", "-bso0", join(OUT, "s.zip"), "."], { cwd: DATA }), () => join(OUT, "s.zip")],
  ];
  if (INSPECTION) runs.push(["scanbridge pack -6, no inspection", () => timed("scanbridge -6 no-inspect", process.execPath, [...NODE_FLAGS, BIN, "pack", DATA, "--patient", "Bench Synthetic", "--out", OUT, "--level", "6", "--quiet"], { env: { ...env, SCANBRIDGE_BENCH_SKIP_INSPECT: "1" } }), () => join(OUT, "Bench Synthetic.zip")]);
  // Interleaved rounds: each round runs every tool once, so load from other processes hits them alike.
  const byLabel = new Map(runs.map(([l]) => [l, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const [label, run, out] of runs) {
      clean();
      const x = run();
      byLabel.get(label).push({ ...x, label, size: sizeOf(out()), round: r + 1 });
    }
  }
  for (const xs of byLabel.values()) results.push(...xs);
  clean();
  const lines = [];
  const load = spawnSync("uptime", { encoding: "utf8" }).stdout.trim().replace(/.*load/, "load");
  lines.push(`pack benchmark [${kind}]: ${files} files, ${mb.toFixed(0)} MB, warm cache, ${ROUNDS} round(s), every round shown; ${load}`);
  lines.push("| round | run | seconds | MB/s | zip size (MB) | peak RSS (MB) |");
  lines.push("|---:|---|---:|---:|---:|---:|");
  for (const r of results) lines.push(`| ${r.round ?? "-"} | ${r.label} | ${r.seconds.toFixed(2)} | ${(mb / r.seconds).toFixed(0)} | ${r.size ? (r.size / 1e6).toFixed(1) : "-"} | ${r.rssMB.toFixed(0)} |`);
  lines.push("");
  for (let r = 0; r < ROUNDS; r++) {
    const g = (l) => byLabel.get(l)[r];
    const sb6 = g("scanbridge pack --level 6"), z6 = g("zip -r -6"), s5 = g("7z a -tzip -mx=5 -mmt=2"), sbs = g("scanbridge pack --store");
    lines.push(`[${kind}] round ${r + 1}: deflate ${(z6.seconds / sb6.seconds).toFixed(2)}x zip -6 (target >= 1.8), ${(s5.seconds / sb6.seconds).toFixed(2)}x 7z -mx=5 2 threads (target >= 1.0); ` +
      `size ${(sb6.size / z6.size).toFixed(3)} of zip's, ${(sb6.size / s5.size).toFixed(3)} of 7z's; RSS ${sb6.rssMB.toFixed(0)} MB; ` +
      `store: whole run ${(mb / sbs.seconds).toFixed(0)} MB/s with fsync, ${(mb / (sbs.seconds - sbs.fsyncS)).toFixed(0)} MB/s without; ` +
      `zip phase without fsync ${(mb / ((sbs.timings.zipMs - sbs.timings.fsyncMs) / 1000)).toFixed(0)} MB/s (target >= 600; fsync ${sbs.fsyncS.toFixed(2)} s), ` +
      `zip -0 ${(mb / g("zip -r -0").seconds).toFixed(0)} MB/s, 7z -mx=0 ${(mb / g("7z a -tzip -mx=0").seconds).toFixed(0)} MB/s (whole runs, ${(g("zip -r -0").seconds / sbs.seconds).toFixed(2)}x and ${(g("7z a -tzip -mx=0").seconds / sbs.seconds).toFixed(2)}x)`);
    const phases = (x) => Object.entries(x.timings).map(([k, v]) => `${k.replace(/Ms$/, "")} ${v}`).join(", ");
    lines.push(`[${kind}] round ${r + 1} phases (ms): pack -6: ${phases(sb6)}; pack --store: ${phases(sbs)}`);
  }
  return lines;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
