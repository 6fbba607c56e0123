import { describe, expect, it } from "vitest";
import iconv from "iconv-lite";
import { CHARSET_SAMPLES, encodeDicomText } from "../../fixtures/dicom-builder.js";
import { decodePersonName, decodeText, parseSpecificCharacterSet, splitPersonName } from "../../src/dicom/charset.js";

const bytes = (s: string): Buffer => Buffer.from(s, "latin1");

// Byte strings as printed in DICOM PS3.5 Annexes H, I and K (also the test vectors of pydicom and dcmtk).
const STANDARD_VECTORS = [
  {
    annex: "H.3.1 Japanese, ISO 2022 IR 87",
    charset: "\\ISO 2022 IR 87",
    bytes: bytes("Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B"),
    text: "Yamada^Tarou=山田^太郎=やまだ^たろう",
  },
  {
    annex: "H.3.2 Japanese, ISO 2022 IR 13 + IR 87",
    charset: "ISO 2022 IR 13\\ISO 2022 IR 87",
    bytes: bytes("\xd4\xcf\xc0\xde^\xc0\xdb\xb3=\x1b$B;3ED\x1b(J^\x1b$BB@O:\x1b(J=\x1b$B$d$^$@\x1b(J^\x1b$B$?$m$&\x1b(J"),
    text: "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう",
  },
  {
    annex: "I.2 Korean, ISO 2022 IR 149",
    charset: "\\ISO 2022 IR 149",
    bytes: bytes("Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7=\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf"),
    text: "Hong^Gildong=洪^吉洞=홍^길동",
  },
  {
    annex: "K.1 Chinese, GB18030",
    charset: "GB18030",
    bytes: bytes("Wang^XiaoDong=\xcd\xf5^\xd0\xa1\xb6\xab="),
    text: "Wang^XiaoDong=王^小东=",
  },
  {
    annex: "K.2 Chinese, ISO 2022 IR 58",
    charset: "\\ISO 2022 IR 58",
    bytes: bytes("Zhang^XiaoDong=\x1b$)A\xd5\xc5^\x1b$)A\xd0\xa1\xb6\xab="),
    text: "Zhang^XiaoDong=张^小东=",
  },
];

describe("Specific Character Set decoding", () => {
  it.each(CHARSET_SAMPLES.map((s) => [s.charset, s] as const))("decodes a Person Name in %s exactly", (_cs, sample) => {
    const encoded = encodeDicomText(sample.name, sample.charset);
    // The encoded form must not be plain UTF-8 or the test would not test the charset.
    if (sample.charset !== "ISO_IR 192") expect(encoded.equals(Buffer.from(sample.name, "utf8"))).toBe(false);
    const name = decodePersonName(encoded, parseSpecificCharacterSet(sample.charset));
    expect(name).toEqual(sample.expected);
  });

  it.each(STANDARD_VECTORS.map((v) => [v.annex, v] as const))("decodes the PS3.5 example %s", (_a, v) => {
    expect(decodeText(v.bytes, parseSpecificCharacterSet(v.charset), "PN")).toBe(v.text);
  });

  it.each(STANDARD_VECTORS.map((v) => [v.annex, v] as const))("the fixture encoder writes %s as the standard does", (_a, v) => {
    expect(encodeDicomText(v.text, v.charset).toString("latin1")).toBe(v.bytes.toString("latin1"));
  });

  it("decodes the Japanese example into its kanji and kana groups (cornerstonejs/dicomParser#89)", () => {
    const name = decodePersonName(STANDARD_VECTORS[0]!.bytes, ["", "ISO 2022 IR 87"]);
    expect(name.ideographic).toBe("山田^太郎");
    expect(name.phonetic).toBe("やまだ^たろう");
    // Decoding with a single charset, as the bug did, garbles the name: this is what the code extension handling fixes.
    expect(iconv.decode(STANDARD_VECTORS[0]!.bytes, "euc-jp")).not.toContain("山田");
  });

  it("keeps a GBK character whose second byte is 0x5C ('\\') inside one value", () => {
    const lo = Buffer.concat([iconv.encode("乗車", "gbk"), bytes("\\"), iconv.encode("俓", "gbk")]);
    expect(lo.includes(0x5c)).toBe(true);
    expect(decodeText(lo, ["GBK"], "LO").split("\\")).toEqual(["乗車", "俓"]);
  });

  it("keeps JIS X 0208 bytes that look like '^' or '=' or '\\' inside a kanji", () => {
    // 0x3D5E is a JIS X 0208 code whose bytes are "=" and "^".
    const encoded = bytes("A\x1b$B=^\x1b(B^B");
    const text = decodeText(encoded, ["", "ISO 2022 IR 87"], "PN");
    expect(text).toBe(`A${iconv.decode(Buffer.from([0xbd, 0xde]), "euc-jp")}^B`);
    expect(text.split("^")).toHaveLength(2);
  });

  it("returns to the initial character set after a control character (PS3.5 6.1.2.5.3)", () => {
    // JIS X 0208 still designated at CR LF: the next line starts in ASCII again.
    const encoded = bytes("\x1b$B;3ED\r\nABC");
    expect(decodeText(encoded, ["", "ISO 2022 IR 87"], "LT")).toBe("山田\r\nABC");
  });

  it("still decodes Korean when a writer does not re-designate G1 after a delimiter", () => {
    const encoded = bytes("Hong^Gildong=\x1b$)C\xfb\xf3^\xd1\xce\xd4\xd7");
    expect(decodeText(encoded, ["", "ISO 2022 IR 149"], "PN")).toBe("Hong^Gildong=洪^吉洞");
  });

  it("decodes ISO 2022 single-byte extensions (Latin-1 designated with ESC - A)", () => {
    const encoded = bytes("Buc^J\x1b-A\xe9r\xf4me");
    expect(decodeText(encoded, ["ISO 2022 IR 6", "ISO 2022 IR 100"], "PN")).toBe("Buc^Jérôme");
    expect(decodeText(bytes("Buc^J\xe9r\xf4me"), ["ISO 2022 IR 100"], "PN")).toBe("Buc^Jérôme");
  });

  it("decodes every byte of ISO 8859-1 (no charset, ISO_IR 100, and ISO 2022 IR 100) as iconv-lite does", () => {
    // Without a table: byte n is U+00nn, C1 controls included. A subarray inside a larger buffer decodes only its bytes.
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const inside = Buffer.concat([Buffer.from("XX"), all, Buffer.from("YY")]).subarray(2, 258);
    const expected = iconv.decode(all, "iso-8859-1");
    expect(decodeText(inside, [])).toBe(expected);
    expect(decodeText(inside, ["ISO_IR 100"])).toBe(expected);
    // ISO 2022 IR 100: the upper half through G1 (ESC - A), as one value (ST: no delimiters).
    const upper = all.subarray(0xa0);
    expect(decodeText(Buffer.concat([Buffer.from([0x1b, 0x2d, 0x41]), upper]), ["ISO 2022 IR 100"], "ST")).toBe(iconv.decode(upper, "iso-8859-1"));
  });

  it("tolerates common misspellings of defined terms and falls back to Latin-1 for unknown ones", () => {
    const latin = bytes("M\xfcller^J\xfcrgen");
    expect(decodeText(latin, ["ISO-IR 100"], "PN")).toBe("Müller^Jürgen");
    expect(decodeText(Buffer.from("Müller", "utf8"), ["UTF-8"], "PN")).toBe("Müller");
    expect(decodeText(latin, ["NOT A CHARSET"], "PN")).toBe("Müller^Jürgen");
    expect(decodeText(latin, [], "PN")).toBe("Müller^Jürgen");
  });

  it("parses (0008,0005) values, keeping an empty first value", () => {
    expect(parseSpecificCharacterSet("\\ISO 2022 IR 87")).toEqual(["", "ISO 2022 IR 87"]);
    expect(parseSpecificCharacterSet("ISO_IR 100 ")).toEqual(["ISO_IR 100"]);
    expect(parseSpecificCharacterSet("")).toEqual([]);
    expect(parseSpecificCharacterSet(undefined)).toEqual([]);
  });

  it("splits Person Name groups and drops empty trailing components", () => {
    expect(splitPersonName("DOE^JOHN^^^ ")).toEqual({ alphabetic: "DOE^JOHN" });
    expect(splitPersonName("=山田^太郎")).toEqual({ alphabetic: "", ideographic: "山田^太郎" });
    expect(splitPersonName("Wang^XiaoDong=王^小东=")).toEqual({ alphabetic: "Wang^XiaoDong", ideographic: "王^小东" });
  });
});
