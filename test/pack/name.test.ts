import { describe, expect, it } from "vitest";
import { entryNameFor, folderNameFor, hashName, MAX_NAME_BYTES, sanitizeComponent, transliterate } from "../../src/pack/name.js";

describe("folderNameFor", () => {
  it("keeps Unicode names as given, in NFC", () => {
    expect(folderNameFor("José Álvarez Núñez", { ascii: false })).toBe("José Álvarez Núñez");
    expect(folderNameFor("王小明", { ascii: false })).toBe("王小明");
    expect(folderNameFor("محمد علي", { ascii: false })).toBe("محمد علي");
    expect(folderNameFor("Ελένη", { ascii: false })).toBe("Ελένη");
    const decomposed = "Jose\u0301"; // e + combining acute
    expect(folderNameFor(decomposed, { ascii: false })).toBe("José");
    expect(folderNameFor(decomposed, { ascii: false }).length).toBe(4);
  });

  it("removes path separators, reserved and control characters", () => {
    expect(folderNameFor("a/b\\c", { ascii: false })).toBe("a b c");
    expect(folderNameFor('x<>:"|?*y', { ascii: false })).toBe("x y");
    expect(folderNameFor("Ana\u0000\u0007 Maria\n", { ascii: false })).toBe("Ana Maria");
    expect(folderNameFor("evil\u202Egpj.exe", { ascii: false })).toBe("evilgpj.exe");
  });

  it("drops leading dots and trailing dots and spaces", () => {
    expect(folderNameFor("..hidden", { ascii: false })).toBe("hidden");
    expect(folderNameFor("Smith Jr. ", { ascii: false })).toBe("Smith Jr");
    expect(folderNameFor("...", { ascii: false })).toBe("");
  });

  it("avoids Windows reserved device names", () => {
    expect(folderNameFor("CON", { ascii: false })).toBe("CON_");
    expect(folderNameFor("lpt1", { ascii: false })).toBe("lpt1_");
    expect(folderNameFor("Con Air", { ascii: false })).toBe("Con Air");
  });

  it("caps the length in UTF-8 bytes without splitting a character", () => {
    const long = "王".repeat(200);
    const name = folderNameFor(long, { ascii: false });
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(MAX_NAME_BYTES);
    expect(name).toBe("王".repeat(Math.floor(MAX_NAME_BYTES / 3)));
  });

  it("returns an empty name when nothing usable is left", () => {
    expect(folderNameFor("  /// ", { ascii: false })).toBe("");
    expect(folderNameFor("\u0001\u0002", { ascii: true })).toBe("");
  });

  it("transliterates with --ascii-names", () => {
    expect(folderNameFor("José Álvarez", { ascii: true })).toBe("Jose Alvarez");
    expect(folderNameFor("Ελένη", { ascii: true })).toBe("Eleni");
    expect(folderNameFor("王小明", { ascii: true })).toMatch(/^[A-Za-z]+$/);
  });

  it("falls back to a short stable hash for names with no Latin transliteration", () => {
    const a = folderNameFor("🙂🙂", { ascii: true });
    expect(a).toMatch(/^patient-[0-9a-f]{10}$/);
    expect(folderNameFor("🙂🙂", { ascii: true })).toBe(a);
    expect(folderNameFor("🙃", { ascii: true })).not.toBe(a);
    expect(hashName("x")).toBe(hashName("x"));
  });
});

describe("entry names", () => {
  it("never returns an empty component", () => {
    expect(entryNameFor("...", { ascii: false })).toBe("_");
    expect(entryNameFor("IM00001", { ascii: false })).toBe("IM00001");
    expect(entryNameFor("Informe médico.pdf", { ascii: true })).toBe("Informe medico.pdf");
  });
  it("sanitizeComponent and transliterate are pure", () => {
    expect(sanitizeComponent("a  b")).toBe("a b");
    expect(transliterate("Øyvind")).toBe("Oyvind");
  });
});
