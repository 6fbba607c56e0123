#!/usr/bin/env node
// Pretest: make sure the real servers and tools the tests use are installed. Installs them with apt when
// missing and we are root; otherwise says exactly what to install and fails.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// The one list of system packages, shared with .ci/run: "package  file  why" per line.
const listFile = join(dirname(fileURLToPath(import.meta.url)), "system-packages.txt");
const needs = readFileSync(listFile, "utf8")
  .split("\n")
  .filter((l) => l.trim() && !l.startsWith("#"))
  .map((l) => {
    const [pkg, bin, ...why] = l.trim().split(/\s+/);
    return { pkg, bin, why: why.join(" ") };
  });
const missing = needs.filter((n) => !existsSync(n.bin));
if (missing.length === 0) process.exit(0);
const pkgs = [...new Set(missing.map((m) => m.pkg))];
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const hasApt = spawnSync("sh", ["-c", "command -v apt-get"]).status === 0;
if (isRoot && hasApt) {
  console.error(`pretest: installing ${pkgs.join(" ")} with apt-get (${missing.map((m) => m.why).join("; ")})`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  try {
    execFileSync("apt-get", ["install", "-y", "--no-install-recommends", ...pkgs], { stdio: "inherit", env });
  } catch {
    execFileSync("apt-get", ["update"], { stdio: "inherit", env });
    execFileSync("apt-get", ["install", "-y", "--no-install-recommends", ...pkgs], { stdio: "inherit", env });
  }
  process.exit(0);
}
console.error("The tests need these Debian/Ubuntu packages, which are missing:");
for (const m of missing) console.error(`  ${m.pkg.padEnd(16)} ${m.why}`);
console.error(`Install them with:  sudo apt-get install -y ${pkgs.join(" ")}`);
process.exit(1);
