import { createRequire } from "node:module";
import { dirname } from "node:path";
import * as zlib from "node:zlib";

// archiver computes every entry's CRC-32 with the pure-JS `crc-32` package, which caps store mode at roughly
// 180 MB/s. Node >= 20.15 has a native zlib.crc32 that is an order of magnitude faster; point the shared
// `crc-32` module object (used through property access by compress-commons and crc32-stream) at it.
// Same algorithm, same results: crc-32 returns a signed int32 and takes the previous signed value as seed
// (crc32-stream passes a zeroed Buffer as the first seed, which both treat as 0).
const native = (zlib as unknown as { crc32?: (data: Buffer | string, value?: number) => number }).crc32;
if (typeof native === "function") {
  const require = createRequire(import.meta.url);
  const fast = (b: Buffer, seed?: unknown) => native(b, typeof seed === "number" ? seed >>> 0 : 0) | 0;
  // Every copy of crc-32 that archiver's chain (zip-stream → compress-commons, crc32-stream) can load.
  const from = [import.meta.url];
  for (const pkg of ["archiver", "zip-stream", "compress-commons", "crc32-stream"]) {
    try {
      from.push(require.resolve(pkg, { paths: from.map((f) => dirname(f.replace(/^file:\/\//, ""))) }));
    } catch {
      // not resolvable from here (nested or exports-restricted): the hoisted copy is still patched
    }
  }
  for (const f of from) {
    try {
      const crcPath = createRequire(f).resolve("crc-32");
      const crc = require(crcPath) as { buf: (b: Buffer, seed?: unknown) => number; __scanbridgeNative?: boolean };
      if (!crc.__scanbridgeNative) {
        crc.buf = fast;
        crc.__scanbridgeNative = true;
      }
    } catch {
      // Layout changed: keep archiver's own CRC (correct, only slower).
    }
  }
}
