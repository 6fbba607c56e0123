#!/usr/bin/env node
// `npm run dist:smoke-windows`: a smoke test of the Windows executable under Wine (Debian's wine64), by hand or
// before a release; not part of the test suite (Wine is a large install and its first start takes minutes).
// Checks, in a Wine prefix set to Windows 10 (Node 20 refuses Wine's default version):
//   1. `scanbridge.exe --version` prints package.json's version;
//   2. `scanbridge.exe inspect <sample> --json` exits 0 and finds the sample's 2 studies and 11 DICOM files;
//   3. `scanbridge.exe --lang es inspect <sample>` speaks Spanish (the catalogs are in the executable);
//   4. `scanbridge.exe pack <sample> --patient "José Álvarez Núñez" --out <dir> --json` exits 0; the zip it wrote
//      has the SHA-256 of its .sha256 marker and of the JSON result;
//   5. the Linux side accepts that zip: `node bin/scanbridge.js verify <zip> --json` exits 0 (marker match).
// Usage: node scripts/smoke-windows.mjs [--exe release/scanbridge-<version>-win-x64.exe] [--prefix DIR]
// Wine: $WINE, else wine64 / wine on PATH, else /usr/lib/wine/wine64. Prefix: $WINEPREFIX, else
// ~/.cache/scanbridge/wine-prefix (created on first use).
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
const PATIENT = "José Álvarez Núñez";

function findWine() {
  if (process.env.WINE) return process.env.WINE;
  for (const name of ["wine64", "wine"]) {
    const r = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  if (existsSync("/usr/lib/wine/wine64")) return "/usr/lib/wine/wine64";
  throw new Error("no Wine found: apt-get install wine64 (or set WINE=/path/to/wine64)");
}

/** Z:\... : the Windows name of a Linux path inside Wine. */
const winPath = (p) => "Z:" + p.replace(/\//g, "\\");

function main() {
  const { values } = parseArgs({ options: { exe: { type: "string" }, prefix: { type: "string" } } });
  const exe = resolve(values.exe ?? join(ROOT, "release", `scanbridge-${pkg.version}-win-x64.exe`));
  if (!existsSync(exe)) throw new Error(`${exe} does not exist: build it with npm run dist (or node scripts/dist.mjs --target win-x64)`);
  const wine = findWine();
  const prefix = resolve(values.prefix ?? process.env.WINEPREFIX ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "scanbridge", "wine-prefix"));
  // No Mono/Gecko installers, no debug chatter.
  const env = { ...process.env, WINEPREFIX: prefix, WINEDEBUG: "-all", WINEDLLOVERRIDES: "mscoree,mshtml=" };
  delete env.DISPLAY;
  const wineVersion = execFileSync(wine, ["--version"], { encoding: "utf8", env }).trim();
  if (!existsSync(join(prefix, "system.reg"))) {
    console.error(`smoke: creating the Wine prefix ${prefix} (once; this takes a while)`);
    mkdirSync(prefix, { recursive: true });
    execFileSync(wine, ["wineboot", "-i"], { env, stdio: "ignore" });
  }
  // Node 20 needs Windows 8.1 or later; Wine reports Windows 7 by default.
  execFileSync(wine, ["reg", "add", "HKCU\\Software\\Wine", "/v", "Version", "/d", "win10", "/f"], { env, stdio: "ignore" });

  const work = mkdtempSync(join(tmpdir(), "scanbridge-smoke-win-"));
  const results = [];
  const check = (name, ok, detail = "") => {
    results.push({ name, ok, detail });
    console.error(`smoke: ${ok ? "ok  " : "FAIL"} ${name}${detail ? ` (${detail})` : ""}`);
  };
  // Output to files, not pipes: under Wine, Node's stdio on a pipe fails ("open EBADF" in createWritableStdioStream).
  let runs = 0;
  const run = (args) => {
    const started = Date.now();
    const outFile = join(work, `run${++runs}.out`);
    const errFile = join(work, `run${runs}.err`);
    const outFd = openSync(outFile, "w");
    const errFd = openSync(errFile, "w");
    let r;
    try {
      r = spawnSync(wine, [exe, ...args], { env, cwd: work, stdio: ["ignore", outFd, errFd] });
    } finally {
      closeSync(outFd);
      closeSync(errFd);
    }
    return { code: r.status, stdout: readFileSync(outFile, "utf8"), stderr: readFileSync(errFile, "utf8"), ms: Date.now() - started };
  };
  try {
    const sample = join(work, "sample");
    cpSync(join(ROOT, "fixtures", "sample"), sample, { recursive: true });
    const out = join(work, "out");
    mkdirSync(out);

    const version = run(["--version"]);
    check("--version", version.code === 0 && version.stdout.trim() === pkg.version, `exit ${version.code}, "${version.stdout.trim()}", ${version.ms} ms`);

    const inspect = run(["inspect", winPath(sample), "--json"]);
    let data = {};
    try {
      data = JSON.parse(inspect.stdout);
    } catch {
      // reported below
    }
    const studies = data.dicom?.summary?.studies?.length ?? data.dicom?.studies?.length;
    check("inspect --json", inspect.code === 0 && data.ok === true && /2 studies/.test(String(data.dicom?.studyLine)), `exit ${inspect.code}, ${data.dicom?.studyLine ?? inspect.stderr.trim().split("\n")[0]}${studies !== undefined ? `, ${studies} studies` : ""}, ${inspect.ms} ms`);

    const spanish = run(["--lang", "es", "inspect", winPath(sample)]);
    check("--lang es inspect", spanish.code === 0 && /estudios/.test(spanish.stdout), `exit ${spanish.code}, ${spanish.stdout.split("\n").find((l) => /estudios/.test(l)) ?? spanish.stderr.trim()}`);

    const pack = run(["pack", winPath(sample), "--patient", PATIENT, "--out", winPath(out), "--json"]);
    let packed = {};
    try {
      packed = JSON.parse(pack.stdout);
    } catch {
      // reported below
    }
    const zips = readdirSync(out).filter((f) => f.endsWith(".zip"));
    check("pack --json", pack.code === 0 && packed.ok === true && zips.length === 1, `exit ${pack.code}, ${zips.join(", ") || pack.stderr.trim().split("\n")[0]}, ${pack.ms} ms`);
    if (zips.length === 1) {
      const zip = join(out, zips[0]);
      const sha = createHash("sha256").update(readFileSync(zip)).digest("hex");
      const marker = existsSync(zip + ".sha256") ? readFileSync(zip + ".sha256", "utf8").trim().split(/\s+/)[0] : "(no marker)";
      check("zip SHA-256 = .sha256 marker = JSON sha256", sha === marker && sha === packed.sha256, sha);
      const verify = spawnSync(process.execPath, [join(ROOT, "bin", "scanbridge.js"), "verify", zip, "--json"], { encoding: "utf8", env: { ...process.env, SCANBRIDGE_LANG: "en" } });
      let v = {};
      try {
        v = JSON.parse(verify.stdout);
      } catch {
        // reported below
      }
      check("Linux `scanbridge verify` accepts the zip", verify.status === 0 && v.ok === true, `exit ${verify.status}${v.error ? `, ${v.error.code}` : ""}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const failed = results.filter((r) => !r.ok).length;
  console.log(`${failed === 0 ? "PASS" : "FAIL"}: ${results.length - failed}/${results.length} checks, ${exe.replace(ROOT + "/", "")} under ${wineVersion} (prefix ${prefix}, Windows 10)`);
  process.exitCode = failed === 0 ? 0 : 1;
}

try {
  main();
} catch (err) {
  console.error(`smoke: ${err.message}`);
  process.exitCode = 1;
}
