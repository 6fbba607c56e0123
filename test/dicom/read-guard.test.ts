/*
 * Issue 12: the header is read whatever follows it. Compressed pixel data with trailing padding, pixel data cut
 * mid-fragment, big endian without meta, DICOM with MZ/PK preambles, and a megabyte of padding in one value.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TransferSyntax, buildDicom, buildTruncatedDicom, type DicomBuildOptions } from "../../fixtures/dicom-builder.js";
import { maxValueBytes, trimValue } from "../../src/dicom/charset.js";
import { readDicomHeader } from "../../src/dicom/read.js";
import { hasDicomMagic, sniffDicom } from "../../src/dicom/sniff.js";
import { classifyFile } from "../../src/pack/classify.js";
// verify and watch classify content with the same table as pack (issue 11): what verify refuses is what this says.
const sniffDangerousContent = (head: Buffer): "archive" | "executable" | undefined => {
  const c = classifyFile("NOEXT", head);
  return c.action === "refuse" ? "archive" : c.action === "exclude" && c.reason === "executable" ? "executable" : undefined;
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "scanbridge-read-guard-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const BASE: DicomBuildOptions = {
  patientName: "Lima^Ana",
  patientId: "A-17",
  patientBirthDate: "19900101",
  studyInstanceUid: "1.2.826.0.1.3680043.9.7433.12.1",
  seriesInstanceUid: "1.2.826.0.1.3680043.9.7433.12.1.1",
  sopInstanceUid: "1.2.826.0.1.3680043.9.7433.12.1.1.1",
  modality: "MR",
  pixelDataBytes: 4096,
};

async function put(name: string, data: Buffer): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, data);
  return path;
}

const hasDcmdump = spawnSync("dcmdump", ["--version"]).status === 0;

describe("compressed pixel data followed by trailing padding (FFFC,FFFC)", () => {
  for (const [label, ts] of [["RLE", TransferSyntax.rle], ["JPEG 2000", TransferSyntax.jpeg2000Lossless], ["JPEG-LS", TransferSyntax.jpegLsLossless], ["JPEG baseline", TransferSyntax.jpegBaseline]] as const) {
    it(`${label}: the header is read and the file is whole`, async () => {
      const path = await put(`pad-${ts}.dcm`, buildDicom({ ...BASE, transferSyntax: ts, fragments: 3, trailingPadding: 64 }));
      const h = await readDicomHeader(path);
      expect(h.patientName?.alphabetic).toBe("Lima^Ana");
      expect(h.patientId).toBe("A-17");
      expect(h.truncated).toBeUndefined();
      if (hasDcmdump) expect(execFileSync("dcmdump", ["+P", "0010,0020", path]).toString()).toMatch(/A-17/);
    });
  }

  it("a file cut mid-fragment is truncated, but with tolerateTruncation its patient is still read", async () => {
    const path = await put("cut-rle.dcm", buildTruncatedDicom({ ...BASE, transferSyntax: TransferSyntax.rle }, "pixel-data"));
    await expect(readDicomHeader(path)).rejects.toMatchObject({ code: "DICOM_TRUNCATED" });
    const h = await readDicomHeader(path, { tolerateTruncation: true });
    expect(h.truncated).toBe("encapsulated pixel data");
    expect(h.patientId).toBe("A-17");
  });

  it("native pixel data cut short: header read, truncated reported", async () => {
    const path = await put("cut-native.dcm", buildTruncatedDicom(BASE, "pixel-data"));
    const h = await readDicomHeader(path, { tolerateTruncation: true });
    expect(h.truncated).toBe("pixel data");
    expect(h.patientName?.alphabetic).toBe("Lima^Ana");
  });

  it("cut before the patient module: unreadable even when tolerating", async () => {
    const full = buildDicom(BASE);
    const path = await put("cut-early.dcm", full.subarray(0, 132 + 40));
    await expect(readDicomHeader(path, { tolerateTruncation: true })).rejects.toMatchObject({ code: "DICOM_TRUNCATED" });
  });
});

describe("files without meta and with unusual preambles", () => {
  it("explicit VR big endian without preamble or meta is sniffed as DICOM and read", async () => {
    const data = buildDicom({ ...BASE, transferSyntax: TransferSyntax.explicitBE, preamble: false, meta: false });
    expect(sniffDicom(data.subarray(0, 132))).toBe(true);
    const h = await readDicomHeader(await put("ExplVR_BigEndNoMeta.dcm", data));
    expect(h.patientId).toBe("A-17");
  });

  it("implicit VR without meta is read", async () => {
    const data = buildDicom({ ...BASE, transferSyntax: TransferSyntax.implicitLE, preamble: false, meta: false });
    const h = await readDicomHeader(await put("no_meta.dcm", data));
    expect(h.patientName?.alphabetic).toBe("Lima^Ana");
  });

  for (const start of ["MZ", "PK\x03\x04"]) {
    it(`a preamble starting with ${JSON.stringify(start)}: DICOM for pack's table and for verify's content sniffing`, async () => {
      const data = buildDicom({ ...BASE, preambleStart: start });
      const head = data.subarray(0, 132);
      expect(hasDicomMagic(head)).toBe(true);
      expect(classifyFile("IM0001", head)).toEqual({ action: "include", kind: "dicom" });
      expect(sniffDangerousContent(head)).toBeUndefined();
      expect((await readDicomHeader(await put(`pre-${start.length}.dcm`, data))).patientId).toBe("A-17");
    });
  }

  it("a PE/DICOM polyglot (MZ whose e_lfanew leads to a PE header) is still a program on both sides", () => {
    const pre = Buffer.alloc(132);
    pre.write("MZ", 0, "latin1");
    pre.writeUInt32LE(0x40, 0x3c);
    pre.writeUInt32BE(0x50450000, 0x40);
    pre.write("DICM", 128, "latin1");
    expect(sniffDangerousContent(pre)).toBe("executable");
    expect(classifyFile("IM0001", pre)).toEqual({ action: "exclude", reason: "executable" });
  });

  it("a real program or zip without the DICOM magic is still caught", () => {
    expect(sniffDangerousContent(Buffer.concat([Buffer.from("MZ"), Buffer.alloc(200)]))).toBe("executable");
    expect(sniffDangerousContent(Buffer.concat([Buffer.from("PK\x03\x04"), Buffer.alloc(200)]))).toBe("archive");
  });
});

describe("linear-time value handling (issue 10)", () => {
  it("a value of 'A' + 1,000,000 spaces + 'B' in a 2 MB implicit VR file is capped and trimmed without a pathological regex", async () => {
    const huge = "A" + " ".repeat(1_000_000) + "B";
    const data = buildDicom({ ...BASE, transferSyntax: TransferSyntax.implicitLE, patientId: huge, studyDescription: huge, pixelDataBytes: 1_000_000 });
    expect(data.length).toBeGreaterThan(2_000_000);
    const h = await readDicomHeader(await put("huge-value.dcm", data));
    // Capped at the VR's maximum (LO: 64 characters) before trimming: the "B" a megabyte later is never looked at.
    expect(h.patientId).toBe("A");
    expect(h.studyDescription).toBe("A");
    expect(h.patientName?.alphabetic).toBe("Lima^Ana");
  });

  it("trimValue removes padding with a loop, keeping leading spaces of ST/LT/UT", () => {
    expect(trimValue("  ABC \0\0", "LO")).toBe("ABC");
    expect(trimValue("  text  ", "LT")).toBe("  text");
    expect(trimValue("A" + " ".repeat(100_000) + "B", "LO")).toBe("A" + " ".repeat(100_000) + "B");
    expect(trimValue("\u3000山田\u3000", "PN")).toBe("山田");
    expect(maxValueBytes("LO")).toBe(256);
    expect(maxValueBytes("PN")).toBe(776);
  });
});
