import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

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

/**
 * Run `use` with a file path holding an asset, for loaders that only read a path (dcmjs-imaging's WASM decoders):
 * the node_modules file normally; inside a single-file executable, a copy of the embedded asset in a private
 * temporary folder (0700, file 0600) that is removed once `use` settles.
 */
export async function withAssetFile<T>(key: string, fromNodeModules: () => string, use: (path: string) => Promise<T>): Promise<T> {
  if (!isSingleExecutable()) return use(fromNodeModules());
  const dir = await mkdtemp(join(tmpdir(), "scanbridge-asset-"));
  try {
    const path = join(dir, key);
    await writeFile(path, readAsset(key, fromNodeModules), { mode: 0o600 });
    return await use(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
