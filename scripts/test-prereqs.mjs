#!/usr/bin/env node
// Pretest: make sure the real servers and tools the tests use are installed. Installs them with apt when
// missing and we are root; otherwise says exactly what to install and fails.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const needs = [
  { bin: "/usr/sbin/sshd", pkg: "openssh-server", why: "SFTP upload tests run a real OpenSSH sshd on 127.0.0.1" },
  { bin: "/usr/bin/unzip", pkg: "unzip", why: "packages are checked with unzip -t and zipinfo" },
  { bin: "/usr/bin/zip", pkg: "zip", why: "benchmarks and hostile-zip fixtures" },
  { bin: "/usr/bin/7z", pkg: "p7zip-full", why: "Zip64 interoperability checks with 7z t" },
  { bin: "/usr/bin/dcmdump", pkg: "dcmtk", why: "DICOM headers are cross-checked with dcmdump" },
  { bin: "/usr/bin/openssl", pkg: "openssl", why: "throw-away TLS certificates for the SMTP and webhook tests" },
  { bin: "/usr/bin/ssh-keygen", pkg: "openssh-client", why: "throw-away host and user keys" },
  { bin: "/usr/bin/sftp", pkg: "openssh-client", why: "the hostile-uploader test plants its files through a real chrooted SFTP account" },
  { bin: "/usr/bin/tmux", pkg: "tmux", why: "prompts are tested at a real terminal" },
  { bin: "/usr/sbin/Orthanc", pkg: "orthanc", why: "watch --forward is tested against a real Orthanc PACS on 127.0.0.1" },
  { bin: "/usr/bin/systemd-analyze", pkg: "systemd", why: "the packaged watch service unit is checked with systemd-analyze verify" },
  { bin: "/usr/share/orthanc/plugins/libOrthancDicomWeb.so", pkg: "orthanc-dicomweb", why: "Orthanc's DICOMweb plugin (STOW-RS, QIDO-RS)" },
  { bin: "/usr/bin/xorriso", pkg: "xorriso", why: "media --iso writes ISO 9660 images with xorriso; the tests list them back" },
  { bin: "/usr/bin/chromium", pkg: "chromium", why: "the specialist's page (INDEX.HTM) is checked in headless Chromium" },
];
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
