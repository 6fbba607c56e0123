/*
 * Cross-check with an independent reader: DCMTK's dcmdump must accept what the fixture builder writes, and what
 * readDicomHeader parses must equal what dcmdump prints. Skipped only when dcmdump is not installed.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CHARSET_SAMPLES,
  TransferSyntax,
  buildDicom,
  buildDicomdir,
  buildTruncatedDicom,
  encodeDicomText,
  type DicomBuildOptions,
} from "../../fixtures/dicom-builder.js";
import { readDicomHeader } from "../../src/dicom/read.js";
import type { PersonName } from "../../src/dicom/types.js";

const hasDcmdump = spawnSync("dcmdump", ["--version"]).status === 0;
const hasPython = spawnSync("python3", ["--version"]).status === 0;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "scanbridge-dcmdump-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Run dcmdump and return its exit status and the values it printed, by tag "gggg,eeee". */
function dcmdump(path: string, args: string[] = []): { status: number; values: Map<string, string>; stderr: string } {
  const r = spawnSync("dcmdump", [...args, path], { encoding: "utf8" });
  const values = new Map<string, string>();
  for (const line of r.stdout.split("\n")) {
    const m = /^\((\w{4}),(\w{4})\) \w\w \[(.*?)\]\s+#/.exec(line) ?? /^\((\w{4}),(\w{4})\) \w\w =?(\S+)\s+#/.exec(line);
    if (m && !values.has(`${m[1]},${m[2]}`)) values.set(`${m[1]},${m[2]}`, m[3]!);
  }
  return { status: r.status ?? -1, values, stderr: r.stderr };
}

function joinName(n: PersonName | undefined): string {
  if (!n) return "";
  const groups = [n.alphabetic, n.ideographic ?? "", n.phonetic ?? ""];
  while (groups.length > 1 && groups[groups.length - 1] === "") groups.pop();
  return groups.join("=");
}

const BASE: DicomBuildOptions = {
  specificCharacterSet: "ISO_IR 100",
  patientName: "Núñez^Zoë",
  patientId: "XC-77",
  modality: "MR",
  studyInstanceUid: "1.2.826.0.1.3680043.9.7433.2.9",
  seriesInstanceUid: "1.2.826.0.1.3680043.9.7433.2.9.1",
  sopInstanceUid: "1.2.826.0.1.3680043.9.7433.2.9.1.1",
  studyDate: "20250411",
  pixelDataBytes: 512,
};

describe.skipIf(!hasDcmdump)("cross-check with dcmdump", () => {
  const layouts: Array<[string, DicomBuildOptions]> = [
    ["Part 10, implicit VR LE", { transferSyntax: TransferSyntax.implicitLE }],
    ["Part 10, explicit VR LE", { transferSyntax: TransferSyntax.explicitLE }],
    ["Part 10, explicit VR BE", { transferSyntax: TransferSyntax.explicitBE }],
    ["Part 10, deflated", { transferSyntax: TransferSyntax.deflatedLE }],
    ["Part 10, JPEG baseline", { transferSyntax: TransferSyntax.jpegBaseline }],
    ["raw data set, implicit VR LE", { transferSyntax: TransferSyntax.implicitLE, preamble: false }],
    ["raw data set, explicit VR LE", { transferSyntax: TransferSyntax.explicitLE, preamble: false }],
  ];

  it.each(layouts)("%s: dcmdump accepts the file and agrees on PatientID, Modality, StudyInstanceUID, PatientName", async (label, layout) => {
    const path = join(dir, label.replace(/\W+/g, "_"));
    await writeFile(path, buildDicom({ ...BASE, ...layout }));
    const dump = dcmdump(path, ["+U8"]);
    expect(dump.stderr).toBe("");
    expect(dump.status).toBe(0);
    const h = await readDicomHeader(path);
    expect(h.patientId).toBe(dump.values.get("0010,0020"));
    expect(h.modality).toBe(dump.values.get("0008,0060"));
    expect(h.studyInstanceUid).toBe(dump.values.get("0020,000d"));
    expect(h.seriesInstanceUid).toBe(dump.values.get("0020,000e"));
    expect(h.studyDate).toBe(dump.values.get("0008,0020"));
    expect(joinName(h.patientName)).toBe(dump.values.get("0010,0010"));
    expect(joinName(h.patientName)).toBe("Núñez^Zoë");
  });

  // DCMTK on Debian converts with glibc iconv, which has no ISO 2022 IR 87 / IR 159: those are checked with Python below.
  const viaDcmdump = CHARSET_SAMPLES.filter((s) => !/IR (87|159)/.test(s.charset));
  it.each(viaDcmdump.map((s) => [s.charset, s] as const))("%s: our Person Name equals dcmdump +U8", async (charset, s) => {
    const path = join(dir, `cs-${charset.replace(/\W+/g, "_")}`);
    await writeFile(path, buildDicom({ ...BASE, specificCharacterSet: charset, patientName: s.name }));
    const dump = dcmdump(path, ["+U8"]);
    expect(dump.stderr).toBe("");
    const h = await readDicomHeader(path);
    expect(joinName(h.patientName)).toBe(dump.values.get("0010,0010")?.replace(/=+$/, ""));
    expect(h.patientName).toEqual(s.expected);
  });

  it("dcmdump accepts a DICOMDIR written by the builder", async () => {
    const path = join(dir, "DICOMDIR");
    await writeFile(
      path,
      buildDicomdir([
        { path: "DICOM/IM0001", patientId: "P1", patientName: "DOE^JANE", studyInstanceUid: "1.2.3", seriesInstanceUid: "1.2.3.1", sopInstanceUid: "1.2.3.1.1", modality: "CT" },
        { path: "DICOM/IM0002", patientId: "P1", patientName: "DOE^JANE", studyInstanceUid: "1.2.3", seriesInstanceUid: "1.2.3.1", sopInstanceUid: "1.2.3.1.2", modality: "CT" },
      ]),
    );
    const dump = spawnSync("dcmdump", [path], { encoding: "utf8" });
    expect(dump.status).toBe(0);
    expect(dump.stderr).toBe("");
    expect(dump.stdout).toContain("MediaStorageDirectoryStorage");
    expect(dump.stdout).toContain("DICOM\\IM0002");
    expect((await readDicomHeader(path)).isDicomdir).toBe(true);
  });

  it("dcmdump also rejects the truncated fixture", async () => {
    const path = join(dir, "truncated");
    await writeFile(path, buildTruncatedDicom(BASE, "header"));
    const dump = spawnSync("dcmdump", [path], { encoding: "utf8" });
    expect(dump.status).not.toBe(0);
    await expect(readDicomHeader(path)).rejects.toMatchObject({ code: "DICOM_TRUNCATED" });
  });
});

describe.skipIf(!hasPython)("cross-check Japanese ISO 2022 with Python's iso2022_jp_2 codec", () => {
  const japanese = CHARSET_SAMPLES.filter((s) => /^\\ISO 2022 IR 87/.test(s.charset));
  it.each(japanese.map((s) => [s.charset, s] as const))("%s: Python decodes the fixture bytes as we do", async (charset, s) => {
    const encoded = encodeDicomText(s.name, charset);
    const py = execFileSync("python3", ["-c", "import sys; sys.stdout.write(sys.stdin.buffer.read().decode('iso2022_jp_2'))"], { input: encoded, encoding: "utf8" });
    expect(py).toBe(s.name);
    const path = join(dir, `jp-${charset.replace(/\W+/g, "_")}`);
    await writeFile(path, buildDicom({ ...BASE, specificCharacterSet: charset, patientName: s.name }));
    expect(joinName((await readDicomHeader(path)).patientName)).toBe(py);
  });
});
