import { execFileSync, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { slowIt } from "../helpers/slow.js";
import { BIN, cleanEnv, runCli, spawnCli, waitCli, tempDirs } from "../helpers/cli.js";
import { writeHostilePackage } from "../../fixtures/package-builder.js";
import { readZip, sevenZipTest, unzipTest, zipEntrySizes, zipinfoNames } from "../helpers/zip.js";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const mk = tempDirs();
let home: string;
let env: NodeJS.ProcessEnv;

beforeAll(() => {
  home = mk();
  env = cleanEnv(home);
});

/** Files in a folder other than the ones named. */
const strays = (dir: string, expected: string[]) => readdirSync(dir).filter((f) => !expected.includes(f));

const pdf = Buffer.from("%PDF-1.4\n% synthetic test document\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n");

describe("scanbridge pack (documents, junk, programs)", () => {
  it("packs a folder into one patient-named root folder with a manifest and a sidecar that sha256sum accepts", async () => {
    const input = mk({
      "referral.pdf": pdf,
      "reports/Informe médico.pdf": pdf,
      "photos/xray-photo.jpg": Buffer.alloc(3000, 7),
      ".DS_Store": "junk",
      "Thumbs.db": "junk",
      "__MACOSX/._referral.pdf": "junk",
    });
    const out = mk();
    const r = await runCli(["pack", input, "--patient", "José Álvarez Núñez", "--out", out, "--json"], { env });
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.ok).toBe(true);
    expect(result.patient).toBe("José Álvarez Núñez");
    expect(result.files.total).toBe(3);
    expect(result.files.byKind).toEqual({ document: 2, image: 1 });
    expect(result.emailable).toBe(true);
    const zipPath = join(out, "José Álvarez Núñez.zip");
    expect(result.package).toBe(zipPath);
    expect(readdirSync(out).sort()).toEqual(["José Álvarez Núñez.zip", "José Álvarez Núñez.zip.sha256"]);
    expect(result.sha256).toBe(sha(readFileSync(zipPath)));

    // The system's tools accept it.
    expect(unzipTest(zipPath).ok).toBe(true);
    const names = zipinfoNames(zipPath);
    expect(names).toEqual([
      "José Álvarez Núñez/photos/xray-photo.jpg",
      "José Álvarez Núñez/referral.pdf",
      "José Álvarez Núñez/reports/Informe médico.pdf",
      "José Álvarez Núñez/manifest.json",
    ]);
    expect(execFileSync("sha256sum", ["-c", "José Álvarez Núñez.zip.sha256"], { cwd: out, encoding: "utf8" })).toContain(": OK");

    // An independent reader: one root, UTF-8 flag, manifest checksums match the bytes.
    const entries = await readZip(zipPath);
    expect(new Set(entries.map((e) => e.name.split("/")[0]))).toEqual(new Set(["José Álvarez Núñez"]));
    expect(entries.every((e) => e.utf8Flag)).toBe(true);
    const manifest = JSON.parse(entries.find((e) => e.name.endsWith("/manifest.json"))!.data.toString("utf8"));
    expect(manifest.format).toBe("scanbridge-package");
    expect(manifest.patient.name).toBe("José Álvarez Núñez");
    expect(manifest.root).toBe("José Álvarez Núñez");
    expect(manifest.files).toHaveLength(3);
    for (const f of manifest.files) {
      const e = entries.find((x) => x.name === `José Álvarez Núñez/${f.path}`)!;
      expect(e, f.path).toBeDefined();
      expect(f.size).toBe(e.data.length);
      expect(f.sha256).toBe(sha(e.data));
    }
    expect(manifest.files.find((f: { path: string }) => f.path === "referral.pdf").kind).toBe("document");
    expect(manifest.excluded.map((e: { reason: string }) => e.reason)).toEqual(["os-junk", "os-junk", "os-junk"]);
    // Already-compressed PDFs and JPEGs are stored, not deflated.
    expect(entries.find((e) => e.name.endsWith("referral.pdf"))!.method).toBe(0);
  });

  it("never modifies, moves or deletes the source files", async () => {
    const input = mk({ "a.pdf": pdf, "b/c.txt": "notes" });
    const before = readdirSync(input, { recursive: true }).map(String).sort();
    const mtimes = before.map((f) => statSync(join(input, f)).mtimeMs);
    const out = mk();
    const r = await runCli(["pack", input, "--patient", "Ελένη Παπαδοπούλου", "--out", out], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(input, { recursive: true }).map(String).sort()).toEqual(before);
    expect(before.map((f) => statSync(join(input, f)).mtimeMs)).toEqual(mtimes);
    expect(readFileSync(join(input, "a.pdf"))).toEqual(pdf);
  });

  it("takes files and several folders; each folder keeps its layout under its own name", async () => {
    const cd = mk({ "DICOMDIR.txt": "x", "sub/one.txt": "1" });
    const usb = mk({ "sub/one.txt": "2" });
    const loose = mk({ "letter.pdf": pdf });
    const out = mk();
    const r = await runCli(["pack", cd, usb, join(loose, "letter.pdf"), "--patient", "王小明", "--out", out, "--json"], { env });
    expect(r.code, r.stderr).toBe(0);
    const names = zipinfoNames(join(out, "王小明.zip"));
    const base = (p: string) => p.split("/").pop();
    expect(names).toContain("王小明/letter.pdf");
    const folders = names.filter((n) => n.endsWith("sub/one.txt"));
    expect(folders).toHaveLength(2);
    expect(new Set(folders.map((f) => f.split("/")[1])).size).toBe(2);
    expect(folders.map(base)).toEqual(["one.txt", "one.txt"]);
  });

  it("leaves out programs with a warning that lists them, and viewer software as a whole", async () => {
    const input = mk({
      "autorun.inf": "[autorun]\nopen=Viewer/RadiAnt.exe\n",
      "setup.exe": Buffer.from("MZ\x90\x00binary", "latin1"),
      "Viewer/RadiAnt.exe": Buffer.from("MZ\x90\x00binary", "latin1"),
      "Viewer/lib/codec.dll": Buffer.from("MZ\x90\x00", "latin1"),
      "Viewer/help/manual.html": "<html>help</html>",
      "Viewer/lang/es.txt": "idioma",
      "REPORT/report.pdf": pdf,
    });
    const loose = mk({ "tool.exe": Buffer.from("MZ\x90\x00", "latin1") });
    const out = mk();
    const r = await runCli(["pack", input, join(loose, "tool.exe"), "--patient", "محمد علي", "--out", out, "--json"], { env });
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.files.total).toBe(1);
    const viewer = result.excluded.find((e: { reason: string }) => e.reason === "viewer-software");
    // autorun.inf, setup.exe and the whole Viewer folder (program, DLL, help, language file).
    expect(viewer.count).toBe(6);
    expect(viewer.viewer).toBe("RadiAnt");
    expect(result.excluded.find((e: { reason: string }) => e.reason === "executable").count).toBe(1);
    expect(result.warnings.map((w: { code: string }) => w.code).sort()).toEqual(["EXECUTABLES_LEFT_OUT", "VIEWER_LEFT_OUT"]);
    expect(zipinfoNames(join(out, "محمد علي.zip"))).toEqual(["محمد علي/REPORT/report.pdf", "محمد علي/manifest.json"]);

    const human = await runCli(["pack", input, join(loose, "tool.exe"), "--patient", "محمد علي", "--out", out, "--force"], { env });
    expect(human.code).toBe(0);
    expect(human.stderr).toMatch(/left out 6 files of viewer software \(RadiAnt, [\d.]+ [kMG]?B\)/);
    expect(human.stderr).toMatch(/left out 1 program file/);
    expect(human.stdout).toMatch(/small enough to e-mail/);
  });

  slowIt("writes Zip64 for a package over 4 GB that unzip, 7z and yauzl accept", async () => {
    const input = mk({ "small.pdf": pdf });
    // A sparse 4.3 GB file: costs no disk to create, reads as zeros; stored so the zip itself exceeds 4 GB.
    const big = join(input, "CT", "MULTIFRAME");
    mkdirSync(join(input, "CT"));
    writeFileSync(big, "");
    truncateSync(big, 4_300_000_000);
    const out = mk();
    const r = await runCli(["pack", input, "--patient", "Large Study", "--out", out, "--store", "--json"], { env, timeoutMs: 600_000 });
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.size).toBeGreaterThan(4_300_000_000);
    const zip = join(out, "Large Study.zip");
    const unzip = unzipTest(zip);
    expect(unzip.ok, unzip.output.slice(-500)).toBe(true);
    const seven = sevenZipTest(zip);
    expect(seven.ok, seven.output.slice(-500)).toBe(true);
    expect(seven.output).toMatch(/Files: 3/);
    const sizes = await zipEntrySizes(zip);
    expect(sizes.get("Large Study/CT/MULTIFRAME")).toBe(4_300_000_000);
    expect(sizes.get("Large Study/small.pdf")).toBe(pdf.length);
    rmSync(zip);
  }, 900_000);

  slowIt("writes Zip64 and stays valid for unzip, 7z and yauzl with more than 65,535 entries", async () => {
    const input = mk();
    for (let d = 0; d < 66; d++) {
      const sub = join(input, `S${d}`);
      mkdirSync(sub);
      for (let i = 0; i < 1000; i++) writeFileSync(join(sub, `f${i}.txt`), `${d}-${i}`);
    }
    const out = mk();
    const r = await runCli(["pack", input, "--patient", "Many Files", "--out", out, "--json", "--level", "1"], { env, timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).files.total).toBe(66_000);
    const zip = join(out, "Many Files.zip");
    expect(unzipTest(zip).ok).toBe(true);
    const seven = sevenZipTest(zip);
    expect(seven.ok, seven.output.slice(-500)).toBe(true);
    expect(seven.output).toMatch(/Files: 66001/);
    const entries = await readZip(zip);
    expect(entries).toHaveLength(66_001);
  }, 300_000);
});

describe("scanbridge pack: bad input gets a clear error, the documented exit code and no stray files", () => {
  it("missing input: exit 3, path only shown privately", async () => {
    const out = mk();
    const r = await runCli(["pack", join(out, "nope"), "--patient", "Ana Lima", "--out", out], { env });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/Input 1 of 1 does not exist/);
    expect(r.stderr).toMatch(/INPUT_NOT_FOUND/);
    expect(readdirSync(out)).toEqual([]);
  });

  it("empty folder and junk-only folder: exit 3", async () => {
    const out = mk();
    const empty = await runCli(["pack", mk(), "--patient", "Ana Lima", "--out", out], { env });
    expect(empty.code).toBe(3);
    expect(empty.stderr).toMatch(/no files/);
    const junk = await runCli(["pack", mk({ ".DS_Store": "x", "Thumbs.db": "y", "x.exe": "MZ" }), "--patient", "Ana Lima", "--out", out, "--json"], { env });
    expect(junk.code).toBe(3);
    expect(JSON.parse(junk.stdout).error.code).toBe("NOTHING_TO_PACK");
    expect(readdirSync(out)).toEqual([]);
  });

  it("a nested archive is refused with an explanation", async () => {
    const out = mk();
    const r = await runCli(["pack", mk({ "a.pdf": pdf, "more.zip": Buffer.from([0x50, 0x4b, 3, 4]) }), "--patient", "Ana Lima", "--out", out], { env });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/archive/);
    expect(r.stderr).toMatch(/whole folder zipped once/);
    expect(readdirSync(out)).toEqual([]);
  });

  it("--expand-archives unpacks a nested .zip safely into a folder named after it; a hostile one is refused", async () => {
    const inner = mk({ "IM1.pdf": pdf, "sub/notes.txt": "notes" });
    const input = mk({ "a.pdf": pdf });
    execFileSync("zip", ["-q", "-r", join(input, "more scans.zip"), "."], { cwd: inner });
    const zipBefore = readFileSync(join(input, "more scans.zip"));
    const out = mk();
    const r = await runCli(["pack", input, "--patient", "Ana Lima", "--out", out, "--expand-archives", "--json"], { env });
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.excluded).toContainEqual({ reason: "archive-expanded", count: 1, bytes: zipBefore.length });
    expect(zipinfoNames(join(out, "Ana Lima.zip"))).toEqual(["Ana Lima/a.pdf", "Ana Lima/more scans/IM1.pdf", "Ana Lima/more scans/sub/notes.txt", "Ana Lima/manifest.json"]);
    expect(readFileSync(join(input, "more scans.zip"))).toEqual(zipBefore);
    expect(readdirSync(out).sort()).toEqual(["Ana Lima.zip", "Ana Lima.zip.sha256"]);

    const evil = mk({ "a.pdf": pdf });
    await writeHostilePackage(evil, "zip-slip", "Evil");
    const out2 = mk();
    const bad = await runCli(["pack", evil, "--patient", "Ana Lima", "--out", out2, "--expand-archives"], { env });
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/NESTED_ARCHIVE_UNSAFE/);
    expect(readdirSync(out2)).toEqual([]);
    expect(existsSync("/tmp/scanbridge-evil-slip.txt")).toBe(false);
  });

  it("symlink loops and links out of the inputs are left out and reported, never followed", async () => {
    const secret = mk({ "other-patient.pdf": pdf });
    const input = mk({ "a.pdf": pdf, "sub/b.txt": "b" });
    symlinkSync(join(input, "loop2"), join(input, "loop1"));
    symlinkSync(join(input, "loop1"), join(input, "loop2"));
    symlinkSync(input, join(input, "sub", "up"));
    symlinkSync(join(secret, "other-patient.pdf"), join(input, "outside.pdf"));
    const out = mk();
    const r = await runCli(["pack", input, "--patient", "Ana Lima", "--out", out, "--json"], { env });
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.files.total).toBe(2);
    const reasons = Object.fromEntries(result.excluded.map((e: { reason: string; count: number }) => [e.reason, e.count]));
    expect(reasons).toEqual({ "symlink-loop": 2, "symlinked-folder": 1, "symlink-outside-inputs": 1 });
    expect(result.warnings.map((w: { code: string }) => w.code)).toContain("SYMLINKS_LEFT_OUT");
    expect(zipinfoNames(join(out, "Ana Lima.zip")).some((n) => n.includes("other-patient"))).toBe(false);
  });

  it("a name that sanitizes to nothing is a usage error (exit 2); no name when not a TTY too", async () => {
    const out = mk();
    const input = mk({ "a.pdf": pdf });
    const r = await runCli(["pack", input, "--patient", " ./\\.. ", "--out", out], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/PATIENT_NAME_EMPTY/);
    const none = await runCli(["pack", input, "--out", out], { env });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/PATIENT_REQUIRED/);
    expect(readdirSync(out)).toEqual([]);
  });

  it("an existing package is not overwritten without --force", async () => {
    const out = mk();
    const input = mk({ "a.pdf": pdf });
    expect((await runCli(["pack", input, "--patient", "Ana Lima", "--out", out], { env })).code).toBe(0);
    const first = readFileSync(join(out, "Ana Lima.zip"));
    writeFileSync(join(input, "b.txt"), "new");
    const again = await runCli(["pack", input, "--patient", "Ana Lima", "--out", out], { env });
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/PACKAGE_EXISTS/);
    expect(readFileSync(join(out, "Ana Lima.zip"))).toEqual(first);
    const forced = await runCli(["pack", input, "--patient", "Ana Lima", "--out", out, "--force"], { env });
    expect(forced.code, forced.stderr).toBe(0);
    expect(zipinfoNames(join(out, "Ana Lima.zip"))).toContain("Ana Lima/b.txt");
    expect(strays(out, ["Ana Lima.zip", "Ana Lima.zip.sha256"])).toEqual([]);
  });

  it("--max-size exceeded: exit 4 and nothing left behind", async () => {
    const out = mk();
    const input = mk({ "big.dat": randomBytes(300_000) });
    const r = await runCli(["pack", input, "--patient", "Ana Lima", "--out", out, "--max-size", "100kB", "--level", "1"], { env });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/MAX_SIZE_EXCEEDED/);
    expect(readdirSync(out)).toEqual([]);
  });

  it("a bad option value fails at once naming the option and where it came from", async () => {
    const input = mk({ "a.pdf": pdf });
    const r = await runCli(["pack", input, "--patient", "Ana Lima", "--email-limit", "lots"], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/emailLimit \(from flag --email-limit\)/);
    const e = await runCli(["pack", input, "--patient", "Ana Lima"], { env: { ...env, SCANBRIDGE_LEVEL: "12" } });
    expect(e.code).toBe(2);
    expect(e.stderr).toMatch(/level \(from environment variable SCANBRIDGE_LEVEL\): must be at most 9/);
  });

  it("config file < environment < flags", async () => {
    const input = mk({ "a.pdf": pdf });
    const cfgHome = mk();
    mkdirSync(join(cfgHome, ".config", "scanbridge"), { recursive: true });
    writeFileSync(join(cfgHome, ".config", "scanbridge", "config.json"), JSON.stringify({ emailLimit: "1B" }));
    const e2 = cleanEnv(cfgHome);
    const fromFile = JSON.parse((await runCli(["pack", input, "--patient", "A B", "--out", mk(), "--json"], { env: e2 })).stdout);
    expect(fromFile.emailLimit).toBe(1);
    expect(fromFile.emailable).toBe(false);
    const fromEnv = JSON.parse((await runCli(["pack", input, "--patient", "A B", "--out", mk(), "--json"], { env: { ...e2, SCANBRIDGE_EMAIL_LIMIT: "2MB" } })).stdout);
    expect(fromEnv.emailLimit).toBe(2_000_000);
    const fromFlag = JSON.parse((await runCli(["pack", input, "--patient", "A B", "--out", mk(), "--json", "--email-limit", "3MB"], { env: { ...e2, SCANBRIDGE_EMAIL_LIMIT: "2MB" } })).stdout);
    expect(fromFlag.emailLimit).toBe(3_000_000);
  });

  it("an unreadable file is refused with exit 3 and nothing written", async () => {
    const input = mk({ "a.pdf": pdf, "locked.pdf": pdf });
    chmodSync(join(input, "locked.pdf"), 0o000);
    const out = mk();
    chmodSync(out, 0o777);
    chmodSync(input, 0o755);
    // As root every file is readable: drop the two capabilities that let root ignore file modes. The CLI stays
    // root, so it still reads its own build wherever the clone lives (a 0700 folder included), but a 0000 file
    // is as unreadable to it as to anyone.
    const asRoot = process.getuid?.() === 0;
    const args = ["pack", input, "--patient", "Ana Lima", "--out", out];
    const r = asRoot
      ? spawnSync("setpriv", ["--bounding-set", "-dac_override,-dac_read_search", "--", process.execPath, BIN, ...args], { encoding: "utf8", env })
      : spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env });
    expect(r.status, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/UNREADABLE_FILES/);
    expect(readdirSync(out)).toEqual([]);
  });

  it("disk full while writing: clear error, no partial zip", async (ctx) => {
    const out = mk();
    const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", out]);
    if (mounted.status !== 0) ctx.skip();
    try {
      const input = mk({ "big.dat": randomBytes(2_000_000) });
      const r = await runCli(["pack", input, "--patient", "Ana Lima", "--out", out, "--store"], { env });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/DISK_FULL/);
      expect(r.stderr).toMatch(/Free some disk space/);
      expect(readdirSync(out)).toEqual([]);
    } finally {
      spawnSync("umount", [out]);
    }
  });

  it("Ctrl-C while zipping leaves no partial zip and exits 130", async () => {
    const input = mk();
    // ~200 MB of random letters: deflate at level 9 works hard on it, so zipping takes a while.
    const letters = Buffer.from(randomBytes(10 << 20).map((b) => 97 + (b % 26)));
    for (let f = 0; f < 20; f++) writeFileSync(join(input, `s${f}.txt`), letters);
    const out = mk();
    const child = spawnCli(["pack", input, "--patient", "Ana Lima", "--out", out, "--level", "9"], { env });
    const done = waitCli(child);
    let exited = false;
    void done.then(() => (exited = true));
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (exited || readdirSync(out).some((f) => f.endsWith(".tmp"))) {
          clearInterval(timer);
          resolve();
        }
      }, 20);
    });
    expect(exited).toBe(false);
    child.kill("SIGINT");
    const r = await done;
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/INTERRUPTED/);
    expect(readdirSync(out)).toEqual([]);
    expect(existsSync(join(out, "Ana Lima.zip"))).toBe(false);
  });
});
