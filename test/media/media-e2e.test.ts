import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser } from "playwright-core";
import { writeSealedPackage } from "../../fixtures/package-builder.js";
import { writeReadyDelivery } from "../../fixtures/media-builder.js";
import { cleanEnv, removeDir, ROOT, runCli, testdir } from "../helpers/cli.js";
import { buildMediaDelivery, TS, type DeliveryFile } from "./delivery.js";

const OUTPUT = join(ROOT, "test-output", "media");
/** How dcmdump names the transfer syntaxes of the delivery. */
const DCMDUMP_TS_NAME: Record<string, string> = {
  [TS.explicitLE]: "LittleEndianExplicit",
  [TS.rle]: "RLELossless",
  [TS.jpegLossless]: "JPEGLossless:Non-hierarchical-1stOrderPrediction",
  [TS.jpegBaseline]: "JPEGBaseline",
  [TS.jpegLs]: "JPEGLSLossless",
  [TS.j2k]: "JPEG2000LosslessOnly",
};
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Every file under a folder, relative, "/"-separated. */
function walk(dir: string, rel = ""): string[] {
  const out: string[] = [];
  for (const d of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${d.name}` : d.name;
    if (d.isDirectory()) out.push(...walk(dir, r));
    else out.push(r);
  }
  return out.sort();
}

/** The IMAGE records of a DICOMDIR as dcmdump prints them: file ID, SOP instance UID, transfer syntax. */
function dumpRecords(dicomdir: string): { types: string[]; images: Array<{ fileId: string; sop: string; ts: string }>; fileSetId: string } {
  const text = execFileSync("dcmdump", ["-q", "+L", dicomdir], { encoding: "utf8" });
  const types = [...text.matchAll(/\(0004,1430\) CS \[([A-Z ]+?)\s*\]/g)].map((m) => m[1]!);
  const fileIds = [...text.matchAll(/\(0004,1500\) CS \[([^\]]+)\]/g)].map((m) => m[1]!.trim());
  const sops = [...text.matchAll(/\(0004,1511\) UI \[([^\]]+)\]/g)].map((m) => m[1]!.replace(/\0/g, ""));
  const tss = [...text.matchAll(/\(0004,1512\) UI [=[]([^\]\s#]+)/g)].map((m) => m[1]!);
  const fileSetId = /\(0004,1130\) CS \[([^\]]*)\]/.exec(text)?.[1]?.trim() ?? "";
  return { types, images: fileIds.map((fileId, i) => ({ fileId, sop: sops[i]!, ts: tss[i]! })), fileSetId };
}

/** Whether a relative path exists with exactly this case, component by component. */
function existsExactCase(root: string, rel: string): boolean {
  let dir = root;
  for (const part of rel.split("/")) {
    if (!readdirSync(dir).includes(part)) return false;
    dir = join(dir, part);
  }
  return true;
}

describe("scanbridge media: a delivery on a PDI file-set, ISO and page", () => {
  let work: string;
  let files: DeliveryFile[];
  let ready: string;
  let out: string;
  let iso: string;
  let json: Record<string, unknown>;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    work = testdir({}, "scanbridge-media-");
    env = cleanEnv(work);
    files = await buildMediaDelivery();
    ready = await writeReadyDelivery(join(work, "ready"), "José Álvarez Núñez", files);
    out = join(work, "media", "alvarez");
    iso = join(work, "media", "alvarez.iso");
    const r = await runCli(["media", ready, "--out", out, "--iso", iso, "--json"], { env, cwd: work });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).toBe("");
    json = JSON.parse(r.stdout) as Record<string, unknown>;
  }, 180_000);
  afterAll(() => { if (!process.env.KEEP) removeDir(work); });

  const images = () => files.filter((f) => f.sopInstanceUid);

  it("references every DICOM image from the DICOMDIR, which dcmdump reads, at the exact case of each 8.3 file ID", () => {
    const d = dumpRecords(join(out, "DICOMDIR"));
    expect(d.images.map((i) => i.sop).sort()).toEqual(images().map((f) => f.sopInstanceUid).sort());
    for (const img of d.images) {
      const parts = img.fileId.split("\\");
      expect(parts.length).toBeLessThanOrEqual(8);
      for (const p of parts) expect(p).toMatch(/^[A-Z0-9_]{1,8}$/);
      expect(existsExactCase(out, parts.join("/")), img.fileId).toBe(true);
    }
    expect(d.types.filter((t) => t === "PATIENT")).toHaveLength(3);
    expect(d.types.filter((t) => t === "STUDY")).toHaveLength(4);
    expect(d.types.filter((t) => t === "SERIES")).toHaveLength(8);
    expect(d.fileSetId).toMatch(/^[A-Z0-9_]{1,16}$/);
    expect(d.fileSetId).toBe(json.fileSetId);
  });

  it("copies every image byte for byte and keeps its transfer syntax", () => {
    const d = dumpRecords(join(out, "DICOMDIR"));
    const bySop = new Map(images().map((f) => [f.sopInstanceUid!, f]));
    for (const img of d.images) {
      const src = bySop.get(img.sop)!;
      expect(sha(readFileSync(join(out, ...img.fileId.split("\\")))), src.path).toBe(sha(src.data));
      expect(img.ts, src.path).toBe(DCMDUMP_TS_NAME[src.transferSyntax!]);
    }
  });

  it("orders patients, studies, series and instances by name, date, series number and instance number", () => {
    const d = dumpRecords(join(out, "DICOMDIR"));
    // Álvarez first (A < S < Y), his CT (March) before his MR (April), series and instances numbered in order.
    expect(d.images[0]!.sop).toBe("1.2.826.0.1.3680043.9.7433.13.1.1.1.1");
    expect(d.images[0]!.fileId).toBe("DICOM\\PAT00001\\STU00001\\SER00001\\IMG00001");
    expect(d.images.find((i) => i.sop === "1.2.826.0.1.3680043.9.7433.13.1.2.3.1")!.fileId).toBe("DICOM\\PAT00001\\STU00002\\SER00003\\IMG00001");
    expect(d.images.find((i) => i.sop === "1.2.826.0.1.3680043.9.7433.13.3.1.1.2")!.fileId).toBe("DICOM\\PAT00003\\STU00001\\SER00001\\IMG00002");
  });

  it("passes dcmtk's dcmmkdir checks for the recorded profile, and dcmmkdir's own DICOMDIR of the same files has the same records", () => {
    expect(json.profile).toBe("STD-GEN-DVD-JPEG");
    const peer = join(work, "peer-DICOMDIR");
    // -Nxc: RLE, JPEG-LS and JPEG 2000 files are outside STD-GEN-DVD-JPEG; they are kept as received (reported).
    execFileSync("dcmmkdir", ["-Pdv", "-Nxc", "+I", "+r", "+id", out, "+D", peer, "DICOM"], { cwd: out, stdio: "pipe" });
    const mine = dumpRecords(join(out, "DICOMDIR"));
    const theirs = dumpRecords(peer);
    const count = (types: string[]) => types.reduce<Record<string, number>>((acc, t) => ({ ...acc, [t]: (acc[t] ?? 0) + 1 }), {});
    expect(count(mine.types)).toEqual(count(theirs.types));
    expect(mine.images.map((i) => `${i.fileId} ${i.sop}`).sort()).toEqual(theirs.images.map((i) => `${i.fileId} ${i.sop}`).sort());
    // dcmmkdir loads our DICOMDIR (offsets and all) in update mode and checks every file against its records.
    const copy = join(work, "check-DICOMDIR");
    copyFileSync(join(out, "DICOMDIR"), copy);
    const all = spawnSync("dcmmkdir", ["-Pdv", "-Nxc", "+I", "+U", "-w", "+D", copy, "+r", "+id", out, "DICOM"], { cwd: out, encoding: "utf8" });
    expect(all.status, all.stderr + all.stdout).toBe(0);
    expect(all.stderr + all.stdout).not.toMatch(/^[EF]:/m);
    // The images within the profile pass its checks strictly: no transfer syntax exemption, no invented keys.
    const conformant = mine.images.filter((i) => /^DICOM\\PAT00001\\STU0000(1\\SER00001|2\\SER00001|2\\SER00003)\\/.test(i.fileId)).map((i) => i.fileId.replace(/\\/g, "/"));
    expect(conformant).toHaveLength(6);
    const strict = spawnSync("dcmmkdir", ["-Pdv", "+U", "-w", "+D", copy, "+id", out, ...conformant], { cwd: out, encoding: "utf8" });
    expect(strict.status, strict.stderr + strict.stdout).toBe(0);
    expect(strict.stderr + strict.stdout).toBe("");
    expect(json.outsideProfile).toEqual({ "RLE Lossless": 2, "JPEG-LS Lossless": 2, "JPEG 2000 Lossless": 2 });
  });

  it("puts reports and other files outside the DICOM tree with 8.3 names, and writes README.TXT", () => {
    const all = walk(out);
    expect(all.filter((p) => p.startsWith("REPORTS/"))).toEqual(["REPORTS/DOC00001.PDF", "REPORTS/DOC00002.PDF"]);
    expect(all.filter((p) => p.startsWith("OTHER/"))).toEqual(["OTHER/FIL00001.DCM"]);
    for (const p of all) for (const part of p.split("/")) expect(part).toMatch(/^[A-Z0-9_]{1,8}(\.[A-Z0-9]{1,3})?$/);
    const readme = readFileSync(join(out, "README.TXT"), "utf8");
    expect(readme).toContain("HOW TO OPEN IT");
    expect(readme).toContain("INDEX.HTM");
    expect(readme).toContain("STD-GEN-DVD-JPEG");
    expect(readme).toContain(`scanbridge `);
    expect(readme).not.toContain("Álvarez");
  });

  it("writes an ISO 9660 image with the same tree, volume ID = File-set ID, no Joliet", () => {
    const listing = execFileSync("xorriso", ["-indev", iso, "-find", "/", "-type", "f"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })
      .split("\n")
      .filter(Boolean)
      .map((l) => l.replace(/^'\/?|'$/g, ""))
      .sort();
    expect(listing).toEqual(walk(out));
    const pvd = execFileSync("xorriso", ["-indev", iso, "-pvd_info"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(pvd).toMatch(new RegExp(`Volume Id\\s*:\\s*${String(json.fileSetId)}`));
    const toc = execFileSync("xorriso", ["-indev", iso, "-toc"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(toc).not.toMatch(/Joliet\s*:\s*yes/i);
  });

  it("INDEX.HTM shows every study and a thumbnail per decodable series in Chromium; the undecodable series says so", async () => {
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({
        executablePath: "/usr/bin/chromium",
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
      });
      const page = await browser.newPage({ javaScriptEnabled: false });
      await page.goto(`file://${join(out, "INDEX.HTM")}`);
      const studies = await page.locator(".study .study-description").allTextContents();
      expect(studies).toEqual(["CT Thorax", "MR Knee", "CT Abdomen", "Chest X-ray"]);
      expect(await page.locator(".patient-name").allTextContents()).toEqual(["Álvarez Núñez José", "Smith Anna", "Yamada Tarou / 山田 太郎"]);
      const loaded = await page.locator("img.thumb").evaluateAll((els) => els.map((e) => (e as unknown as { naturalWidth: number }).naturalWidth));
      expect(loaded).toHaveLength(7);
      for (const w of loaded) expect(w).toBeGreaterThan(0);
      const missing = await page.locator(".no-thumb").allTextContents();
      expect(missing).toHaveLength(1);
      expect(missing[0]).toMatch(/No preview: pixel data could not be decoded/);
      expect(await page.locator(".series .series-images").allTextContents()).toEqual(["3 images", "2 images", "2 images", "2 images", "1 image", "2 images", "1 image", "2 images"]);
      const reports = await page.locator(".report a").evaluateAll((els) => els.map((e) => [e.textContent, e.getAttribute("href")]));
      expect(reports).toEqual([
        ["Radiology report CT thorax 2025-03-01.pdf", "REPORTS/DOC00001.PDF"],
        ["discharge letter (final).pdf", "REPORTS/DOC00002.PDF"],
      ]);
      for (const [, href] of reports) expect(existsSync(join(out, href!))).toBe(true);
      expect(await page.locator(".integrity").textContent()).toContain("manifest.json");
      mkdirSync(OUTPUT, { recursive: true });
      await page.setViewportSize({ width: 1100, height: 900 });
      await page.screenshot({ path: join(OUTPUT, "INDEX.png"), fullPage: true });
      expect(statSync(join(OUTPUT, "INDEX.png")).size).toBeGreaterThan(10_000);
    } finally {
      await browser?.close();
    }
  });

  it("makes the same file-set from the package .zip, verifying it first", async () => {
    const pkg = await writeSealedPackage(join(work, "archive"), "José Álvarez Núñez", files.map((f) => ({ path: f.path, data: f.data, kind: f.kind })));
    const out2 = join(work, "media", "from-zip");
    const r = await runCli(["media", pkg.zipPath, "--out", out2, "--json"], { env, cwd: work });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(j.packageSha256).toBe(pkg.sha256);
    expect(walk(out2)).toEqual(walk(out));
    expect(readFileSync(join(out2, "README.TXT"), "utf8")).toContain(`Package SHA-256: ${pkg.sha256}`);
    // No staging left beside the output.
    expect(readdirSync(join(work, "media")).filter((n) => n.startsWith("."))).toEqual([]);
  });
});
