import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

/** scanbridge's version, from package.json (works from src/ under vitest and from dist/src/). */
export const VERSION: string = (() => {
  for (const p of ["../package.json", "../../package.json"]) {
    try {
      const pkg = require(p) as { name?: string; version?: string };
      if (pkg.name === "scanbridge" && pkg.version) return pkg.version;
    } catch {
      // try the next location
    }
  }
  return "0.0.0";
})();
