// Loading the one-file bundle of the CLI (dist/scanbridge.cjs, made by scripts/bundle.mjs in `npm run build`) with
// V8's code cache (dist/scanbridge.cjs.cache, made by the build too; never written at run time). Start-up then
// skips resolving, reading and compiling ~100 modules one by one (issue 15). Used by bin/scanbridge.js and by
// scripts/bundle.mjs (which makes and checks the cache with exactly this compile).
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Script } from "node:vm";

const DIST = join(dirname(fileURLToPath(import.meta.url)), "..", "dist");
export const BUNDLE = join(DIST, "scanbridge.cjs");
export const CACHE = join(DIST, "scanbridge.cjs.cache");
/** The cache file: the SHA-256 of the bundle file it was made from, then V8's data. */
const DIGEST_BYTES = 32;

/** SHA-256 of the bundle file's bytes (hashing the bytes, not the decoded text, saves ~5 ms per start). */
export function digestOf(bytes) {
  return createHash("sha256").update(bytes).digest();
}

/** The bundle's text compiled as the body of a CommonJS module function (not run). */
export function scriptOf(text, cachedData) {
  return new Script(`(function (exports, require, module, __filename, __dirname, __scanbridgeImport) {${text}\n})`, { filename: BUNDLE, cachedData });
}

/** V8's data of a cache file made for these bundle bytes, or undefined (no file, or made from another bundle). */
export function cachedDataFor(bytes) {
  try {
    const file = readFileSync(CACHE);
    if (file.subarray(0, DIGEST_BYTES).equals(digestOf(bytes))) return file.subarray(DIGEST_BYTES);
  } catch {
    // no cache
  }
  return undefined;
}

/**
 * Compile the bundle's text as a CommonJS module (with V8's code cache when given) and run its body.
 * Returns the module's exports and the compiled script (whose createCachedData() the build saves).
 */
export function compileBundle(text, cachedData) {
  const script = scriptOf(text, cachedData);
  const module = { exports: {} };
  // The bundle's import() of a package left outside it: resolved from here as from dist/src/ (same node_modules).
  script.runInThisContext()(module.exports, createRequire(BUNDLE), module, BUNDLE, DIST, (specifier) => import(specifier));
  return { script, exports: module.exports };
}

/**
 * The CLI from the bundle, or undefined when there is none or dist/src/ was rebuilt after it (`tsc` alone): then
 * bin/scanbridge.js loads dist/src/. A cache made from another text, or that V8 rejects (another Node or V8
 * flags), is not used: the bundle is then compiled from its text, as Node would.
 */
export function loadBundle() {
  let bytes;
  try {
    if (statSync(BUNDLE).mtimeMs < statSync(join(DIST, "src", "cli.js")).mtimeMs) return undefined;
    bytes = readFileSync(BUNDLE);
  } catch {
    return undefined;
  }
  // ASCII (scripts/bundle.mjs escapes every other character), so latin1: one byte per character, no decoding.
  return compileBundle(bytes.toString("latin1"), cachedDataFor(bytes)).exports;
}

/** The cache file's bytes for the bundle's bytes and V8's data. */
export function cacheFileOf(bytes, data) {
  return Buffer.concat([digestOf(bytes), data]);
}
