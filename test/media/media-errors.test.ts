import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { imageDicom, pdfReport, writeReadyDelivery } from "../../fixtures/media-builder.js";
import { makeMedia } from "../../src/media/make.js";
import { InterruptedError } from "../../src/errors.js";
import { cleanEnv, removeDir, runCli, testdir } from "../helpers/cli.js";

const isRoot = process.getuid?.() === 0;

/** A small delivery: one patient, one study of `images` 256x256 images, and a PDF report. */
async function smallDelivery(dir: string, name: string, images = 4, withImages = true): Promise<string> {
  const files: Array<{ path: string; data: Buffer }> = [];
  if (withImages) {
    for (let i = 0; i < images; i++) {
      files.push({
        path: `cd/IM${i + 1}`,
        data: imageDicom({ rows: 256, cols: 256, patientName: "Test^Patient", patientId: "T1", studyInstanceUid: "1.2.3.9", seriesInstanceUid: "1.2.3.9.1", sopInstanceUid: `1.2.3.9.1.${i + 1}`, studyDate: "20250101", modality: "CT", instanceNumber: i + 1, seriesNumber: 1, seed: i }),
      });
    }
  }
  files.push({ path: "report.pdf", data: pdfReport("report") });
  return writeReadyDelivery(dir, name, files);
}

describe("scanbridge media: bad input, limits and interruptions", () => {
  let work: string;
  let env: NodeJS.ProcessEnv;
  let delivery: string;

  beforeAll(async () => {
    work = testdir({}, "scanbridge-media-err-");
    env = cleanEnv(work);
    delivery = await smallDelivery(join(work, "ready"), "Test Patient");
  });
  afterAll(() => removeDir(work));

  const hidden = (dir: string) => readdirSync(dir).filter((n) => n.startsWith(".") || n.startsWith("SBTMP"));

  it("refuses a folder that is not a delivery (exit 3) and writes nothing", async () => {
    const notDelivery = join(work, "not-a-delivery");
    mkdirSync(notDelivery);
    writeFileSync(join(notDelivery, "notes.bin"), Buffer.alloc(100, 1));
    const r = await runCli(["media", notDelivery, "--out", join(work, "o1")], { env, cwd: work });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/not a delivery/);
    expect(readdirSync(work)).not.toContain("o1");
  });

  it("refuses a file that is not a package, and a delivery changed after intake (exit 3), writing nothing", async () => {
    const notZip = join(work, "letter.zip");
    writeFileSync(notZip, "not a zip at all");
    const r = await runCli(["media", notZip, "--out", join(work, "o8")], { env, cwd: work });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/NOT_A_ZIP|not a zip/i);
    const changed = await smallDelivery(join(work, "ready"), "Changed After Intake", 2);
    writeFileSync(join(changed, "cd", "IM1"), Buffer.alloc(10));
    const r2 = await runCli(["media", changed, "--out", join(work, "o9"), "--json"], { env, cwd: work });
    expect(r2.code).toBe(3);
    expect((JSON.parse(r2.stdout) as { error: { code: string } }).error.code).toBe("DELIVERY_CHANGED");
    expect(readdirSync(work).filter((n) => /^\.?o[89]/.test(n))).toEqual([]);
  });

  it("makes a reports-only file-set from a delivery without DICOM, and says so", async () => {
    const reportsOnly = await smallDelivery(join(work, "ready"), "Reports Only", 0, false);
    const out = join(work, "o2");
    const r = await runCli(["media", reportsOnly, "--out", out, "--json"], { env, cwd: work });
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { reportsOnly: boolean; instances: number; reports: number };
    expect(j).toMatchObject({ reportsOnly: true, instances: 0, reports: 1 });
    expect(readdirSync(out).sort()).toEqual(["DICOMDIR", "IHE_PDI", "INDEX.HTM", "README.TXT", "REPORTS"]);
    expect(readFileSync(join(out, "INDEX.HTM"), "utf8")).toContain("no DICOM images: reports only");
    expect(readFileSync(join(out, "README.TXT"), "utf8")).toContain("No DICOM images: this delivery holds reports only.");
    // An empty DICOMDIR is still one dcmdump reads.
    expect(execFileSync("dcmdump", ["-q", join(out, "DICOMDIR")], { encoding: "utf8" })).toMatch(/DirectoryRecordSequence/);
  });

  it("refuses a delivery larger than the medium with both sizes (exit 4)", async () => {
    const r = await runCli(["media", delivery, "--out", join(work, "o3"), "--max-size", "100KB", "--json"], { env, cwd: work });
    expect(r.code).toBe(4);
    const j = JSON.parse(r.stdout) as { error: { code: string; message: string } };
    expect(j.error.code).toBe("MEDIA_TOO_LARGE");
    expect(j.error.message).toMatch(/needs .* --max-size allows 100 kB|needs .*allows/);
    expect(readdirSync(work)).not.toContain("o3");
  });

  it("refuses an output folder that is not empty, and leaves it as it was", async () => {
    const out = join(work, "o4");
    mkdirSync(out);
    writeFileSync(join(out, "keep.txt"), "mine");
    const r = await runCli(["media", delivery, "--out", out], { env, cwd: work });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/not empty/);
    expect(readdirSync(out)).toEqual(["keep.txt"]);
  });

  it("exits with the install line when xorriso is missing, before writing anything", async () => {
    const r = await runCli(["media", delivery, "--out", join(work, "o5"), "--iso", join(work, "o5.iso")], { env: { ...env, PATH: "/nonexistent" }, cwd: work });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("apt-get install -y xorriso");
    expect(readdirSync(work).filter((n) => n.startsWith("o5"))).toEqual([]);
  });

  it("leaves nothing behind when interrupted while copying (Ctrl-C)", async () => {
    const ac = new AbortController();
    const out = join(work, "o6");
    await expect(
      makeMedia({
        input: delivery,
        out,
        iso: join(work, "o6.iso"),
        xorriso: "/usr/bin/xorriso",
        medium: "dvd",
        toolVersion: "test",
        signal: ac.signal,
        emit: (e) => {
          if (e.type === "progress" && e.id === "media-copy") ac.abort();
        },
      }),
    ).rejects.toBeInstanceOf(InterruptedError);
    expect(readdirSync(work).filter((n) => n.startsWith("o6") || n.startsWith(".o6"))).toEqual([]);
  });

  it("writes the same layout to the root of a USB stick and refuses a stick that already holds a file-set", async () => {
    const stick = join(work, "usb");
    mkdirSync(join(stick, "System Volume Information"), { recursive: true });
    const r = await runCli(["media", delivery, "--usb", stick, "--json"], { env, cwd: work });
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(stick).sort()).toEqual(["DICOM", "DICOMDIR", "IHE_PDI", "INDEX.HTM", "README.TXT", "REPORTS", "System Volume Information"]);
    expect((JSON.parse(r.stdout) as { profile: string }).profile).toBe("STD-GEN-USB-JPEG");
    const again = await runCli(["media", delivery, "--usb", stick], { env, cwd: work });
    expect(again.code).toBe(3);
    expect(again.stderr).toMatch(/already holds a file-set/);
    expect(hidden(stick)).toEqual([]);
  });

  it.runIf(isRoot)("a full disk gives DISK_FULL and no partial file-set or ISO (real tmpfs)", async () => {
    const small = join(work, "tmpfs");
    mkdirSync(small);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", small]);
    try {
      // The file-set does not fit: refused before writing.
      const r = await runCli(["media", delivery, "--out", join(small, "fs"), "--json"], { env, cwd: work });
      expect(r.code).toBe(1);
      expect((JSON.parse(r.stdout) as { error: { code: string } }).error.code).toBe("DISK_FULL");
      expect(readdirSync(small)).toEqual([]);
      // The file-set fits elsewhere, the ISO runs out of room while xorriso writes it.
      const r2 = await runCli(["media", delivery, "--out", join(work, "o7"), "--iso", join(small, "disc.iso"), "--json"], { env, cwd: work });
      expect(r2.code).toBe(1);
      expect((JSON.parse(r2.stdout) as { error: { code: string } }).error.code).toBe("DISK_FULL");
      expect(readdirSync(small)).toEqual([]);
      expect(hidden(work)).toEqual([]);
    } finally {
      spawnSync("umount", [small]);
    }
  });
});
