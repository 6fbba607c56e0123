/*
 * Issue 12, end to end with the built CLI: every file whose patient header can be read is checked, files whose
 * patient cannot be read block the package unless --allow-unchecked, the hospital's `verify` shows every override,
 * and a disc with two patients is packed one patient at a time with --only-patient.
 */
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { TransferSyntax, buildDicom, buildTruncatedDicom, writeDicomTree, type DicomBuildOptions } from "../../fixtures/dicom-builder.js";
import type { Manifest } from "../../src/pack/manifest.js";
import { cleanEnv, runCli, tempDirs } from "../helpers/cli.js";
import { readZip } from "../helpers/zip.js";

const mk = tempDirs();
let env: NodeJS.ProcessEnv;
beforeAll(() => {
  env = cleanEnv(mk());
});

let uid = 0;
const img = (o: DicomBuildOptions): Buffer => {
  uid++;
  return buildDicom({ studyInstanceUid: "1.2.826.0.1.3680043.9.7433.12.9", seriesInstanceUid: "1.2.826.0.1.3680043.9.7433.12.9.1", sopInstanceUid: `1.2.826.0.1.3680043.9.7433.12.9.1.${uid}`, modality: "MR", pixelDataBytes: 2048, ...o });
};
const ANA: DicomBuildOptions = { patientName: "Lima^Ana", patientId: "A-17", patientBirthDate: "19900101" };
const BOB: DicomBuildOptions = { patientName: "Stone^Robert", patientId: "B-99", patientBirthDate: "19700505" };

async function manifestOf(zip: string): Promise<Manifest> {
  const entries = await readZip(zip);
  return JSON.parse(entries.find((e) => e.name.endsWith("/manifest.json"))!.data.toString()) as Manifest;
}

/** Refused with exit 3 and no zip under a wrong name; packed (exit 0) under the right one. */
async function expectGuarded(files: Record<string, Buffer>, wrong: string, right: string, extra: string[] = []): Promise<string> {
  const input = mk(files);
  const out = mk();
  const refused = await runCli(["pack", input, "--patient", wrong, "--out", out, ...extra], { env });
  expect(refused.code, refused.stderr).toBe(3);
  expect(readdirSync(out)).toEqual([]);
  const ok = await runCli(["pack", input, "--patient", right, "--out", out, "--json", ...extra], { env });
  expect(ok.code, ok.stderr).toBe(0);
  return JSON.parse(ok.stdout).package as string;
}

describe("wrong-patient guard without holes (issue 12)", () => {
  it("compressed files with trailing padding (RLE, JPEG 2000) are checked", async () => {
    const zip = await expectGuarded({
      "MR_small_RLE.dcm": img({ ...ANA, transferSyntax: TransferSyntax.rle, fragments: 2, trailingPadding: 32 }),
      "MR_small_jp2klossless.dcm": img({ ...ANA, transferSyntax: TransferSyntax.jpeg2000Lossless, trailingPadding: 32 }),
    }, "Totally Different Person", "Ana Lima");
    expect((await manifestOf(zip)).totals.byKind).toEqual({ dicom: 2 });
  });

  it("padded compressed files of another patient mixed into a CD are caught as a second patient", async () => {
    const cd = mk();
    await writeDicomTree(cd, { patients: [{ name: "Lima^Ana", id: "A-17", birthDate: "19900101", studies: [{ description: "CT", series: 1, imagesPerSeries: 2 }] }] });
    writeFileSync(join(cd, "EXTRA.dcm"), img({ ...BOB, transferSyntax: TransferSyntax.jpegLsLossless, trailingPadding: 16 }));
    const out = mk();
    const r = await runCli(["pack", cd, "--patient", "Ana Lima", "--out", out], { env });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/2 different patients/);
    expect(r.stderr).toMatch(/--only-patient/);
    expect(readdirSync(out)).toEqual([]);
  });

  it("a file with a whole header but pixel data cut mid-fragment is checked, and packed as dicom-unreadable under the right name", async () => {
    const zip = await expectGuarded({ "MR_truncated.dcm": buildTruncatedDicom({ ...ANA, transferSyntax: TransferSyntax.rle, pixelDataBytes: 4096 }, "pixel-data") }, "Totally Different Person", "Ana Lima");
    const m = await manifestOf(zip);
    expect(m.files[0]!.kind).toBe("dicom-unreadable");
    expect(m.overrides).toBeUndefined();
  });

  it("big endian and implicit files without meta are read and checked, also under --strict", async () => {
    await expectGuarded({
      "ExplVR_BigEndNoMeta.dcm": img({ ...ANA, transferSyntax: TransferSyntax.explicitBE, preamble: false, meta: false }),
      "no_meta.dcm": img({ ...ANA, transferSyntax: TransferSyntax.implicitLE, preamble: false, meta: false }),
    }, "Totally Different Person", "Ana Lima", ["--strict"]);
  });

  it("a DICOM-looking file whose patient cannot be read blocks the package; --allow-unchecked packs it, recorded, and verify warns", async () => {
    const input = mk({ "IM0001": img(ANA), "broken.dcm": Buffer.from("not really dicom, but named so") });
    const out = mk();
    const refused = await runCli(["pack", input, "--patient", "Ana Lima", "--out", out], { env });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/patient could not be checked/);
    expect(refused.stderr).toMatch(/--allow-unchecked/);
    expect(readdirSync(out)).toEqual([]);
    const strict = await runCli(["pack", input, "--patient", "Ana Lima", "--out", out, "--strict", "--allow-unchecked"], { env });
    expect(strict.code).toBe(3);

    const ok = await runCli(["pack", input, "--patient", "Ana Lima", "--out", out, "--allow-unchecked", "--json"], { env });
    expect(ok.code, ok.stderr).toBe(0);
    const zip = JSON.parse(ok.stdout).package as string;
    expect((await manifestOf(zip)).overrides).toEqual({ allowUnchecked: true, uncheckedFiles: ["broken.dcm"] });
    const v = await runCli(["verify", zip, "--json"], { env });
    expect(v.code, v.stderr).toBe(0);
    const codes = JSON.parse(v.stdout).packageWarnings.map((w: { code: string }) => w.code);
    expect(codes).toContain("UNCHECKED_ALLOWED");
    const human = await runCli(["verify", zip], { env });
    expect(human.stdout).toMatch(/Package OK, with \d+ warning/);
    expect(human.stdout).toMatch(/could not be checked/);
  });

  it("verify shows an overridden patient mismatch", async () => {
    const input = mk({ IM1: img(BOB) });
    const out = mk();
    const ok = await runCli(["pack", input, "--patient", "Ana Lima", "--out", out, "--allow-patient-mismatch", "--json"], { env });
    expect(ok.code, ok.stderr).toBe(0);
    const v = await runCli(["verify", JSON.parse(ok.stdout).package, "--json"], { env });
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout).packageWarnings.map((w: { code: string }) => w.code)).toContain("PATIENT_MISMATCH_ALLOWED");
  });

  for (const start of ["MZ", "PK\x03\x04"]) {
    it(`DICOM whose preamble starts with ${JSON.stringify(start)} is packed as DICOM and accepted by verify`, async () => {
      const input = mk({ IM1: img({ ...ANA, preambleStart: start }) });
      const out = mk();
      const ok = await runCli(["pack", input, "--patient", "Ana Lima", "--out", out, "--json"], { env });
      expect(ok.code, ok.stderr).toBe(0);
      expect(JSON.parse(ok.stdout).files.byKind).toEqual({ dicom: 1 });
      const v = await runCli(["verify", JSON.parse(ok.stdout).package], { env });
      expect(v.code, v.stderr).toBe(0);
    });
  }
});

describe("several patients on one CD (issue 12)", () => {
  async function twoPatientCd(): Promise<string> {
    const cd = mk();
    await writeDicomTree(cd, {
      patients: [
        { name: "Lima^Ana", id: "A-17", birthDate: "19900101", studies: [{ description: "CT CHEST", date: "20250302", modality: "CT", series: 1, imagesPerSeries: 2 }] },
        { name: "Stone^Robert", id: "B-99", birthDate: "19700505", studies: [{ description: "MR KNEE", date: "20250401", modality: "MR", series: 1, imagesPerSeries: 3 }] },
      ],
    });
    writeFileSync(join(cd, "report.pdf"), "%PDF-1.4\n%%EOF\n");
    return cd;
  }

  it("inspect lists both patients with their studies (names only with --verbose when not at a terminal)", async () => {
    const cd = await twoPatientCd();
    const r = await runCli(["inspect", cd, "--verbose"], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/2 patients/);
    expect(r.stdout).toMatch(/Lima\^Ana\s+ID A-17.*CT CHEST/);
    expect(r.stdout).toMatch(/Stone\^Robert\s+ID B-99.*MR KNEE/);
    const quiet = await runCli(["inspect", cd], { env });
    expect(quiet.stdout).not.toMatch(/Lima|Stone/);
    const json = JSON.parse((await runCli(["inspect", cd, "--json"], { env })).stdout);
    expect(json.dicom.patientsFound.map((p: { id: string }) => p.id).sort()).toEqual(["A-17", "B-99"]);
  });

  it("--only-patient keeps one patient's files, leaves the DICOMDIR out with a note, records the others as other-patient", async () => {
    const cd = await twoPatientCd();
    const out = mk();
    const refused = await runCli(["pack", cd, "--patient", "Robert Stone", "--out", out], { env });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/--only-patient/);

    const r = await runCli(["pack", cd, "--patient", "Robert Stone", "--only-patient", "B-99", "--out", out, "--json"], { env });
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.files.byKind).toEqual({ dicom: 3, document: 1 });
    expect(res.warnings.map((w: { code: string }) => w.code)).toEqual(expect.arrayContaining(["OTHER_PATIENTS_LEFT_OUT", "DOCUMENTS_KEPT"]));
    const m = await manifestOf(res.package);
    expect(m.excluded.filter((e: { reason: string }) => e.reason === "other-patient")).toHaveLength(2);
    expect(m.excluded.find((e: { reason: string }) => e.reason === "dicomdir-other-patients")).toMatchObject({ path: "DICOMDIR" });
    expect(m.dicom!.patients).toHaveLength(1);
    expect(m.onlyPatient).toEqual({ id: "B-99" });
    const names = (await readZip(res.package)).map((e) => e.name);
    expect(names.some((n) => n.endsWith("/DICOMDIR"))).toBe(false);
    expect(names.filter((n) => n.includes("/P001/"))).toEqual([]);
    const v = await runCli(["verify", res.package, "--json"], { env });
    expect(v.code, v.stderr).toBe(0);
    expect(JSON.parse(v.stdout).packageWarnings.map((w: { code: string }) => w.code)).toContain("OTHER_PATIENTS_LEFT_OUT");

    // By name too; an unknown one is refused with the list of patients.
    const byName = await runCli(["pack", cd, "--patient", "Ana Lima", "--only-patient", "Ana Lima", "--out", mk()], { env });
    expect(byName.code, byName.stderr).toBe(0);
    const none = await runCli(["pack", cd, "--patient", "Ana Lima", "--only-patient", "Z-1", "--out", mk()], { env });
    expect(none.code).toBe(3);
    expect(none.stderr).toMatch(/No patient/);
  });

  it("the same person with IDs from two hospitals (same name and birth date) is one patient with two IDs", async () => {
    const input = mk({
      "a.dcm": img({ ...ANA, patientId: "HOSP1-17" }),
      "b.dcm": img({ ...ANA, patientName: "LIMA^ANA", patientId: "HOSP2-555", studyInstanceUid: "1.2.826.0.1.3680043.9.7433.12.10" }),
    });
    const r = await runCli(["pack", input, "--patient", "Ana Lima", "--out", mk(), "--json"], { env });
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.dicom.patients).toHaveLength(1);
    expect(res.dicom.patients[0].ids).toEqual(["HOSP1-17", "HOSP2-555"]);
    // Different birth date: two patients, refused.
    const other = mk({ "a.dcm": img({ ...ANA, patientId: "HOSP1-17" }), "b.dcm": img({ ...ANA, patientId: "HOSP2-555", patientBirthDate: "19910101" }) });
    expect((await runCli(["pack", other, "--patient", "Ana Lima", "--out", mk()], { env })).code).toBe(3);
    expect(existsSync(join(other, "Ana Lima.zip"))).toBe(false);
  });
});
