import { describe, expect, it } from "vitest";
import { classifyFile } from "../../src/pack/classify.js";

const empty = Buffer.alloc(0);
const part10 = Buffer.concat([Buffer.alloc(128), Buffer.from("DICM"), Buffer.from([2, 0, 0, 0, 0x55, 0x4c, 4, 0])]);
const rawDataset = Buffer.from([0x08, 0x00, 0x05, 0x00, 0x43, 0x53, 0x0a, 0x00]); // (0008,0005) CS, explicit VR LE
const mz = Buffer.from("MZ\x90\x00", "latin1");
const zipMagic = Buffer.from([0x50, 0x4b, 0x03, 0x04]);

describe("classifyFile", () => {
  it("recognises DICOM by content, with or without preamble or extension", () => {
    expect(classifyFile("DICOM/PA0/ST0/SE0/IM0", part10)).toEqual({ action: "include", kind: "dicom" });
    expect(classifyFile("IM00001", rawDataset)).toEqual({ action: "include", kind: "dicom" });
    expect(classifyFile("DICOMDIR", part10)).toEqual({ action: "include", kind: "dicomdir" });
    expect(classifyFile("scan.dcm", Buffer.from("not dicom at all"))).toEqual({ action: "include", kind: "dicom-unreadable" });
  });
  it("leaves out OS junk silently", () => {
    for (const n of [".DS_Store", "Thumbs.db", "desktop.ini", "._IM0001"]) expect(classifyFile(n, empty)).toEqual({ action: "exclude", reason: "os-junk" });
  });
  it("leaves out executables by extension and by magic number", () => {
    for (const n of ["viewer.exe", "lib/x.dll", "run.bat", "autorun.inf", "AUTORUN.INF", "start.sh"]) {
      expect(classifyFile(n, empty)).toEqual({ action: "exclude", reason: "executable" });
    }
    expect(classifyFile("VIEWER", mz)).toEqual({ action: "exclude", reason: "executable" });
  });
  it("refuses nested archives by extension or magic, but not office documents", () => {
    for (const n of ["old.zip", "scans.rar", "x.7z", "a.tar.gz"]) expect(classifyFile(n, empty)).toEqual({ action: "refuse", reason: "archive" });
    expect(classifyFile("NOEXT", zipMagic)).toEqual({ action: "refuse", reason: "archive" });
    expect(classifyFile("report.docx", zipMagic)).toEqual({ action: "include", kind: "document" });
  });
  it("classifies documents and images", () => {
    expect(classifyFile("report.PDF", Buffer.from("%PDF-1.7"))).toEqual({ action: "include", kind: "document" });
    expect(classifyFile("photo.jpg", empty)).toEqual({ action: "include", kind: "image" });
    expect(classifyFile("notes.weird", Buffer.from("hello"))).toEqual({ action: "include", kind: "other" });
  });
});
