import { describe, expect, it } from "vitest";
import { planPackage } from "../../src/pack/plan.js";
import type { ScanResult, ScannedFile } from "../../src/pack/scan.js";

const file = (input: number, relPath: string, kind: ScannedFile["kind"] = "other"): ScannedFile => ({
  absPath: `/in${input}/${relPath}`, input, relPath, size: 1, mtimeMs: 0, kind, dir: relPath.split("/").slice(0, -1).join("/"),
});
const scan = (inputs: Array<{ real: string; isDirectory: boolean }>, files: ScannedFile[]): ScanResult => ({
  inputs: inputs.map((i) => ({ ...i, given: i.real })), files, excluded: [], archives: [], unreadable: [],
});

describe("planPackage", () => {
  it("puts one folder input's content directly in the root and sorts entries", () => {
    const p = planPackage(scan([{ real: "/media/cd", isDirectory: true }], [file(0, "DICOM/IM2", "dicom"), file(0, "DICOMDIR", "dicomdir"), file(0, "DICOM/IM1", "dicom")]), { root: "R", ascii: false });
    expect(p.entries.map((e) => e.path)).toEqual(["DICOM/IM1", "DICOM/IM2", "DICOMDIR"]);
  });
  it("gives several folder inputs their own sub-folders, de-duplicating their names", () => {
    const p = planPackage(scan([{ real: "/a/scans", isDirectory: true }, { real: "/b/scans", isDirectory: true }, { real: "/c/letter.pdf", isDirectory: false }], [file(0, "x"), file(1, "x"), file(2, "letter.pdf", "document")]), { root: "R", ascii: false });
    expect(p.entries.map((e) => e.path).sort()).toEqual(["letter.pdf", "scans (2)/x", "scans/x"]);
  });
  it("renames names that collide case-insensitively and never shadows manifest.json", () => {
    const p = planPackage(scan([{ real: "/a", isDirectory: true }], [file(0, "Report.pdf", "document"), file(0, "report.PDF", "document"), file(0, "manifest.json", "document")]), { root: "R", ascii: false });
    const paths = p.entries.map((e) => e.path);
    expect(new Set(paths.map((x) => x.toLowerCase())).size).toBe(3);
    expect(paths).not.toContain("manifest.json");
    expect(paths).toContain("manifest (2).json");
  });
  it("keeps files of case-colliding folders together under one spelling", () => {
    const p = planPackage(scan([{ real: "/a", isDirectory: true }], [file(0, "DICOM/a"), file(0, "dicom/b")]), { root: "R", ascii: false });
    expect(p.entries.map((e) => e.path)).toEqual(["DICOM/a", "DICOM/b"]);
  });
  it("sanitizes and transliterates entry names with --ascii-names", () => {
    const p = planPackage(scan([{ real: "/a", isDirectory: true }], [file(0, "Informes/Informe médico:1.pdf", "document")]), { root: "R", ascii: true });
    expect(p.entries[0]!.path).toBe("Informes/Informe medico 1.pdf");
    expect(p.entries[0]!.store).toBe(true);
  });
});
