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
/** The cache file: the SHA-256 of the bundle's text it was made from, then V8's data. */
const DIGEST_BYTES = 32;

/** SHA-256 of the bundle's text. */
export function digestOf(text) {
  return createHash("sha256").update(text).digest();
}

/** The bundle's text compiled as the body of a CommonJS module function (not run). */
export function scriptOf(text, cachedData) {
  return new Script(`(function (exports, require, module, __filename, __dirname, __scanbridgeImport) {${text}\n})`, { filename: BUNDLE, cachedData });
}

/** V8's data of a cache file made for this text, or undefined (no file, or made from another text). */
export function cachedDataFor(text) {
  try {
    const file = readFileSync(CACHE);
    if (file.subarray(0, DIGEST_BYTES).equals(digestOf(text))) return file.subarray(DIGEST_BYTES);
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
  let text;
  try {
    if (statSync(BUNDLE).mtimeMs < statSync(join(DIST, "src", "cli.js")).mtimeMs) return undefined;
    text = readFileSync(BUNDLE, "utf8");
  } catch {
    return undefined;
  }
  return compileBundle(text, cachedDataFor(text)).exports;
}

/** The cache file's bytes for a bundle text and V8's data. */
export function cacheFileOf(text, data) {
  return Buffer.concat([digestOf(text), data]);
}
