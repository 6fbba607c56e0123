import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { imageDicom } from "../../fixtures/media-builder.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeJpeg } from "../../src/media/jpeg.js";
import { downscale, makeThumbnail, renderNative, THUMBNAIL_SIZE } from "../../src/media/thumbnail.js";

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

  it("a negative rescale slope, no window: the rescaled values decide (the disc, stored 4000, becomes 95: darkest)", () => {
    // dcmjs-imaging shows this image inverted (its range ignores the slope's sign); PS3.3 C.11.1 rescales first.
    const file = imageDicom({ ...base, extraElements: [{ tag: 0x00281052, vr: "DS", value: ds("4095") }, { tag: 0x00281053, vr: "DS", value: ds("-1") }] });
    const r = renderNative(file, () => 0)!;
    const at = (x: number, y: number) => r.pixels[(y * r.width + x) * 4]!;
    const cx = Math.floor(80 * (0.3 + ((5 * 37) % 40) / 100));
    expect(at(cx, 48)).toBe(0); // in the disc: the lowest value
    expect(at(0, 0)).toBe(255); // stored 0 becomes 4095: the highest
    expect(at(79, 95)).toBeGreaterThan(0);
  });

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

describe("makeThumbnail of an uncompressed grey image", () => {
  // The thumbnail is made from one byte per pixel (grey), not from an RGBA copy: it must be the very same JPEG as
  // the RGBA rendering shrunk and encoded, on images larger than the thumbnail (so pixels are averaged).
  const big = { ...base, rows: 512, cols: 384 };
  const cases: Array<[string, Buffer]> = [
    ["no window", imageDicom(big)],
    ["window and rescale", imageDicom({ ...big, extraElements: [{ tag: 0x00281050, vr: "DS", value: ds("1500") }, { tag: 0x00281051, vr: "DS", value: ds("2000") }, { tag: 0x00281052, vr: "DS", value: ds("-1024") }, { tag: 0x00281053, vr: "DS", value: ds("1") }] })],
    ["odd size, smaller than a thumbnail on one side", imageDicom({ ...base, rows: 601, cols: 97 })],
  ];
  for (const [name, file] of cases) {
    it(`${name}: the same JPEG as from the RGBA rendering`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "sb-thumb-"));
      try {
        const path = join(dir, "im.dcm");
        writeFileSync(path, file);
        const t = await makeThumbnail(path);
        expect(t.ok).toBe(true);
        const rgba = renderNative(file, () => 0)!;
        const small = downscale(rgba.pixels, rgba.width, rgba.height, THUMBNAIL_SIZE);
        expect(t.ok && [t.width, t.height]).toEqual([small.width, small.height]);
        expect(Math.max(small.width, small.height)).toBe(THUMBNAIL_SIZE);
        expect(t.ok && t.jpeg.equals(encodeJpeg(small.data, small.width, small.height, 80))).toBe(true);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
