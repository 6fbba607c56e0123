import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { imageDicom } from "../../fixtures/media-builder.js";
import { renderNative } from "../../src/media/thumbnail.js";

interface Imaging {
  DicomImage: new (b: ArrayBuffer) => { render: (o: { frame: number; renderOverlays: boolean }) => { pixels: ArrayBuffer; width: number; height: number } };
  log?: { setLevel?: (l: string) => void };
}

/** dcmjs-imaging's rendering of the same file: the reference the direct renderer must match. */
function reference(file: Buffer): Uint8Array {
  const lib = createRequire(import.meta.url)("dcmjs-imaging") as Imaging;
  lib.log?.setLevel?.("silent");
  const img = new lib.DicomImage(file.buffer.slice(file.byteOffset, file.byteOffset + file.length) as ArrayBuffer);
  return new Uint8Array(img.render({ frame: 0, renderOverlays: false }).pixels);
}

const base = { patientName: "Test^Thumb", patientId: "T1", studyInstanceUid: "1.2.3", seriesInstanceUid: "1.2.3.1", sopInstanceUid: "1.2.3.1.1", modality: "CT", rows: 96, cols: 80, seed: 5 };
const ds = (s: string) => Buffer.from(s.length % 2 ? `${s} ` : s, "latin1");

describe("renderNative (uncompressed images without dcmjs)", () => {
  const cases: Array<[string, Buffer]> = [
    ["12-bit MONOCHROME2, no window (value range)", imageDicom(base)],
    ["with a VOI window and a rescale", imageDicom({ ...base, extraElements: [{ tag: 0x00281050, vr: "DS", value: ds("1500") }, { tag: 0x00281051, vr: "DS", value: ds("2000") }, { tag: 0x00281052, vr: "DS", value: ds("-1024") }, { tag: 0x00281053, vr: "DS", value: ds("1") }] })],
  ];
  for (const [name, file] of cases) {
    it(`${name}: the same grey levels as dcmjs-imaging`, () => {
      const r = renderNative(file, () => 0);
      expect(r).toBeDefined();
      expect([r!.width, r!.height]).toEqual([80, 96]);
      const ref = reference(file);
      let diff = 0;
      for (let i = 0; i < ref.length; i++) diff = Math.max(diff, Math.abs(ref[i]! - r!.pixels[i]!));
      expect(diff).toBeLessThanOrEqual(1);
      // Not a flat image: the disc and the gradient are there.
      expect(new Set(r!.pixels).size).toBeGreaterThan(50);
    });
  }

  it("leaves compressed pixel data to dcmjs-imaging", () => {
    const file = imageDicom(base);
    // Same bytes, but the meta header claims RLE Lossless (same length): not rendered here.
    const at = file.indexOf(Buffer.from("1.2.840.10008.1.2.1\0", "latin1"));
    expect(at).toBeGreaterThan(0);
    const rle = Buffer.from(file);
    rle.write("1.2.840.10008.1.2.5\0", at, "latin1");
    expect(renderNative(rle, () => 0)).toBeUndefined();
    expect(renderNative(file, () => 0)).toBeDefined();
  });
});
