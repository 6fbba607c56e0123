import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");

function newest(dir: string): number {
  let max = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) max = Math.max(max, newest(p));
    else if (e.name.endsWith(".ts")) max = Math.max(max, statSync(p).mtimeMs);
  }
  return max;
}

/**
 * Build once before any test file runs, so end-to-end tests spawn the CLI exactly as users do and no test ever
 * rebuilds dist/ under another that is running it. `npm test` has already built (pretest); a bare `npx vitest`
 * builds here when sources are newer than the build. The build emits nothing when it has type errors
 * (noEmitOnError in tsconfig.build.json), so a build that fails stops the run here instead of letting the tests
 * run an older dist/.
 */
export default function setup(): void {
  const cli = join(ROOT, "dist", "src", "cli.js");
  const stale = !existsSync(cli) || statSync(cli).mtimeMs < newest(join(ROOT, "src"));
  if (!stale) return;
  // The same two steps as `npm run build`: tsc, then the one-file bundle and its code cache that bin/ loads.
  for (const step of [[join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", join(ROOT, "tsconfig.build.json")], [join(ROOT, "scripts", "bundle.mjs")]]) {
    const r = spawnSync(process.execPath, step, { cwd: ROOT, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`the build failed (npm run build), so no test runs:\n${r.stdout}${r.stderr}`);
  }
}
