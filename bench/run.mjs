#!/usr/bin/env node
// npm run bench: every benchmark in turn (pack, upload, watch), each against its peers in the same run.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
let failed = 0;
for (const b of ["pack.mjs", "upload.mjs", "watch.mjs"]) {
  console.log(`\n=== ${b} ===`);
  const r = spawnSync(process.execPath, [join(here, b), ...process.argv.slice(2)], { stdio: "inherit" });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
