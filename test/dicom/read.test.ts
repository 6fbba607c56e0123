import { spawnSync } from "node:child_process";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  TransferSyntax,
  buildDicom,
  buildDicomdir,
  buildTruncatedDicom,
  encodeUndefinedLengthItems,
  writeDicom,
  type DicomBuildOptions,
} from "../../fixtures/dicom-builder.js";
import { DicomReadError, readDicomHeader } from "../../src/dicom/read.js";
import { InputError } from "../../src/errors.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "scanbridge-dicom-read-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const BASE: DicomBuildOptions = {
  specificCharacterSet: "ISO_IR 100",
  patientName: "Álvarez Núñez^José",
  patientId: "PID-0001",
  patientBirthDate: "19800214",
  patientSex: "M",
  studyInstanceUid: "1.2.826.0.1.3680043.9.7433.1.1",
  seriesInstanceUid: "1.2.826.0.1.3680043.9.7433.1.1.1",
  sopInstanceUid: "1.2.826.0.1.3680043.9.7433.1.1.1.1",
  studyDate: "20250302",
  studyDescription: "CT CHEST",
  seriesDescription: "Axial 1.25 mm",
  modality: "CT",
  instanceNumber: 7,
  seriesNumber: 3,
  accessionNumber: "ACC123",
  institutionName: "Hôpital Synthétique",
  pixelDataBytes: 2048,
};

async function roundTrip(name: string, opts: DicomBuildOptions) {
  const path = join(dir, name);
  await writeFile(path, buildDicom(opts));
  return readDicomHeader(path);
}

function expectBaseFields(h: Awaited<ReturnType<typeof readDicomHeader>>): void {
  expect(h.isDicomdir).toBe(false);
  expect(h.patientName).toEqual({ alphabetic: "Álvarez Núñez^José" });
  expect(h.patientId).toBe("PID-0001");
  expect(h.patientBirthDate).toBe("19800214");
  expect(h.patientSex).toBe("M");
  expect(h.studyInstanceUid).toBe(BASE.studyInstanceUid);
  expect(h.seriesInstanceUid).toBe(BASE.seriesInstanceUid);
  expect(h.sopInstanceUid).toBe(BASE.sopInstanceUid);
  expect(h.studyDate).toBe("20250302");
  expect(h.studyDescription).toBe("CT CHEST");
  expect(h.seriesDescription).toBe("Axial 1.25 mm");
  expect(h.modality).toBe("CT");
  expect(h.instanceNumber).toBe("7");
  expect(h.seriesNumber).toBe("3");
  expect(h.accessionNumber).toBe("ACC123");
  expect(h.institutionName).toBe("Hôpital Synthétique");
  expect(h.specificCharacterSet).toEqual(["ISO_IR 100"]);
}

describe("readDicomHeader: transfer syntaxes and layouts", () => {
  const syntaxes = [
    ["implicit VR little endian", TransferSyntax.implicitLE],
    ["explicit VR little endian", TransferSyntax.explicitLE],
    ["explicit VR big endian", TransferSyntax.explicitBE],
    ["deflated explicit VR little endian", TransferSyntax.deflatedLE],
    ["JPEG baseline (encapsulated)", TransferSyntax.jpegBaseline],
  ] as const;

  it.each(syntaxes)("reads a Part 10 file in %s", async (_label, ts) => {
    const h = await roundTrip(`p10-${ts}`, { ...BASE, transferSyntax: ts });
    expectBaseFields(h);
    expect(h.transferSyntaxUid).toBe(ts);
    expect(h.sopClassUid).toBe("1.2.840.10008.5.1.4.1.1.2");
  });

  it.each(syntaxes)("reads File Meta Information without the preamble in %s", async (_label, ts) => {
    const h = await roundTrip(`nopre-${ts}`, { ...BASE, transferSyntax: ts, preamble: false, meta: true });
    expectBaseFields(h);
    expect(h.transferSyntaxUid).toBe(ts);
  });

  it.each([
    ["implicit VR little endian", TransferSyntax.implicitLE],
    ["explicit VR little endian", TransferSyntax.explicitLE],
    ["explicit VR big endian", TransferSyntax.explicitBE],
  ] as const)("reads a raw data set without preamble or meta (old CDs) in %s, file without extension", async (_label, ts) => {
    const h = await roundTrip(`IM${ts.replace(/\./g, "")}`, { ...BASE, transferSyntax: ts, preamble: false, meta: false });
    expectBaseFields(h);
    expect(h.transferSyntaxUid).toBe(ts);
  });

  it("reads files whose File Meta Information names the wrong VR encoding", async () => {
    const a = join(dir, "mislabel-a");
    await writeFile(a, buildDicom({ ...BASE, transferSyntax: TransferSyntax.implicitLE, labelledTransferSyntax: TransferSyntax.explicitLE }));
    expectBaseFields(await readDicomHeader(a));
    const b = join(dir, "mislabel-b");
    await writeFile(b, buildDicom({ ...BASE, transferSyntax: TransferSyntax.explicitLE, labelledTransferSyntax: TransferSyntax.implicitLE }));
    const hb = await readDicomHeader(b);
    expectBaseFields(hb);
    // The label is reported as written; the data was read by what the bytes are.
    expect(hb.transferSyntaxUid).toBe(TransferSyntax.implicitLE);
  });

  it("reads a header larger than the first 16 KiB chunk by reading more", async () => {
    const big = { tag: 0x00191010, vr: "OB", value: Buffer.alloc(100_000, 7) };
    const path = join(dir, "big-private");
    await writeFile(path, buildDicom({ ...BASE, extraElements: [big] }));
    const h = await readDicomHeader(path);
    expect(h.patientId).toBe("PID-0001");
    expect(h.instanceNumber).toBe("7");
    expect(h.bytesRead).toBeGreaterThan(100_000);
    expect(h.bytesRead).toBeLessThanOrEqual((await stat(path)).size);
  });

  it.each([
    ["implicit VR LE", TransferSyntax.implicitLE],
    ["explicit VR LE", TransferSyntax.explicitLE],
    ["explicit VR BE", TransferSyntax.explicitBE],
  ] as const)("reads past an undefined-length sequence that straddles the first chunk (%s)", async (_l, ts) => {
    const items = Array.from({ length: 400 }, (_, i) => ({ classUid: "1.2.840.10008.5.1.4.1.1.2", instanceUid: `1.2.826.0.1.3680043.9.7433.8.${i}` }));
    const seq = { tag: 0x00081140, vr: "SQ", value: encodeUndefinedLengthItems(items, ts), undefinedLength: true };
    expect(seq.value.length).toBeGreaterThan(20_000);
    const path = join(dir, `undef-seq-${ts}`);
    await writeFile(path, buildDicom({ ...BASE, transferSyntax: ts, extraElements: [seq] }));
    if (spawnSync("dcmdump", ["--version"]).status === 0) expect(spawnSync("dcmdump", [path]).status).toBe(0);
    const h = await readDicomHeader(path);
    expectBaseFields(h);
    expect(h.bytesRead).toBeGreaterThan(16 * 1024);
  });

  it("does not read a large element after group 0020 (an encapsulated document before the pixel data)", async () => {
    const pdf = { tag: 0x00420011, vr: "OB", value: Buffer.alloc(3_000_000, 1) };
    const path = join(dir, "encapsulated-pdf");
    await writeFile(path, buildDicom({ ...BASE, pixelDataBytes: undefined, extraElements: [pdf] }));
    const h = await readDicomHeader(path);
    expect(h.patientId).toBe("PID-0001");
    expect(h.bytesRead).toBeLessThan(64 * 1024);
  });

  it("gives up with DICOM_UNREADABLE when the header exceeds maxBytes", async () => {
    const big = { tag: 0x00191010, vr: "OB", value: Buffer.alloc(100_000, 7) };
    const path = join(dir, "big-private-capped");
    await writeFile(path, buildDicom({ ...BASE, extraElements: [big] }));
    await expect(readDicomHeader(path, { maxBytes: 32 * 1024 })).rejects.toMatchObject({ code: "DICOM_UNREADABLE" });
  });
});

describe("readDicomHeader: text in ISO 2022 character sets", () => {
  it("decodes LO values (study, series description, institution) with code extensions", async () => {
    const h = await roundTrip("ko-lo", {
      ...BASE,
      specificCharacterSet: "\\ISO 2022 IR 149",
      patientName: "Hong^Gildong=洪^吉洞=홍^길동",
      studyDescription: "흉부 CT",
      seriesDescription: "Axial 흉부",
      institutionName: "서울 병원",
    });
    expect(h.patientName).toEqual({ alphabetic: "Hong^Gildong", ideographic: "洪^吉洞", phonetic: "홍^길동" });
    expect(h.studyDescription).toBe("흉부 CT");
    expect(h.seriesDescription).toBe("Axial 흉부");
    expect(h.institutionName).toBe("서울 병원");
    expect(h.specificCharacterSet).toEqual(["", "ISO 2022 IR 149"]);
  });
});

describe("readDicomHeader: bounded reading of large files", () => {
  it("inspects a 500 MB multi-frame file by reading less than 64 KiB", async () => {
    const path = join(dir, "huge.dcm");
    const size = await writeDicom(path, { ...BASE, pixelDataBytes: 500 * 1024 * 1024 });
    expect(size).toBeGreaterThan(500 * 1024 * 1024);
    expect((await stat(path)).size).toBe(size);
    const h = await readDicomHeader(path);
    expectBaseFields(h);
    expect(h.bytesRead).toBeGreaterThan(0);
    expect(h.bytesRead).toBeLessThan(64 * 1024);
  });

  it("inspects a 500 MB implicit VR raw file by reading less than 64 KiB", async () => {
    const path = join(dir, "huge-raw");
    await writeDicom(path, { ...BASE, transferSyntax: TransferSyntax.implicitLE, preamble: false, pixelDataBytes: 500 * 1024 * 1024 });
    const h = await readDicomHeader(path);
    expect(h.patientId).toBe("PID-0001");
    expect(h.bytesRead).toBeLessThan(64 * 1024);
  });
});

describe("readDicomHeader: DICOMDIR", () => {
  it("recognises a DICOMDIR and reads only its beginning", async () => {
    const entries = Array.from({ length: 400 }, (_, i) => ({
      path: `DICOM/ST000001/SE000001/IM${String(i).padStart(6, "0")}`,
      patientId: "PID-0001",
      patientName: "DOE^JANE",
      studyInstanceUid: "1.2.3.4",
      seriesInstanceUid: "1.2.3.4.5",
      sopInstanceUid: `1.2.3.4.5.${i}`,
      modality: "MR",
    }));
    const path = join(dir, "DICOMDIR");
    const buf = buildDicomdir(entries);
    expect(buf.length).toBeGreaterThan(64 * 1024);
    await writeFile(path, buf);
    const h = await readDicomHeader(path);
    expect(h.isDicomdir).toBe(true);
    expect(h.sopClassUid).toBe("1.2.840.10008.1.3.10");
    expect(h.patientName).toBeUndefined();
    expect(h.bytesRead).toBeLessThan(64 * 1024);
  });
});

describe("readDicomHeader: broken files", () => {
  it.each([
    ["explicit VR LE", TransferSyntax.explicitLE],
    ["implicit VR LE", TransferSyntax.implicitLE],
    ["explicit VR BE", TransferSyntax.explicitBE],
  ] as const)("throws DICOM_TRUNCATED for a %s file cut in the middle of a header element", async (_l, ts) => {
    const path = join(dir, `trunc-header-${ts}`);
    await writeFile(path, buildTruncatedDicom({ ...BASE, transferSyntax: ts }, "header"));
    const err = await readDicomHeader(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DicomReadError);
    expect(err).toBeInstanceOf(InputError);
    expect((err as DicomReadError).code).toBe("DICOM_TRUNCATED");
    expect((err as DicomReadError).exitCode).toBe(3);
  });

  it("throws DICOM_TRUNCATED for a file cut in the middle of native pixel data, reading few bytes", async () => {
    const path = join(dir, "trunc-pixels");
    await writeFile(path, buildTruncatedDicom({ ...BASE, pixelDataBytes: 200_000 }, "pixel-data"));
    const err = await readDicomHeader(path).catch((e: unknown) => e);
    expect((err as DicomReadError).code).toBe("DICOM_TRUNCATED");
    expect((err as DicomReadError).details.bytesRead).toBeLessThan(64 * 1024);
  });

  it("throws DICOM_TRUNCATED for encapsulated pixel data without its sequence delimiter", async () => {
    const path = join(dir, "trunc-jpeg");
    await writeFile(path, buildTruncatedDicom({ ...BASE, transferSyntax: TransferSyntax.jpegBaseline, pixelDataBytes: 200_000 }, "pixel-data"));
    await expect(readDicomHeader(path)).rejects.toMatchObject({ code: "DICOM_TRUNCATED" });
  });

  it("throws DICOM_TRUNCATED for a deflated file whose compressed data set is cut short", async () => {
    const full = buildDicom({ ...BASE, transferSyntax: TransferSyntax.deflatedLE, extraElements: [{ tag: 0x00191010, vr: "OB", value: Buffer.from(Array.from({ length: 4000 }, (_, i) => (i * 7919) % 251)) }] });
    const metaEnd = full.indexOf(Buffer.from("1.2.840.10008.1.2.1.99")) + 22 + 60;
    const path = join(dir, "trunc-deflated");
    for (const cut of [0, 10, 40, 200]) {
      await writeFile(path, full.subarray(0, metaEnd + cut));
      await expect(readDicomHeader(path)).rejects.toMatchObject({ code: "DICOM_TRUNCATED" });
    }
  });

  it("keeps patient names and paths out of the error message", async () => {
    const path = join(dir, "Álvarez José trunc");
    await writeFile(path, buildTruncatedDicom({ ...BASE }, "header"));
    const err = (await readDicomHeader(path).catch((e: unknown) => e)) as DicomReadError;
    expect(err.message).not.toMatch(/lvarez|Jos/);
    expect(JSON.stringify(err.details)).not.toMatch(/lvarez|Jos/);
    expect(err.privateLines).toEqual([path]);
  });

  it("throws DICOM_UNREADABLE for a file that is not DICOM", async () => {
    const path = join(dir, "notes.txt");
    await writeFile(path, "This is not a DICOM file, just some text that is long enough ".repeat(10));
    await expect(readDicomHeader(path)).rejects.toMatchObject({ code: "DICOM_UNREADABLE" });
  });

  it("throws DICOM_UNREADABLE for a missing file or a folder", async () => {
    await expect(readDicomHeader(join(dir, "nope"))).rejects.toMatchObject({ code: "DICOM_UNREADABLE" });
    await expect(readDicomHeader(dir)).rejects.toMatchObject({ code: "DICOM_UNREADABLE" });
  });

  it("throws DICOM_TRUNCATED for a file that stops inside the File Meta Information", async () => {
    const path = join(dir, "trunc-meta");
    for (const cut of [132, 133, 160]) {
      await writeFile(path, buildDicom(BASE).subarray(0, cut));
      await expect(readDicomHeader(path)).rejects.toMatchObject({ code: "DICOM_TRUNCATED" });
    }
  });

  it.each([
    ["explicit VR LE", TransferSyntax.explicitLE, true],
    ["implicit VR LE raw", TransferSyntax.implicitLE, false],
    ["explicit VR BE", TransferSyntax.explicitBE, true],
    ["deflated", TransferSyntax.deflatedLE, true],
    ["JPEG baseline", TransferSyntax.jpegBaseline, true],
  ] as const)("reads or rejects with DicomReadError every prefix and every corrupted copy of a %s file", async (_l, ts, preamble) => {
    const full = buildDicom({ ...BASE, transferSyntax: ts, preamble, pixelDataBytes: 64 });
    const path = join(dir, `fuzz-${ts}`);
    const outcomes = { read: 0, rejected: 0 };
    const check = async (bytes: Buffer): Promise<void> => {
      await writeFile(path, bytes);
      try {
        await readDicomHeader(path);
        outcomes.read++;
      } catch (err) {
        expect(err).toBeInstanceOf(DicomReadError);
        outcomes.rejected++;
      }
    };
    for (let cut = 0; cut < full.length; cut++) await check(full.subarray(0, cut));
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let i = 0; i < 300; i++) {
      const copy = Buffer.from(full);
      for (let k = 0; k < 3; k++) copy[rand(copy.length)] = rand(256);
      await check(copy);
    }
    expect(outcomes.rejected).toBeGreaterThan(0);
  });
});
