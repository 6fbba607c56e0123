#!/usr/bin/env node
// Benchmark: `scanbridge watch --forward --once` (DICOMweb STOW-RS + QIDO-RS confirmation) into a private Orthanc,
// against Orthanc's own import of the same instances through its REST API (one POST /instances per instance, on a
// keep-alive connection, as `curl -X POST --data-binary @file` per file does) into a fresh Orthanc storage, in
// the same run. Reports instances per second for both and the ratio, as a markdown table.
// Needs the Debian packages orthanc + orthanc-dicomweb and a build (`npm run bench:forward` builds first).
//
//   node bench/forward.mjs [--instances 1000] [--bytes 512000] [--batch 50]
// The synthetic instances and their package are cached in .bench-cache/forward-<instances>-<bytes>/.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { request, Agent } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { runnerImport } from "vite";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values: args } = parseArgs({
  options: {
    instances: { type: "string", default: process.env.BENCH_INSTANCES ?? "1000" },
    bytes: { type: "string", default: process.env.BENCH_BYTES ?? "512000" },
    batch: { type: "string", default: process.env.BENCH_BATCH ?? "50" },
  },
});
const N = Number(args.instances);
const BYTES = Number(args.bytes);
const BATCH = Number(args.batch);
if (!Number.isInteger(N) || N < 1 || !Number.isInteger(BYTES) || BYTES < 64 || !Number.isInteger(BATCH) || BATCH < 1) {
  console.error("usage: node bench/forward.mjs [--instances N] [--bytes PIXEL_BYTES] [--batch N]");
  process.exit(2);
}
const bin = join(root, "bin", "scanbridge.js");
if (!existsSync(join(root, "dist", "src", "cli.js")) || !existsSync(join(root, "dist-fixtures", "dicom-builder.js"))) {
  console.error("Build first: npm run build && npm run build:fixtures (npm run bench:forward does both)");
  process.exit(2);
}
const { buildDicom } = await import(join(root, "dist-fixtures", "dicom-builder.js"));
const { default: dicomParser } = await import("dicom-parser");
// The Orthanc test helper is TypeScript; Vite (already a dev dependency through vitest) loads it.
const { module: orthancHelper } = await runnerImport(join(root, "test", "helpers", "orthanc.ts"));

const PATIENT = "Bench Forward";
const UID = "1.2.826.0.1.3680043.9.7433.900";
const cache = join(root, ".bench-cache", `forward-${N}-${BYTES}`);
const dicomDir = join(cache, "in");
const packDir = join(cache, "out");
const zip = join(packDir, `${PATIENT}.zip`);

function run(cmd, argv, opts = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"], ...opts });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on("error", reject);
    p.on("exit", (code) => {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      resolve({ code, out, err, secs });
    });
  });
}

/** 1,000 (or N) instances in 10 series of one study, pixel data filled with random bytes (realistic zip sizes). */
function generate() {
  if (existsSync(join(cache, "instances.done"))) return false;
  rmSync(cache, { recursive: true, force: true });
  const perSeries = Math.ceil(N / 10);
  for (let i = 0; i < N; i++) {
    const se = Math.floor(i / perSeries) + 1;
    const im = (i % perSeries) + 1;
    const buf = buildDicom({
      patientName: "Forward^Bench",
      patientId: "BENCH-1",
      studyInstanceUid: `${UID}.1`,
      seriesInstanceUid: `${UID}.1.${se}`,
      sopInstanceUid: `${UID}.1.${se}.${im}`,
      modality: "CT",
      studyDate: "20260105",
      seriesNumber: se,
      instanceNumber: im,
      pixelDataBytes: BYTES,
    });
    const el = dicomParser.parseDicom(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)).elements.x7fe00010;
    randomBytes(el.length).copy(buf, el.dataOffset);
    const dir = join(dicomDir, "DICOM", `SE${se}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `IM${im}`), buf);
  }
  writeFileSync(join(cache, "instances.done"), new Date().toISOString() + "\n");
  return true;
}

function filesUnder(dir, out = []) {
  for (const n of readdirSync(dir).sort()) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) filesUnder(p, out);
    else out.push(p);
  }
  return out;
}

async function pack(env) {
  if (existsSync(join(cache, "pack.done")) && existsSync(zip)) return false;
  const r = await run(process.execPath, [bin, "pack", dicomDir, "--patient", PATIENT, "--out", packDir, "--allow-patient-mismatch", "--force"], { env });
  if (r.code !== 0) throw new Error(`pack failed (${r.code}): ${r.err}`);
  writeFileSync(join(cache, "pack.done"), new Date().toISOString() + "\n");
  return true;
}

async function countInstances(pacs) {
  return (await pacs.get("/statistics")).CountInstances;
}

/** (a) scanbridge watch --forward --once: verify + extract + reconcile-free forward + QIDO-RS confirmation. */
async function benchScanbridge(env) {
  const pacs = await orthancHelper.startOrthanc();
  const work = mkdtempSync(join(tmpdir(), "sb-bench-forward-"));
  try {
    const drop = join(work, "drop");
    mkdirSync(drop);
    copyFileSync(zip, join(drop, `${PATIENT}.zip`));
    copyFileSync(`${zip}.sha256`, join(drop, `${PATIENT}.zip.sha256`));
    const r = await run(process.execPath, [bin, "--json", "watch", drop, "--ready", join(work, "ready"), "--once", "--settle", "0", "--forward", pacs.dicomweb, "--forward-batch", String(BATCH), "--forward-unreconciled"], { env });
    if (r.code !== 0) throw new Error(`watch --forward failed (${r.code}): ${r.err}\n${r.out.slice(-2000)}`);
    const events = r.out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    const fwd = events.find((e) => e.event === "forwarded");
    if (!fwd || fwd.confirmed !== N) throw new Error(`not every instance confirmed: ${JSON.stringify(fwd)}`);
    const stored = await countInstances(pacs);
    if (stored !== N) throw new Error(`Orthanc holds ${stored} instances, expected ${N}`);
    return { wallSecs: r.secs, forwardSecs: fwd.durationMs / 1000, stored };
  } finally {
    await pacs.dispose();
    rmSync(work, { recursive: true, force: true });
  }
}

/** (b) Orthanc's own import: POST /instances per file, one keep-alive connection, into a fresh storage. */
async function benchOrthancRest(files) {
  const pacs = await orthancHelper.startOrthanc();
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const post = (body) =>
      new Promise((resolve, reject) => {
        const req = request(`${pacs.rest}/instances`, { method: "POST", agent, headers: { "Content-Type": "application/dicom", "Content-Length": body.length } }, (res) => {
          let text = "";
          res.on("data", (d) => (text += d));
          res.on("end", () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`HTTP ${res.statusCode}: ${text}`))));
        });
        req.on("error", reject);
        req.end(body);
      });
    const t0 = process.hrtime.bigint();
    for (const f of files) await post(readFileSync(f));
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const stored = await countInstances(pacs);
    if (stored !== N) throw new Error(`Orthanc holds ${stored} instances, expected ${N}`);
    return { secs, stored };
  } finally {
    agent.destroy();
    await pacs.dispose();
  }
}

const home = mkdtempSync(join(tmpdir(), "sb-bench-forward-home-"));
const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, ".config"), NO_COLOR: "1" };
for (const k of Object.keys(env)) if (k.startsWith("SCANBRIDGE_")) delete env[k];
try {
  const tg = Date.now();
  const generated = generate();
  const packed = await pack(env);
  const files = filesUnder(join(dicomDir, "DICOM"));
  const totalBytes = files.reduce((s, f) => s + statSync(f).size, 0);
  console.error(`${N} instances, ${(totalBytes / 1e6).toFixed(0)} MB (${generated || packed ? `generated/packed in ${((Date.now() - tg) / 1000).toFixed(1)} s` : "cached"}); package ${(statSync(zip).size / 1e6).toFixed(0)} MB`);

  console.error("(a) scanbridge watch --forward --once ...");
  const a = await benchScanbridge(env);
  console.error("(b) Orthanc REST import (POST /instances per instance) ...");
  const b = await benchOrthancRest(files);

  const rate = (secs) => N / secs;
  const mbps = (secs) => totalBytes / 1e6 / secs;
  const ratio = rate(a.forwardSecs) / rate(b.secs);
  const rows = [
    ["scanbridge watch --forward: forward + QIDO-RS confirmation", a.forwardSecs, a.stored],
    ["scanbridge watch --forward --once: whole run (verify, extract, forward, confirm)", a.wallSecs, a.stored],
    ["Orthanc REST import: POST /instances per instance", b.secs, b.stored],
  ];
  const hash = createHash("sha256").update(readFileSync(zip)).digest("hex").slice(0, 12);
  console.log(`\n### bench:forward: ${N} instances, ${(totalBytes / 1e6).toFixed(0)} MB (package ${hash}), STOW-RS batch ${BATCH}, Node ${process.version}\n`);
  console.log("| Path | Seconds | Instances/s | MB/s | Stored in Orthanc |");
  console.log("|---|---:|---:|---:|---:|");
  for (const [name, secs, stored] of rows) console.log(`| ${name} | ${secs.toFixed(1)} | ${rate(secs).toFixed(1)} | ${mbps(secs).toFixed(1)} | ${stored} |`);
  console.log(`\nRatio scanbridge forward / Orthanc REST import (instances per second): **${ratio.toFixed(2)}**`);
  console.log(`Ratio including verify and extract (whole watch run) / Orthanc REST import: ${(rate(a.wallSecs) / rate(b.secs)).toFixed(2)}`);
} finally {
  rmSync(home, { recursive: true, force: true });
}
