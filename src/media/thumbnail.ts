/*
 * Series thumbnails for the specialist's page: one image's pixel data decoded with dcmjs-imaging (its WebAssembly
 * codecs: RLE, JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, HT-JPEG 2000, JPEG XL) and encoded as a small
 * JPEG with jpeg-js. A file that cannot be decoded gives a reason, never an exception.
 */
import { readFile, stat } from "node:fs/promises";
import { createRequire } from "node:module";

/** Longest side of a thumbnail in pixels. */
export const THUMBNAIL_SIZE = 192;
/** Largest DICOM file decoded for a thumbnail (the whole file is read into memory to decode it). */
export const MAX_THUMBNAIL_SOURCE_BYTES = 256 * 1024 * 1024;

/** A thumbnail, or why there is none (no PHI in the reason). */
export type ThumbnailResult = { ok: true; jpeg: Buffer; width: number; height: number } | { ok: false; reason: string };

interface ImagingLib {
  DicomImage: new (buffer: ArrayBuffer) => { render: (opts?: { frame?: number; renderOverlays?: boolean }) => { pixels: ArrayBuffer; width: number; height: number }; getNumberOfFrames: () => number };
  NativePixelDecoder: { initializeAsync: (opts?: { webAssemblyModulePathOrUrl?: string }) => Promise<void> };
  log?: { setLevel?: (level: string) => void };
}

let imaging: Promise<ImagingLib> | undefined;

/** Load dcmjs-imaging and its WebAssembly decoders once per process (about 0.3 s), silencing its logger. */
function loadImaging(): Promise<ImagingLib> {
  imaging ??= (async () => {
    const mod = (await import("dcmjs-imaging")) as unknown as { default?: ImagingLib } & ImagingLib;
    const lib = mod.default ?? mod;
    lib.log?.setLevel?.("silent");
    const require = createRequire(import.meta.url);
    await lib.NativePixelDecoder.initializeAsync({ webAssemblyModulePathOrUrl: require.resolve("dcmjs-imaging/build/dcmjs-native-codecs.wasm") });
    return lib;
  })();
  return imaging;
}

/** Shrink an RGBA image to fit `max` pixels on its longest side, averaging the source pixels each target pixel covers. */
export function downscale(rgba: Uint8Array, width: number, height: number, max: number): { data: Buffer; width: number; height: number } {
  const scale = Math.min(1, max / Math.max(width, height));
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const out = Buffer.alloc(w * h * 4);
  for (let y = 0; y < h; y++) {
    const y0 = Math.floor((y * height) / h);
    const y1 = Math.max(y0 + 1, Math.floor(((y + 1) * height) / h));
    for (let x = 0; x < w; x++) {
      const x0 = Math.floor((x * width) / w);
      const x1 = Math.max(x0 + 1, Math.floor(((x + 1) * width) / w));
      let r = 0;
      let g = 0;
      let b = 0;
      const n = (y1 - y0) * (x1 - x0);
      for (let sy = y0; sy < y1; sy++) {
        for (let sx = x0; sx < x1; sx++) {
          const i = (sy * width + sx) * 4;
          r += rgba[i]!;
          g += rgba[i + 1]!;
          b += rgba[i + 2]!;
        }
      }
      const o = (y * w + x) * 4;
      out[o] = Math.round(r / n);
      out[o + 1] = Math.round(g / n);
      out[o + 2] = Math.round(b / n);
      out[o + 3] = 255;
    }
  }
  return { data: out, width: w, height: h };
}

/** Decode one DICOM file's first frame (the middle one for multi-frame images) and encode it as a JPEG thumbnail. */
export async function makeThumbnail(path: string, size = THUMBNAIL_SIZE): Promise<ThumbnailResult> {
  let bytes: Buffer;
  try {
    const st = await stat(path);
    if (st.size > MAX_THUMBNAIL_SOURCE_BYTES) return { ok: false, reason: "image file too large to preview" };
    bytes = await readFile(path);
  } catch (err) {
    return { ok: false, reason: `file could not be read (${(err as NodeJS.ErrnoException).code ?? "error"})` };
  }
  try {
    const lib = await loadImaging();
    const image = new lib.DicomImage(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer);
    const frames = Math.max(1, image.getNumberOfFrames() || 1);
    const r = image.render({ frame: Math.floor(frames / 2), renderOverlays: false });
    if (!r || !r.width || !r.height || !r.pixels) return { ok: false, reason: "no pixel data" };
    const small = downscale(new Uint8Array(r.pixels), r.width, r.height, size);
    const { encode } = await import("jpeg-js");
    const jpeg = encode({ data: small.data, width: small.width, height: small.height }, 80).data;
    return { ok: true, jpeg: Buffer.from(jpeg), width: small.width, height: small.height };
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    // Library messages name tags and syntaxes, never values; keep them short.
    return { ok: false, reason: `pixel data could not be decoded (${msg.slice(0, 120)})` };
  }
}
