import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { buildDicom, buildTruncatedDicom, CHARSET_SAMPLES, writeDicom, writeDicomTree } from "../../fixtures/dicom-builder.js";
import { cleanEnv, runCli, tempDirs } from "../helpers/cli.js";
import { readZip, unzipTest } from "../helpers/zip.js";

const mk = tempDirs();
let env: NodeJS.ProcessEnv;
beforeAll(() => {
  env = cleanEnv(mk());
});

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("pack with DICOM: inspection, study summary, wrong-patient guard", () => {
  it("packs a viewer CD: keeps DICOM, DICOMDIR and reports, leaves the viewer out, summarises the studies", async () => {
    const cd = mk();
    await writeDicomTree(cd, {
      patients: [{ name: "Álvarez Núñez^José", id: "P-001", birthDate: "19800214", sex: "M", studies: [
        { description: "CT CHEST", date: "20250302", modality: "CT", series: 3, imagesPerSeries: 4 },
        { description: "MR BRAIN", date: "20250411", modality: "MR", series: 2, imagesPerSeries: 3 },
      ] }],
      viewer: "RadiAnt",
    });
    mkdirSync(join(cd, "REPORTS"));
    writeFileSync(join(cd, "REPORTS", "report.pdf"), "%PDF-1.4\n%%EOF\n");
    const out = mk();
    const r = await runCli(["pack", cd, "--patient", "José Álvarez Núñez", "--out", out, "--json"], { env });
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.files.byKind).toEqual({ dicom: 18, dicomdir: 1, document: 1 });
    expect(res.dicom.studyLine).toBe("2 studies · CT CHEST 2025-03-02 (3 series, 12 images) · MR BRAIN 2025-04-11 (2 series, 6 images)");
    expect(res.dicom.patients).toHaveLength(1);
    expect(res.dicom.patients[0].id).toBe("P-001");
    expect(res.excluded.find((e: { reason: string }) => e.reason === "viewer-software")).toMatchObject({ count: 4, viewer: "RadiAnt" });

    const zip = join(out, "José Álvarez Núñez.zip");
    expect(unzipTest(zip).ok).toBe(true);
    const entries = await readZip(zip);
    const names = entries.map((e) => e.name);
    expect(names).toContain("José Álvarez Núñez/DICOMDIR");
    expect(names).toContain("José Álvarez Núñez/DICOM/P001/S00101/IM000001");
    expect(names.some((n) => /RadiAnt|autorun/i.test(n))).toBe(false);
    const manifest = JSON.parse(entries.find((e) => e.name.endsWith("manifest.json"))!.data.toString());
    expect(manifest.dicom.studies).toHaveLength(2);
    expect(manifest.dicom.studies[0]).toMatchObject({ description: "CT CHEST", modalities: ["CT"], series: 3, images: 12 });
    const im = manifest.files.find((f: { path: string }) => f.path === "DICOM/P001/S00101/IM000001");
    expect(im.kind).toBe("dicom");
    expect(im.studyInstanceUid).toMatch(/^1\.2\.826\./);
    expect(im.seriesInstanceUid).toMatch(/^1\.2\.826\./);
    expect(manifest.files.find((f: { path: string }) => f.path === "DICOMDIR").kind).toBe("dicomdir");
    for (const f of manifest.files) expect(sha(entries.find((e) => e.name === `José Álvarez Núñez/${f.path}`)!.data)).toBe(f.sha256);

    const human = await runCli(["pack", cd, "--patient", "José Álvarez Núñez", "--out", out, "--force"], { env });
    expect(human.stdout).toContain("Scans: 2 studies · CT CHEST 2025-03-02 (3 series, 12 images) · MR BRAIN 2025-04-11 (2 series, 6 images)");
    expect(human.stderr).toMatch(/left out 4 files of viewer software \(RadiAnt/);
  });

  it("refuses a folder with two patients: exit 3, a table of who is where (on stderr only), no zip", async () => {
    const mixed = mk();
    await writeDicomTree(mixed, {
      patients: [
        { name: "Álvarez^José", id: "P-001", birthDate: "19800214", studies: [{ date: "20250302", series: 1, imagesPerSeries: 2 }] },
        { name: "Pereira^Maria", id: "P-777", birthDate: "19751103", studies: [{ date: "20240101", series: 1, imagesPerSeries: 1 }] },
      ],
      layout: "flat",
    });
    const out = mk();
    const r = await runCli(["pack", mixed, "--patient", "José Álvarez", "--out", out], { env });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/PATIENT_MISMATCH/);
    expect(r.stderr).toMatch(/2 different patients/);
    expect(readdirSync(out)).toEqual([]);
    // Not a TTY and not --verbose: the names of the other patient are not printed (it may be a log).
    expect(r.stderr).not.toMatch(/Pereira/);
    const verbose = await runCli(["--verbose", "pack", mixed, "--patient", "José Álvarez", "--out", out], { env });
    expect(verbose.code).toBe(3);
    expect(verbose.stderr).toMatch(/Pereira\^Maria\s+ID P-777/);
    const json = JSON.parse((await runCli(["pack", mixed, "--patient", "José Álvarez", "--out", out, "--json"], { env })).stdout);
    expect(json.error).toMatchObject({ code: "PATIENT_MISMATCH", reason: "multiple-patients", patients: 2, exitCode: 3 });
    expect(JSON.stringify(json)).not.toMatch(/Pereira|Álvarez/);
  });

  it("with 32 MB or more to read (the reading thread starts during the scan), a refusal after the scan still ends the process, and an accepted pack is whole", async () => {
    const dir = mk();
    await writeDicomTree(dir, { patients: [{ name: "Álvarez^José", id: "P-001", studies: [{ series: 1, imagesPerSeries: 2 }] }], layout: "flat" });
    // 34 MB of a report: enough for the thread, which the wrong-patient refusal then leaves unused.
    const big = Buffer.alloc(34e6, 0x41);
    big.write("%PDF-1.4\n", 0, "latin1");
    writeFileSync(join(dir, "scan-report.pdf"), big);
    const out = mk();
    // A thread left running would keep the process alive: runCli would time out instead of returning 3.
    const refused = await runCli(["pack", dir, "--patient", "Maria Álvarez", "--out", out], { env, timeoutMs: 30_000 });
    expect(refused.code, refused.stderr).toBe(3);
    expect(readdirSync(out)).toEqual([]);
    const ok = await runCli(["pack", dir, "--patient", "José Álvarez", "--out", out, "--store", "--json"], { env, timeoutMs: 30_000 });
    expect(ok.code, ok.stderr).toBe(0);
    const res = JSON.parse(ok.stdout);
    const entries = await readZip(res.package);
    expect(entries.find((e) => e.name.endsWith("scan-report.pdf"))!.data.equals(big)).toBe(true);
    const manifest = JSON.parse(entries.find((e) => e.name.endsWith("manifest.json"))!.data.toString());
    expect(manifest.files.find((f: { path: string }) => f.path.endsWith("scan-report.pdf")).sha256).toBe(sha(big));
  });

  it.runIf(process.getuid?.() === 0)("with 32 MB or more to read, a package that cannot be created (read-only output folder) is an error and the process ends", async () => {
    const dir = mk();
    writeFileSync(join(dir, "scan-report.pdf"), Buffer.concat([Buffer.from("%PDF-1.4\n"), Buffer.alloc(34e6, 0x41)]));
    const out = mk();
    execFileSync("mount", ["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", out]);
    try {
      // The thread started during the scan is handed to the zip, which fails at its first step: it must close it.
      const r = await runCli(["pack", dir, "--patient", "José Álvarez", "--out", out, "--json"], { env, timeoutMs: 30_000 });
      expect(r.code, r.stderr).not.toBe(0);
      expect(JSON.parse(r.stdout).error.code).toBe("READ_ONLY");
    } finally {
      execFileSync("umount", [out]);
    }
  });

  it("refuses when --patient names somebody else, and --allow-patient-mismatch overrides and is recorded", async () => {
    const dir = mk();
    await writeDicomTree(dir, { patients: [{ name: "Álvarez^José", id: "P-001", studies: [{ series: 1, imagesPerSeries: 2 }] }], layout: "flat" });
    const out = mk();
    const r = await runCli(["pack", dir, "--patient", "Maria Álvarez", "--out", out], { env });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/does not match --patient/);
    expect(readdirSync(out)).toEqual([]);
    const ok = await runCli(["pack", dir, "--patient", "Maria Álvarez", "--out", out, "--allow-patient-mismatch", "--json"], { env });
    expect(ok.code, ok.stderr).toBe(0);
    const res = JSON.parse(ok.stdout);
    expect(res.dicom.patientMismatchAllowed).toBe(true);
    expect(res.warnings.map((w: { code: string }) => w.code)).toContain("PATIENT_MISMATCH_ALLOWED");
    const entries = await readZip(res.package);
    const manifest = JSON.parse(entries.find((e) => e.name.endsWith("manifest.json"))!.data.toString());
    expect(manifest.overrides).toEqual({ allowPatientMismatch: true });
  });

  it("accepts legitimate spellings of international names in their DICOM character sets", async () => {
    const cases: Array<[string, string]> = [
      ["\\ISO 2022 IR 87", "Tarou Yamada"],
      ["\\ISO 2022 IR 87", "山田太郎"],
      ["\\ISO 2022 IR 149", "Gildong Hong"],
      ["ISO_IR 126", "Γιώργος Παπαδόπουλος"],
      ["ISO_IR 144", "Пётр Иванов"],
      ["ISO_IR 127", "لنزار قباني"],
      ["GB18030", "王小东"],
    ];
    for (const [charset, given] of cases) {
      const sample = CHARSET_SAMPLES.find((s) => s.charset === charset)!;
      const dir = mk();
      await writeDicom(join(dir, "IM0001"), { specificCharacterSet: charset, patientName: sample.name, patientId: "X1", studyInstanceUid: "1.2.3", seriesInstanceUid: "1.2.3.4", sopInstanceUid: "1.2.3.4.5", modality: "CT" });
      const out = mk();
      const r = await runCli(["pack", dir, "--patient", given, "--out", out, "--json", "--verbose"], { env });
      expect(r.code, `${charset} / ${given}: ${r.stdout}${r.stderr}`).toBe(0);
      const res = JSON.parse(r.stdout);
      expect(res.dicom.patients[0].name).toEqual(sample.expected);
    }
  });

  it("warns about truncated DICOM and packs it as dicom-unreadable; --strict refuses", async () => {
    const dir = mk();
    writeFileSync(join(dir, "IM0001"), buildDicom({ patientName: "Lima^Ana", patientId: "A1", studyInstanceUid: "1.2.3", seriesInstanceUid: "1.2.3.1", sopInstanceUid: "1.2.3.1.1", modality: "CR", pixelDataBytes: 1024 }));
    writeFileSync(join(dir, "IM0002"), buildTruncatedDicom({ patientName: "Lima^Ana", patientId: "A1" }, "header"));
    const out = mk();
    const r = await runCli(["pack", dir, "--patient", "Ana Lima", "--out", out, "--json"], { env });
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.files.byKind).toEqual({ dicom: 1, "dicom-unreadable": 1 });
    // Cut inside the Patient ID, after the name: the patient is still checked (issue 12), the image is marked damaged.
    expect(res.warnings.map((w: { code: string }) => w.code)).toContain("DICOM_TRUNCATED");
    const strict = await runCli(["pack", dir, "--patient", "Ana Lima", "--out", mk(), "--strict"], { env });
    expect(strict.code).toBe(3);
    expect(strict.stderr).toMatch(/unreadable or truncated/);
  });

  it("inspects a 500 MB multi-frame file by reading only its header (dry run writes nothing)", async () => {
    const dir = mk();
    await writeDicom(join(dir, "BIG0001"), { patientName: "Lima^Ana", patientId: "A1", studyInstanceUid: "1.2.3", seriesInstanceUid: "1.2.3.1", sopInstanceUid: "1.2.3.1.1", modality: "XA", pixelDataBytes: 500_000_000 });
    const r = await runCli(["pack", dir, "--patient", "Ana Lima", "--dry-run", "--json"], { env, cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.dryRun).toBe(true);
    expect(res.package).toBeNull();
    expect(res.dicom.bytesRead).toBeLessThan(64 * 1024);
    expect(readdirSync(dir)).toEqual(["BIG0001"]);
    const insp = await runCli(["inspect", dir, "--patient", "Ana Lima", "--json"], { env, cwd: dir });
    expect(insp.code, insp.stderr).toBe(0);
    expect(JSON.parse(insp.stdout).dicom.studyLine).toBe("1 study · XA (1 series, 1 image)");
  });
});
