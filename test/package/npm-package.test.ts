import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cleanEnv, ROOT, tempDirs } from "../helpers/cli.js";

const PATIENT = "José Álvarez Núñez";
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string; scripts: Record<string, string>; files: string[]; license: string };
const mk = tempDirs();

/** `npm pack` of this clone, without the prepack build: global setup already built dist/, and rebuilding it here would rewrite files other test files are running. */
function packTarball(dest: string): { filename: string; files: string[] } {
  const r = spawnSync("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dest], { cwd: ROOT, encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  const [info] = JSON.parse(r.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  return { filename: join(dest, info!.filename), files: info!.files.map((f) => f.path) };
}

describe("the npm package", () => {
  it("holds the built code, the sample, the service unit, README and LICENSE, and nothing for developers", () => {
    const dir = mk();
    const { files } = packTarball(dir);
    for (const f of ["bin/scanbridge.js", "bin/bundle.js", "dist/src/cli.js", "dist/scanbridge.cjs", "dist/scanbridge.cjs.cache", "README.md", "LICENSE", "package.json", "fixtures/sample/DICOMDIR", "packaging/scanbridge-watch@.service"]) {
      expect(files).toContain(f);
    }
    const developerOnly = files.filter((f) => /^(test|bench|scripts|\.ci|src|docs)\//.test(f) || /\.(ts|map)$/.test(f) || f.startsWith("dist/fixtures/") || f.endsWith(".tgz"));
    expect(developerOnly).toEqual([]);
    // A clone has no dist/: packing it must build first.
    expect(pkg.scripts.prepack).toMatch(/npm run build/);
    expect(readFileSync(join(ROOT, "LICENSE"), "utf8")).toMatch(/^MIT License/);
    expect(pkg.license).toBe("MIT");
  });

  // Slow (npm installs the dependencies, from the cache when it can): SCANBRIDGE_FAST=1 skips it.
  it.skipIf(process.env.SCANBRIDGE_FAST === "1")("installs globally from the tarball and sends the bundled sample from there", () => {
    const dir = mk();
    const { filename } = packTarball(dir);
    const prefix = join(dir, "prefix");
    const env = cleanEnv(join(dir, "home"));
    const install = spawnSync("npm", ["install", "-g", "--prefix", prefix, "--prefer-offline", "--no-audit", "--no-fund", filename], { cwd: dir, env, encoding: "utf8" });
    expect(install.status, install.stderr).toBe(0);
    const bin = join(prefix, "bin", "scanbridge");

    const version = spawnSync(bin, ["--version"], { cwd: dir, env, encoding: "utf8" });
    expect(version.status, version.stderr).toBe(0);
    expect(version.stdout.trim()).toBe(pkg.version);

    const sample = join(prefix, "lib", "node_modules", "scanbridge", "fixtures", "sample");
    const send = spawnSync(bin, ["send", sample, "--patient", PATIENT, "--to", "./outbox", "--json"], { cwd: dir, env, encoding: "utf8" });
    expect(send.status, send.stderr).toBe(0);
    const r = JSON.parse(send.stdout) as { package: { sha256: string; files: { byKind: Record<string, number> } } };
    expect(r.package.files.byKind).toEqual({ dicom: 11, dicomdir: 1, document: 1 });
    expect(readdirSync(join(dir, "outbox")).sort()).toEqual([`${PATIENT}.zip`, `${PATIENT}.zip.sha256`]);
    expect(createHash("sha256").update(readFileSync(join(dir, "outbox", `${PATIENT}.zip`))).digest("hex")).toBe(r.package.sha256);
  }, 300_000);
});
