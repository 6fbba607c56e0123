import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDicom, buildDicomdir, TransferSyntax } from "../../fixtures/dicom-builder.js";
import { readDicomHeader } from "../../src/dicom/read.js";
import { formatDicomDate, formatStudyLine, summarizeDicom } from "../../src/dicom/summary.js";
import type { DicomEntry } from "../../src/dicom/identity.js";
import type { DicomHeader } from "../../src/dicom/types.js";

function entry(path: string, h: Partial<DicomHeader>): DicomEntry {
  return { path, header: { isDicomdir: false, bytesRead: 1, ...h } };
}

describe("summarizeDicom", () => {
  it("counts studies, series and images per study, ordered by date, without the DICOMDIR", () => {
    const entries: DicomEntry[] = [];
    for (let s = 0; s < 3; s++)
      for (let i = 0; i < 4; i++)
        entries.push(entry(`ct/${s}/${i}`, { patientId: "P1", studyInstanceUid: "1.1", studyDate: "20250302", studyDescription: "CT CHEST", modality: "CT", seriesInstanceUid: `1.1.${s}`, sopInstanceUid: `1.1.${s}.${i}` }));
    for (let i = 0; i < 5; i++)
      entries.push(entry(`mr/${i}`, { patientId: "P1", studyInstanceUid: "2.2", studyDate: "20250411", studyDescription: "BRAIN", modality: i === 4 ? "SR" : "MR", seriesInstanceUid: `2.2.${i % 2}`, sopInstanceUid: `2.2.${i}` }));
    // The same image copied twice counts once.
    entries.push(entry("mr/copy-of-0", { patientId: "P1", studyInstanceUid: "2.2", modality: "MR", seriesInstanceUid: "2.2.0", sopInstanceUid: "2.2.0" }));
    entries.push(entry("DICOMDIR", { isDicomdir: true, studyInstanceUid: "9.9" }));
    const summary = summarizeDicom(entries.reverse());
    expect(summary.patients).toEqual([{ id: "P1", files: 18 }]);
    expect(summary.studies).toEqual([
      { studyInstanceUid: "1.1", date: "2025-03-02", description: "CT CHEST", modalities: ["CT"], series: 3, images: 12 },
      { studyInstanceUid: "2.2", date: "2025-04-11", description: "BRAIN", modalities: ["MR", "SR"], series: 2, images: 5 },
    ]);
    expect(formatStudyLine(summary.studies)).toBe("2 studies · CT CHEST 2025-03-02 (3 series, 12 images) · MR BRAIN 2025-04-11 (2 series, 5 images)");
  });

  it("formats one study, missing dates and descriptions", () => {
    expect(formatStudyLine([{ studyInstanceUid: "1", modalities: ["US"], series: 1, images: 1 }])).toBe("1 study · US (1 series, 1 image)");
    expect(formatStudyLine([])).toBe("no DICOM studies");
    expect(formatStudyLine([{ studyInstanceUid: "1", description: "Thorax", modalities: ["CR", "DX"], date: "2024-01-02", series: 2, images: 2 }])).toBe(
      "1 study · CR/DX Thorax 2024-01-02 (2 series, 2 images)",
    );
  });

  it("formats DICOM dates", () => {
    expect(formatDicomDate("20250302")).toBe("2025-03-02");
    expect(formatDicomDate("2025.03.02")).toBe("2025-03-02");
    expect(formatDicomDate("")).toBeUndefined();
    expect(formatDicomDate(undefined)).toBeUndefined();
  });
});

describe("summary from real files", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "scanbridge-summary-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads a CD tree with a DICOMDIR and two patients, and reports both", async () => {
    const files: Array<[string, Parameters<typeof buildDicom>[0]]> = [];
    for (let i = 1; i <= 3; i++)
      files.push([`IM${i}`, { patientName: "Yamada^Tarou=山田^太郎=やまだ^たろう", specificCharacterSet: "\\ISO 2022 IR 87", patientId: "JP1", patientBirthDate: "19700101", studyInstanceUid: "1.5", seriesInstanceUid: "1.5.1", sopInstanceUid: `1.5.1.${i}`, modality: "CT", studyDate: "20250302", studyDescription: "CT CHEST", transferSyntax: TransferSyntax.implicitLE, preamble: false }]);
    files.push(["IM9", { patientName: "Suzuki^Ichiro", patientId: "JP2", studyInstanceUid: "7.7", seriesInstanceUid: "7.7.1", sopInstanceUid: "7.7.1.1", modality: "MR" }]);
    const entries: DicomEntry[] = [];
    for (const [name, opts] of files) {
      await writeFile(join(dir, name), buildDicom(opts));
      entries.push({ path: name, header: await readDicomHeader(join(dir, name)) });
    }
    await writeFile(join(dir, "DICOMDIR"), buildDicomdir([{ path: "IM1", patientId: "JP1", studyInstanceUid: "1.5", seriesInstanceUid: "1.5.1", sopInstanceUid: "1.5.1.1" }]));
    entries.push({ path: "DICOMDIR", header: await readDicomHeader(join(dir, "DICOMDIR")) });
    const s = summarizeDicom(entries);
    expect(s.patients).toHaveLength(2);
    expect(s.patients[0]).toEqual({ id: "JP1", birthDate: "19700101", files: 3, name: { alphabetic: "Yamada^Tarou", ideographic: "山田^太郎", phonetic: "やまだ^たろう" } });
    expect(s.studies.map((x) => [x.studyInstanceUid, x.series, x.images])).toEqual([["1.5", 1, 3], ["7.7", 1, 1]]);
  });
});
