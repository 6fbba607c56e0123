import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rmSync } from "node:fs";
import iconv from "iconv-lite";
import { unicodePathExtra, writeZip, type ZipSpecEntry } from "../../fixtures/handmade-zip.js";
import { decodeZipNames } from "../../src/ingest/names.js";
import { verifyPackage } from "../../src/ingest/verify.js";
import { tmp } from "./helpers.js";

const file = (name: string, data = "data of " + name): ZipSpecEntry => ({ name: Buffer.from(name), data: Buffer.from(data), flags: 0x800 });
const three = () => [file("P/a.txt"), file("P/b.txt"), file("P/c.txt")];

describe("zip differential checks (every reader must see the same files)", () => {
  let dir: string;
  beforeAll(() => {
    dir = tmp("sb-zipchecks-");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const codesOf = async (buf: Buffer, name = "t.zip") => {
    const p = join(dir, name);
    writeFileSync(p, buf);
    return (await verifyPackage(p, { allowUnsealed: true, sidecarPath: false })).problems.map((x) => x.code);
  };

  it("a clean zip has no problems", async () => {
    expect(await codesOf(writeZip(three()).buf)).toEqual([]);
  });

  it("local name differs from the central directory: LOCAL_HEADER_MISMATCH", async () => {
    const z = writeZip(three());
    z.buf[z.localOffsets[1]! + 30 + 2] = "x".charCodeAt(0); // P/b.txt -> P/x.txt in the local header only
    expect(await codesOf(z.buf)).toContain("LOCAL_HEADER_MISMATCH");
  });

  it("local compression method differs: LOCAL_HEADER_MISMATCH", async () => {
    const z = writeZip(three());
    z.buf.writeUInt16LE(0, z.localOffsets[0]! + 8);
    expect(await codesOf(z.buf)).toContain("LOCAL_HEADER_MISMATCH");
  });

  it("local CRC-32 differs: LOCAL_HEADER_MISMATCH", async () => {
    const z = writeZip(three());
    z.buf.writeUInt32LE(0x12345678, z.localOffsets[2]! + 14);
    expect(await codesOf(z.buf)).toContain("LOCAL_HEADER_MISMATCH");
  });

  it("local sizes differ: LOCAL_HEADER_MISMATCH", async () => {
    const z = writeZip(three());
    z.buf.writeUInt32LE(z.buf.readUInt32LE(z.localOffsets[0]! + 22) + 1, z.localOffsets[0]! + 22);
    expect(await codesOf(z.buf)).toContain("LOCAL_HEADER_MISMATCH");
  });

  it("local flags differ (UTF-8 bit): LOCAL_HEADER_MISMATCH", async () => {
    const z = writeZip(three());
    z.buf.writeUInt16LE(0, z.localOffsets[0]! + 6);
    expect(await codesOf(z.buf)).toContain("LOCAL_HEADER_MISMATCH");
  });

  it("data descriptor disagrees with the central directory: LOCAL_HEADER_MISMATCH", async () => {
    const entries = three().map((e) => ({ ...e, flags: 0x808 }));
    const z = writeZip(entries);
    // The descriptor of the first entry sits right before the second local header.
    z.buf.writeUInt32LE(0xdeadbeef, z.localOffsets[1]! - 12);
    expect(await codesOf(z.buf)).toContain("LOCAL_HEADER_MISMATCH");
  });

  it("a local entry the central directory does not list: HIDDEN_ENTRY", async () => {
    const full = writeZip(three());
    const listed = writeZip([three()[0]!, three()[2]!]);
    // Keep all three local entries but only two central records (offsets fixed to the real positions).
    const cd = Buffer.from(full.buf.subarray(full.cdOffset, full.eocdOffset));
    const rec = (i: number) => {
      let p = 0;
      for (let k = 0; k < i; k++) p += 46 + cd.readUInt16LE(p + 28) + cd.readUInt16LE(p + 30) + cd.readUInt16LE(p + 32);
      return cd.subarray(p, p + 46 + cd.readUInt16LE(p + 28));
    };
    const newCd = Buffer.concat([rec(0), rec(2)]);
    const eocd = Buffer.from(listed.buf.subarray(listed.eocdOffset));
    eocd.writeUInt32LE(newCd.length, 12);
    eocd.writeUInt32LE(full.cdOffset, 16);
    expect(await codesOf(Buffer.concat([full.buf.subarray(0, full.cdOffset), newCd, eocd]))).toContain("HIDDEN_ENTRY");
  });

  it("a second end record hidden in the comment: MULTIPLE_END_RECORDS", async () => {
    const z = writeZip(three());
    const fake = Buffer.from(z.buf.subarray(z.eocdOffset, z.eocdOffset + 22));
    const withComment = writeZip(three(), fake);
    // The real record's comment is the fake one (pointing at the same directory, claiming no comment).
    expect(await codesOf(withComment.buf)).toContain("MULTIPLE_END_RECORDS");
  });

  it("an entry hidden inside another entry's local extra field: OVERLAPPING_ENTRIES", async () => {
    const inner = writeZip([file("P/hidden.txt", "hidden")]);
    const innerLocal = inner.buf.subarray(0, inner.cdOffset);
    const extra = Buffer.alloc(4 + innerLocal.length);
    extra.writeUInt16LE(0xcafe, 0);
    extra.writeUInt16LE(innerLocal.length, 2);
    innerLocal.copy(extra, 4);
    const z = writeZip([{ ...file("P/a.txt"), localExtra: extra, extra: Buffer.alloc(0) }, file("P/hidden.txt", "hidden")]);
    // Point the second central record into the first entry's local extra field, and drop the real second entry.
    const cdStart = z.cdOffset;
    const firstLen = 46 + z.buf.readUInt16LE(cdStart + 28);
    z.buf.writeUInt32LE(z.localOffsets[0]! + 30 + "P/a.txt".length + 4, cdStart + firstLen + 42);
    expect(await codesOf(z.buf)).toContain("OVERLAPPING_ENTRIES");
  });

  it("a path longer than PATH_MAX: PATH_TOO_LONG; a segment over NAME_MAX: NAME_TOO_LONG", async () => {
    const long = "P/" + Array.from({ length: 20 }, () => "d".repeat(250)).join("/") + "/x.txt";
    expect(await codesOf(writeZip([file(long)]).buf)).toContain("PATH_TOO_LONG");
    expect(await codesOf(writeZip([file(`P/${"n".repeat(300)}.txt`)]).buf)).toContain("NAME_TOO_LONG");
  });

  it("bytes after the end record: TRAILING_DATA", async () => {
    expect(await codesOf(Buffer.concat([writeZip(three()).buf, Buffer.from("appended later")]))).toContain("TRAILING_DATA");
  });
});

describe("entry names decoded by evidence", () => {
  const raw = (s: string, enc: string, flags = 0, versionMadeBy = 0x0014) => ({ raw: iconv.encode(s, enc), flags, versionMadeBy, extraFields: [] });

  it("UTF-8 flag and the Unicode Path field come first", () => {
    const stored = iconv.encode("Jos\u00e9/a.txt", "cp437");
    const r = decodeZipNames([{ raw: stored, flags: 0, versionMadeBy: 0x031e, extraFields: [{ id: 0x7075, data: unicodePathExtra(stored, "José/a.txt").subarray(4) }] }]);
    expect(r.names[0]!.name).toBe("José/a.txt");
    expect(r.encoding.encoding).toBe("utf-8");
  });

  it("valid UTF-8 without the flag is read as UTF-8, NFC-normalised", () => {
    const r = decodeZipNames([{ raw: Buffer.from("Jose\u0301 A\u0301lvarez/a.txt"), flags: 0, versionMadeBy: 0x031e, extraFields: [] }]);
    expect(r.names[0]!.name).toBe("José Álvarez/a.txt");
    expect(r.encoding).toMatchObject({ encoding: "utf-8", evidence: "utf-8-valid" });
  });

  for (const [enc, name] of [["cp437", "José Garcia"], ["cp850", "José Álvarez"], ["cp936", "王小明"], ["cp720", "علي حسن"], ["cp932", "山田十郎"]] as const) {
    it(`${enc} without the flag: ${name}`, () => {
      const r = decodeZipNames([raw(`${name}\\scan.dcm`, enc), raw(`${name}\\report.pdf`, enc)]);
      expect(r.names.map((n) => n.name)).toEqual([`${name}/scan.dcm`, `${name}/report.pdf`]);
      expect(r.encoding.legacyNames).toBe(2);
    });
  }

  it("the upload's own name decides between plausible code pages, and says so", () => {
    const r = decodeZipNames([raw("王小明/a.dcm", "cp936")], { uploadName: "王小明" });
    expect(r.encoding).toMatchObject({ encoding: "cp936", evidence: "upload-name" });
  });

  it("--zip-encodings is preferred on a tie", () => {
    const r = decodeZipNames([raw("Ñandú/a.dcm", "cp850")], { encodings: ["cp850"] });
    expect(r.names[0]!.name).toBe("Ñandú/a.dcm");
    expect(r.encoding.encoding).toBe("cp850");
  });
});
