import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

interface SeaModule {
  isSea(): boolean;
  getRawAsset(key: string): ArrayBuffer;
}

/** True when running as a single-file executable (npm run dist), where node_modules does not exist. */
export function isSingleExecutable(): boolean {
  try {
    return (require("node:sea") as SeaModule).isSea();
  } catch {
    return false;
  }
}

/**
 * Bytes of a non-JavaScript file a dependency needs (a .wasm module, for loaders that accept `wasmBinary`): read
 * from node_modules normally, or, inside a single-file executable, the SEA asset `key` (listed in scripts/dist.mjs).
 */
export function readAsset(key: string, fromNodeModules: () => string): Uint8Array {
  if (isSingleExecutable()) return new Uint8Array((require("node:sea") as SeaModule).getRawAsset(key));
  return readFileSync(fromNodeModules());
}
