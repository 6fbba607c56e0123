#!/usr/bin/env node
// Second step of `npm run build` (after tsc): the built CLI (dist/src/) as one CommonJS file, dist/scanbridge.cjs,
// and V8's code cache for it, dist/scanbridge.cjs.cache. bin/scanbridge.js loads them (bin/bundle.js): start-up
// then does not resolve, read and compile ~100 modules one by one, and most of what it runs is already compiled
// (issue 15: ~0.1-0.2 s of CPU per command).
//   - Packages a command imports only with import() (inquirer, ora, nodemailer, chokidar, the WASM decoders) stay
//     in node_modules, loaded when used; native add-ons too (ssh2's sshcrypto.node).
//   - The cache is made here, never at run time: a separate process loads the bundle exactly as bin/ does, shows
//     --help and loads every command's implementation, then saves what V8 compiled. A fresh process then checks that
//     V8 accepts it; if not (it should not happen), the cache is removed with a warning and the CLI runs without it.
//   - It holds the bundle's SHA-256; bin/bundle.js ignores a cache made from another text, and the bundle itself
//     when dist/src/ was rebuilt after it (tsc alone).
// Usage: node scripts/bundle.mjs            (bundle, cache, check)
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import * as esbuild from "esbuild";
import { BUNDLE, CACHE, cacheFileOf, cachedDataFor, compileBundle, scriptOf } from "../bin/bundle.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
/** The patient of fixtures/sample. */
const SAMPLE_PATIENT = "Jos\u00e9 \u00c1lvarez N\u00fa\u00f1ez";
/**
 * Packages left in node_modules, loaded when a command uses them: those only import()ed (prompts, spinner, e-mail,
 * watching, the WASM decoders). Everything else is in the bundle. Only an import() may reach one: a static import
 * of an ES module left outside would be require()d, and esbuild's interop then takes its whole namespace for its
 * default export (any-ascii was left out that way and its default was not a function), so the build refuses it.
 */
const LEFT_OUT = ["inquirer", "ora", "nodemailer", "chokidar", "dcmjs-imaging", "7z-wasm"];

const plugin = {
  name: "scanbridge-bundle",
  setup(build) {
    // Native add-ons stay in their package, required through it ("ssh2/lib/.../sshcrypto.node"), so that they are
    // found wherever npm put the package (ssh2 loads them in try/catch and falls back to JavaScript).
    build.onResolve({ filter: /\.node$/ }, (args) => {
      const inPackage = /[\\/]node_modules[\\/](.+)$/.exec(join(args.resolveDir, args.path));
      if (!inPackage) throw new Error(`bundle: a native add-on outside node_modules: ${args.path}`);
      return { path: inPackage[1].split("\\").join("/"), external: true };
    });
    build.onResolve({ filter: /^[^./]/ }, (args) => {
      if (!LEFT_OUT.includes(args.path.split("/")[0])) return undefined;
      if (args.kind !== "dynamic-import") throw new Error(`bundle: ${args.path} is left out of the bundle but ${args.importer} imports it statically`);
      return { path: args.path, external: true };
    });
    for (const { file, edits } of EDITS) build.onLoad({ filter: file }, (args) => ({ contents: edited(args.path, readFileSync(args.path, "utf8"), edits), loader: "js" }));
  },
};

/**
 * Exact text edits to files of packages as they go into the bundle (node_modules is not changed); the build fails if
 * a file no longer has the text, so a new version of the package gets looked at.
 */
const EDITS = [
  {
    // ssh2's index loads its HTTP(S) agents (Node's http, https and tls: ~25 internal modules) and its server at
    // once; scanbridge uses neither. In the bundle they load when first used.
    file: /[\\/]node_modules[\\/]ssh2[\\/]lib[\\/]index\.js$/,
    edits: [
      ["const {\n  SSHTTPAgent: HTTPAgent,\n  SSHTTPSAgent: HTTPSAgent,\n} = require('./http-agents.js');\n", ""],
      ["  HTTPAgent,\n  HTTPSAgent,\n", "  get HTTPAgent() { return require('./http-agents.js').SSHTTPAgent; },\n  get HTTPSAgent() { return require('./http-agents.js').SSHTTPSAgent; },\n"],
      ["  Server: require('./server.js'),\n", "  get Server() { return require('./server.js'); },\n"],
    ],
  },
  {
    // Pageant's helper (Windows) is found relative to ssh2's own folder, which in the bundle is dist/: through the
    // package instead.
    file: /[\\/]node_modules[\\/]ssh2[\\/]lib[\\/]agent\.js$/,
    edits: [["const EXEPATH = resolve(__dirname, '..', 'util/pagent.exe');", "const EXEPATH = (() => { try { return require.resolve('ssh2/util/pagent.exe'); } catch { return resolve(__dirname, '..', 'util/pagent.exe'); } })();"]],
  },
];

function edited(path, text, edits) {
  for (const [from, to] of edits) {
    if (text.split(from).length !== 2) throw new Error(`bundle: ${path} changed (${JSON.stringify(from.slice(0, 40))}): update EDITS in scripts/bundle.mjs`);
    text = text.replace(from, to);
  }
  return text;
}

async function bundle() {
  await esbuild.build({
    stdin: { contents: 'module.exports = require("./dist/src/start.js");', resolveDir: ROOT, sourcefile: "scanbridge-bundle-entry.cjs", loader: "js" },
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    outfile: BUNDLE,
    // Smaller text to read at each start; identifiers (and so class and function names) are kept.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: "none",
    define: { "import.meta.url": "__scanbridgeUrl" },
    banner: { js: 'var __scanbridgeUrl = require("node:url").pathToFileURL(__filename).href;' },
    plugins: [plugin],
    logLevel: "error",
  });
  // import() inside a script compiled with a code cache has no loader in Node 20 ("A dynamic import callback was not
  // specified"): each goes through the loader's function instead. Nothing else may be left.
  let text = readFileSync(BUNDLE, "utf8");
  text = text.replace(/\bimport\(("[^"\\]+")\)/g, (_, specifier) => `__scanbridgeImport(${specifier})`);
  if (/\bimport\(/.test(text)) throw new Error("bundle: an import() with a computed specifier is left; bin/bundle.js cannot load it");
  // ASCII only, so that V8 holds the text in one byte per character and bin/ decodes it as latin1 (a text with one
  // other character is decoded as UTF-8 into two bytes per character: ~5 ms more per start). esbuild leaves some in
  // regular expressions; each UTF-16 unit becomes \uXXXX, which means the same in strings, templates, regular
  // expressions and identifiers (not in String.raw, which the build therefore refuses).
  // eslint-disable-next-line no-control-regex -- the class is "not ASCII", whose range starts at \x00
  text = text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  if (/String\.raw\b/.test(text)) throw new Error("bundle: String.raw in the bundle (escaping non-ASCII characters would change it)");
  writeFileSync(BUNDLE, text, "latin1");
  return text;
}

/** In a separate process (`--train`): load the bundle as bin/ does, run what starts run most, save the cache. */
async function train() {
  const bytes = readFileSync(BUNDLE);
  const { script, exports: cli } = compileBundle(bytes.toString("latin1"));
  const work = mkdtempSync(join(tmpdir(), "scanbridge-bundle-"));
  const zip = join(work, "out", `${SAMPLE_PATIENT}.zip`);
  const drop = join(work, "drop");
  // --help, and what a patient and a hospital run most, on the bundled sample, in a private temporary folder (no
  // network, no config): the functions these runs compile are in the cache.
  const runs = [
    ["--help"],
    ["upload", "--help"],
    ["--version"],
    ["send", join(ROOT, "fixtures", "sample"), "--patient", SAMPLE_PATIENT, "--to", join(work, "out"), "--json"],
    ["verify", zip, "--json"],
    ["upload", zip, "--to", drop, "--json"],
    ["watch", drop, "--ready", join(work, "ready"), "--state", join(work, "state"), "--once", "--settle", "0", "--json"],
  ];
  let output = "";
  const sink = { write: (s) => ((output += String(s)), true) };
  const env = { SCANBRIDGE_LANG: "en", NO_COLOR: "1", HOME: work, XDG_CONFIG_HOME: join(work, ".config") };
  try {
    for (const argv of runs) {
      output = "";
      const code = await cli.main(["node", "scanbridge", ...argv], { stdout: sink, stderr: sink, env, cwd: work, stdinIsTTY: false, handleSignals: false });
      // Only the cache is less complete then: said, not fatal.
      if (code !== 0) console.error(`bundle: the training run \`scanbridge ${argv[0]}\` exited ${code}:\n${output.slice(0, 2000)}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const loadAll = async (specs) => {
    for (const spec of specs) {
      await spec.load();
      await loadAll(spec.subcommands ?? []);
    }
  };
  await loadAll(cli.commandSpecs);
  // The bundle's first module sets heap flags (src/process-setup.ts), deflating exposes V8's collector
  // (src/util/heap.ts), and V8 accepts a cache only under the flags it was made with: back to the values a new
  // process starts with.
  setFlagsFromString(cli.V8_START_FLAGS);
  writeFileSync(CACHE, cacheFileOf(bytes, script.createCachedData()));
}

/** In a separate process (`--check`), as a fresh start sees it: does V8 accept the cache? */
function check() {
  const bytes = readFileSync(BUNDLE);
  const data = cachedDataFor(bytes);
  process.stdout.write(data === undefined ? "no cache for this bundle" : scriptOf(bytes.toString("latin1"), data).cachedDataRejected ? "rejected" : "accepted");
}

const mode = process.argv[2];
if (mode === "--train") {
  await train();
} else if (mode === "--check") {
  check();
} else {
  rmSync(CACHE, { force: true });
  await bundle();
  const self = fileURLToPath(import.meta.url);
  execFileSync(process.execPath, [self, "--train"], { stdio: ["ignore", "inherit", "inherit"] });
  const verdict = execFileSync(process.execPath, [self, "--check"], { encoding: "utf8" });
  if (verdict !== "accepted") {
    rmSync(CACHE, { force: true });
    console.error(`bundle: V8 did not accept the code cache (${verdict}); the CLI runs without it (slower start)`);
  }
}
