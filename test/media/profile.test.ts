import { describe, expect, it } from "vitest";
import { chooseProfile } from "../../src/media/profile.js";
import { fileSetIdFrom } from "../../src/media/fileset.js";
import { numberedId, recordName } from "../../src/media/plan.js";

const LE = "1.2.840.10008.1.2.1";
const JPEG = "1.2.840.10008.1.2.4.50";
const J2K = "1.2.840.10008.1.2.4.90";
const RLE = "1.2.840.10008.1.2.5";

describe("media profile and names", () => {
  it("chooses the general-purpose profile the transfer syntaxes fit, per medium", () => {
    expect(chooseProfile("cd", { [LE]: 3 })).toEqual({ profile: expect.objectContaining({ id: "STD-GEN-CD" }), outside: {} });
    expect(chooseProfile("dvd", { [LE]: 3, [JPEG]: 2 }).profile.id).toBe("STD-GEN-DVD-JPEG");
    expect(chooseProfile("dvd", { [J2K]: 2, [LE]: 1 })).toEqual({ profile: expect.objectContaining({ id: "STD-GEN-DVD-J2K" }), outside: {} });
    expect(chooseProfile("usb", { [J2K]: 2 }).profile.id).toBe("STD-GEN-USB-J2K");
    expect(chooseProfile("cd", { [JPEG]: 1 }).profile.id).toBe("STD-GEN-DVD-JPEG");
  });

  it("keeps files outside every profile as they are and lists them, choosing the profile that covers most files", () => {
    expect(chooseProfile("dvd", { [J2K]: 5, [JPEG]: 1, [RLE]: 2 })).toEqual({ profile: expect.objectContaining({ id: "STD-GEN-DVD-J2K" }), outside: { [JPEG]: 1, [RLE]: 2 } });
  });

  it("makes File-set IDs and file IDs from A-Z 0-9 _ only, within their lengths", () => {
    expect(fileSetIdFrom("José Álvarez 2025!")).toBe("JOS_LVAREZ_2025");
    expect(fileSetIdFrom("a".repeat(40))).toHaveLength(16);
    expect(fileSetIdFrom("  ")).toBe("SCANBRIDGE");
    expect(numberedId("IMG", 7)).toBe("IMG00007");
    expect(() => numberedId("IMG", 100_000)).toThrow(/More than 99999/);
    expect(recordName("DOC", 3, "Befund final.Pdf")).toBe("DOC00003.PDF");
    expect(recordName("FIL", 1, "scan.jpeg")).toBe("FIL00001.JPE");
    expect(recordName("FIL", 2, "no-extension")).toBe("FIL00002");
  });
});
