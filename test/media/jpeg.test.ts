import { describe, expect, it } from "vitest";
import { decode } from "jpeg-js";
import { encodeJpeg } from "../../src/media/jpeg.js";

/** An RGBA test image: smooth gradients plus a sharp edge, grey or in colour. */
function image(width: number, height: number, colour: boolean): Uint8Array {
  const px = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      const v = Math.round((x / width) * 200 + (y > height / 2 ? 40 : 0));
      px[i] = v;
      px[i + 1] = colour ? Math.round((y / height) * 255) : v;
      px[i + 2] = colour ? 255 - v : v;
      px[i + 3] = 255;
    }
  }
  return px;
}

/** Mean absolute difference of the RGB channels. */
function meanError(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  let n = 0;
  for (let i = 0; i < a.length; i += 4) for (let c = 0; c < 3; c++, n++) s += Math.abs(a[i + c]! - b[i + c]!);
  return s / n;
}

describe("encodeJpeg", () => {
  for (const [w, h, colour] of [[192, 192, false], [192, 150, true], [13, 7, false], [1, 1, true], [190, 97, true]] as const) {
    it(`a ${w}x${h} ${colour ? "colour" : "grey"} image decodes back (independent decoder) close to the original`, () => {
      const src = image(w, h, colour);
      const jpeg = encodeJpeg(src, w, h, 80);
      expect([...jpeg.subarray(0, 2)]).toEqual([0xff, 0xd8]);
      expect([...jpeg.subarray(-2)]).toEqual([0xff, 0xd9]);
      const back = decode(jpeg, { useTArray: true, formatAsRGBA: true });
      expect([back.width, back.height]).toEqual([w, h]);
      expect(meanError(src, back.data)).toBeLessThan(4);
      // A grey image is stored as one component (SOF0's component count).
      const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
      expect(jpeg[sof + 9]).toBe(colour ? 3 : 1);
    });
  }

  it("refuses a buffer smaller than the image", () => {
    expect(() => encodeJpeg(new Uint8Array(10), 4, 4)).toThrow(RangeError);
  });
});
