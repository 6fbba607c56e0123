// The one-file bundle that bin/scanbridge.js loads (dist/scanbridge.cjs, with V8's code cache), made by
// `npm run build` (scripts/bundle.mjs) and by the tests' global setup. Run from copies of the build, so that
// nothing here changes the dist/ other test files are running.
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cleanEnv, ROOT, tempDirs } from "../helpers/cli.js";

const mk = tempDirs();
const version = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;

/** A copy of the built CLI: bin/, package.json, node_modules (linked), and the parts of dist/ asked for. */
function copyOfBuild(parts: string[]): string {
  const dir = mk();
  cpSync(join(ROOT, "bin"), join(dir, "bin"), { recursive: true });
  cpSync(join(ROOT, "package.json"), join(dir, "package.json"));
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  mkdirSync(join(dir, "dist", "src"), { recursive: true });
  for (const p of parts) cpSync(join(ROOT, "dist", p), join(dir, "dist", p), { recursive: true });
  return dir;
}

function run(dir: string, args: string[]) {
  return spawnSync(process.execPath, [join(dir, "bin", "scanbridge.js"), ...args], { cwd: dir, env: cleanEnv(dir), encoding: "utf8" });
}

/** Give `file` a modification time `seconds` from now. */
function age(file: string, seconds: number): void {
  const t = Date.now() / 1000 + seconds;
  utimesSync(file, t, t);
}

describe("the bundle bin/scanbridge.js loads", () => {
  it("has a code cache that V8 accepts in a fresh process", () => {
    const r = spawnSync(process.execPath, [join(ROOT, "scripts", "bundle.mjs"), "--check"], { encoding: "utf8" });
    expect(r.stdout).toBe("accepted");
  });

  it("runs the CLI on its own: without the modules of dist/src, with the cache, without it and with a cache of another text", () => {
    const dir = copyOfBuild(["scanbridge.cjs", "scanbridge.cjs.cache", "src/cli.js"]);
    age(join(dir, "dist", "src", "cli.js"), -60);
    const check = (what: string) => {
      const v = run(dir, ["--version"]);
      expect(v.stderr, what).toBe("");
      expect(v.stdout.trim(), what).toBe(version);
      const usage = run(dir, ["pack", "--no-such-flag"]);
      expect(usage.status, what).toBe(2);
      expect(usage.stderr, what).toMatch(/unknown option '--no-such-flag'/);
    };
    check("with the cache");
    const cache = join(dir, "dist", "scanbridge.cjs.cache");
    const good = readFileSync(cache);
    // V8's data cut short (V8 rejects it) and a cache made from another text (never given to V8).
    writeFileSync(cache, good.subarray(0, good.length >> 1));
    check("a cut cache");
    const other = Buffer.from(good);
    other[0]! ^= 0xff;
    writeFileSync(cache, other);
    check("a cache of another text");
    writeFileSync(cache, "");
    check("an empty cache");
  });

  it("is not used when dist/src was rebuilt after it (tsc alone), nor when there is none", () => {
    const dir = copyOfBuild(["scanbridge.cjs", "scanbridge.cjs.cache", "src"]);
    const bundle = join(dir, "dist", "scanbridge.cjs");
    writeFileSync(bundle, 'throw new Error("the bundle ran");\n');
    age(bundle, -60);
    const fromTree = run(dir, ["--version"]);
    expect(fromTree.stderr).toBe("");
    expect(fromTree.stdout.trim()).toBe(version);
    // The same bundle, newer than dist/src: it is what runs.
    age(bundle, 60);
    expect(run(dir, ["--version"]).stderr).toMatch(/the bundle ran/);
    const none = copyOfBuild(["src"]);
    expect(run(none, ["--version"]).stdout.trim()).toBe(version);
  });
});
