import { mkdtemp, open, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeDicomTree, type TreePatient } from "../../fixtures/dicom-builder.js";
import { checkPatient, type DicomEntry } from "../../src/dicom/identity.js";
import { readDicomHeader } from "../../src/dicom/read.js";
import { SNIFF_BYTES, sniffDicom } from "../../src/dicom/sniff.js";
import { formatStudyLine, summarizeDicom } from "../../src/dicom/summary.js";
import { detectViewer } from "../../src/dicom/viewer.js";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "scanbridge-tree-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (d.isFile()) out.push(relative(dir, join(d.parentPath, d.name)));
  }
  return out.sort();
}

/** What pack will do: sniff every file, read the headers of those that look like DICOM. */
async function inspect(dir: string): Promise<{ files: string[]; entries: DicomEntry[] }> {
  const files = await listFiles(dir);
  const entries: DicomEntry[] = [];
  for (const f of files) {
    const fh = await open(join(dir, f), "r");
    const head = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await fh.read(head, 0, SNIFF_BYTES, 0);
    await fh.close();
    if (sniffDicom(head.subarray(0, bytesRead))) entries.push({ path: f, header: await readDicomHeader(join(dir, f)) });
  }
  return { files, entries };
}

const YAMADA: TreePatient = {
  name: "Yamada^Tarou=山田^太郎=やまだ^たろう",
  charset: "\\ISO 2022 IR 87",
  id: "JP-1",
  birthDate: "19700101",
  sex: "M",
  studies: [
    { description: "CT CHEST", date: "20250302", modality: "CT", series: 3, imagesPerSeries: 4 },
    { description: "MR BRAIN", date: "20250411", modality: "MR", series: 2, imagesPerSeries: 3 },
  ],
};

describe("a viewer CD end to end", () => {
  it("one patient: the guard passes, the viewer is found, the studies are summarised", async () => {
    const dir = join(root, "cd-one");
    await writeDicomTree(dir, { patients: [YAMADA], viewer: "RadiAnt" });
    const { files, entries } = await inspect(dir);
    expect(entries).toHaveLength(12 + 6 + 1);
    expect(entries.filter((e) => e.header.isDicomdir).map((e) => e.path)).toEqual(["DICOMDIR"]);
    const viewer = detectViewer(files);
    expect(viewer.name).toBe("RadiAnt");
    expect(viewer.viewerPaths.sort()).toEqual(["RadiAnt/RadiAntViewer.dll", "RadiAnt/RadiAntViewer.exe", "RadiAnt/lang/en.lng", "autorun.inf"]);
    expect(checkPatient("Tarou Yamada", entries)).toMatchObject({ ok: true });
    expect(checkPatient("山田 太郎", entries)).toMatchObject({ ok: true });
    expect(checkPatient("Hanako Yamada", entries)).toMatchObject({ ok: false, reason: "name-mismatch" });
    const summary = summarizeDicom(entries);
    expect(summary.patients).toEqual([{ name: { alphabetic: "Yamada^Tarou", ideographic: "山田^太郎", phonetic: "やまだ^たろう" }, id: "JP-1", birthDate: "19700101", sex: "M", files: 18 }]);
    expect(formatStudyLine(summary.studies)).toBe("2 studies · CT CHEST 2025-03-02 (3 series, 12 images) · MR BRAIN 2025-04-11 (2 series, 6 images)");
  });

  it("two patients mixed in one folder: the guard refuses and says which files are whose", async () => {
    const dir = join(root, "mixed");
    await writeDicomTree(dir, {
      layout: "flat",
      patients: [
        { name: "Álvarez Núñez^José", id: "ES-7", birthDate: "19800214", studies: [{ description: "CT ABDOMEN", date: "20250101", series: 1, imagesPerSeries: 2 }] },
        { name: "Alvarez^Maria", id: "ES-8", birthDate: "19820505", studies: [{ description: "CT ABDOMEN", date: "20250101", series: 1, imagesPerSeries: 1 }] },
      ],
    });
    const { entries } = await inspect(dir);
    const r = checkPatient("José Álvarez", entries);
    expect(r.ok).toBe(false);
    expect(r.reason).toBe("multiple-patients");
    expect(r.groups.map((g) => [g.patient.id, g.paths])).toEqual([
      ["ES-7", ["IMG00001.dcm", "IMG00002.dcm"]],
      ["ES-8", ["IMG00003.dcm"]],
    ]);
    expect(detectViewer(await listFiles(dir)).found).toBe(false);
  });
});
