/*
 * Series thumbnails for the specialist's page: one image's pixel data decoded with dcmjs-imaging (its WebAssembly
 * codecs: RLE, JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, HT-JPEG 2000, JPEG XL) and encoded as a small
 * JPEG (jpeg.ts). Uncompressed grey and RGB images (most CT, MR, CR) are rendered here directly (renderNative):
 * loading dcmjs and dcmjs-imaging costs 0.5-1 s of CPU per process, more than the page's previews themselves.
 * dcmjs-imaging is loaded for everything else, and its WebAssembly codecs only for compressed pixel data. A file
 * that cannot be decoded gives a reason, never an exception.
 */
import { readFile, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import dicomParser from "dicom-parser";
import { encodeJpeg } from "./jpeg.js";
import { withAssetFile } from "../util/assets.js";

/** Longest side of a thumbnail in pixels. */
export const THUMBNAIL_SIZE = 192;
/** Largest DICOM file decoded for a thumbnail (the whole file is read into memory to decode it). */
export const MAX_THUMBNAIL_SOURCE_BYTES = 256 * 1024 * 1024;

/** A thumbnail, or why there is none (no PHI in the reason). */
export type ThumbnailResult = { ok: true; jpeg: Buffer; width: number; height: number } | { ok: false; reason: string };

interface ImagingLib {
  DicomImage: new (buffer: ArrayBuffer) => {
    render: (opts?: { frame?: number; renderOverlays?: boolean }) => { pixels: ArrayBuffer; width: number; height: number };
    getNumberOfFrames: () => number;
    getTransferSyntaxUid: () => string;
  };
  NativePixelDecoder: { initializeAsync: (opts?: { webAssemblyModulePathOrUrl?: string }) => Promise<void> };
  log?: { setLevel?: (level: string) => void };
}

let imaging: Promise<ImagingLib> | undefined;
let codecs: Promise<void> | undefined;

/** Load dcmjs-imaging once per process, silencing its logger. */
function loadImaging(): Promise<ImagingLib> {
  imaging ??= (async () => {
    const mod = (await import("dcmjs-imaging")) as unknown as { default?: ImagingLib } & ImagingLib;
    const lib = mod.default ?? mod;
    lib.log?.setLevel?.("silent");
    return lib;
  })();
  return imaging;
}

/** Load its WebAssembly decoders once per process (about 0.3 s): only compressed pixel data needs them. */
function loadCodecs(lib: ImagingLib): Promise<void> {
  // By path from node_modules; inside a single executable from the embedded asset (the loader reads a path only).
  const inNodeModules = () => createRequire(import.meta.url).resolve("dcmjs-imaging/build/dcmjs-native-codecs.wasm");
  codecs ??= withAssetFile("dcmjs-native-codecs.wasm", inNodeModules, (path) => lib.NativePixelDecoder.initializeAsync({ webAssemblyModulePathOrUrl: path }));
  return codecs;
}

/** Transfer syntaxes whose pixel data dcmjs-imaging reads without its codecs: implicit and explicit VR, little and big endian. */
const UNCOMPRESSED = new Set(["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"]);

/** The size of an image of `width` × `height` shrunk to fit `max` pixels on its longest side. */
function fitted(width: number, height: number, max: number): { w: number; h: number } {
  const scale = Math.min(1, max / Math.max(width, height));
  return { w: Math.max(1, Math.round(width * scale)), h: Math.max(1, Math.round(height * scale)) };
}

/**
 * Shrink an image of `channels` bytes per pixel (1: grey, 4: RGBA) to fit `max` pixels on its longest side,
 * averaging the source pixels each target pixel covers; the result is RGBA (grey copied to R, G and B).
 */
export function downscale(src: Uint8Array, width: number, height: number, max: number, channels: 1 | 4 = 4): { data: Buffer; width: number; height: number } {
  const { w, h } = fitted(width, height, max);
  const out = Buffer.alloc(w * h * 4);
  const colours = channels === 4 ? 3 : 1;
  const sums = [0, 0, 0];
  for (let y = 0; y < h; y++) {
    const y0 = Math.floor((y * height) / h);
    const y1 = Math.max(y0 + 1, Math.floor(((y + 1) * height) / h));
    for (let x = 0; x < w; x++) {
      const x0 = Math.floor((x * width) / w);
      const x1 = Math.max(x0 + 1, Math.floor(((x + 1) * width) / w));
      const n = (y1 - y0) * (x1 - x0);
      for (let c = 0; c < colours; c++) {
        let sum = 0;
        for (let sy = y0; sy < y1; sy++) {
          for (let i = (sy * width + x0) * channels + c, end = (sy * width + x1) * channels; i < end; i += channels) sum += src[i]!;
        }
        sums[c] = sum;
      }
      const o = (y * w + x) * 4;
      out[o] = Math.round(sums[0]! / n);
      out[o + 1] = Math.round(sums[colours === 3 ? 1 : 0]! / n);
      out[o + 2] = Math.round(sums[colours === 3 ? 2 : 0]! / n);
      out[o + 3] = 255;
    }
  }
  return { data: out, width: w, height: h };
}

/** One frame rendered for display: grey levels (one byte per pixel) or RGBA. */
type Rendered = { channels: 1 | 4; pixels: Uint8Array; width: number; height: number };

/**
 * Render one frame of an uncompressed little-endian grey (MONOCHROME1/2, 8 or 16 bits) or RGB image, with the
 * modality rescale and the first VOI window (PS3.3 C.11.2.1.2; without one, the image's value range): grey as one
 * byte per pixel, RGB as RGBA. Undefined for anything else (dcmjs-imaging renders that).
 */
function renderFrame(bytes: Buffer, frameOf: (frames: number) => number): Rendered | undefined {
  const ds = dicomParser.parseDicom(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length));
  const ts = ds.string("x00020010")?.trim() ?? "";
  if (ts !== "1.2.840.10008.1.2" && ts !== "1.2.840.10008.1.2.1") return undefined;
  const px = ds.elements.x7fe00010;
  const rows = ds.uint16("x00280010") ?? 0;
  const cols = ds.uint16("x00280011") ?? 0;
  const bits = ds.uint16("x00280100") ?? 0;
  const spp = ds.uint16("x00280002") ?? 1;
  const photometric = ds.string("x00280004")?.trim() ?? "";
  if (!px || px.encapsulatedPixelData || rows === 0 || cols === 0) return undefined;
  const n = rows * cols;
  const frames = Math.max(1, ds.intString("x00280008") ?? 1);
  const frame = frameOf(frames);
  if (spp === 3 && photometric === "RGB" && bits === 8) {
    const out = new Uint8Array(n * 4);
    const planar = ds.uint16("x00280006") === 1;
    const start = px.dataOffset + frame * n * 3;
    if (start + n * 3 > px.dataOffset + px.length || start + n * 3 > bytes.length) return undefined;
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < 3; c++) out[i * 4 + c] = bytes[start + (planar ? c * n + i : i * 3 + c)]!;
      out[i * 4 + 3] = 255;
    }
    return { channels: 4, pixels: out, width: cols, height: rows };
  }
  if (spp !== 1 || (photometric !== "MONOCHROME1" && photometric !== "MONOCHROME2") || (bits !== 8 && bits !== 16)) return undefined;
  const bytesPer = bits / 8;
  const start = px.dataOffset + frame * n * bytesPer;
  // Pixel data cut short (as dcmjs-imaging does, the missing pixels are read as 0).
  const have = Math.min(n, Math.floor((Math.min(px.dataOffset + px.length, bytes.length) - start) / bytesPer));
  if (have <= 0) return undefined;
  const signed = ds.uint16("x00280103") === 1;
  const stored = ds.uint16("x00280101") ?? bits;
  const slope = ds.floatString("x00281053") ?? 1;
  const intercept = ds.floatString("x00281052") ?? 0;
  const shift = 32 - stored;
  const mask = stored < 32 ? 2 ** stored - 1 : 0xffffffff;
  // The stored values, sign-extended or masked to their bits; then a table from each stored value in the image's
  // range to its grey level (at most 65,536 entries, computed once, instead of the arithmetic per pixel).
  const raw = new Int32Array(have);
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0, p = start; i < have; i++, p += bytesPer) {
    let r = bytesPer === 2 ? bytes[p]! | (bytes[p + 1]! << 8) : bytes[p]!;
    r = signed ? (r << shift) >> shift : r & mask;
    raw[i] = r;
    if (r < min) min = r;
    if (r > max) max = r;
  }
  // The display range: the window, else the range of the values (the rescale is monotonic: the extreme stored
  // values give the extreme values; the missing pixels are the intercept).
  let lo: number;
  let hi: number;
  const center = ds.floatString("x00281050", 0);
  const width = ds.floatString("x00281051", 0);
  if (center !== undefined && width !== undefined && width >= 1) {
    lo = center - 0.5 - (width - 1) / 2;
    hi = center - 0.5 + (width - 1) / 2;
  } else {
    const a = min * slope + intercept;
    const b = max * slope + intercept;
    lo = Math.min(a, b);
    hi = Math.max(a, b);
    if (have < n) {
      lo = Math.min(lo, intercept);
      hi = Math.max(hi, intercept);
    }
  }
  const scale = 255 / (hi > lo ? hi - lo : 1);
  const invert = photometric === "MONOCHROME1";
  const greyOf = (v: number) => {
    const g = v <= lo ? 0 : v > hi ? 255 : Math.round((v - lo) * scale);
    return invert ? 255 - g : g;
  };
  const table = new Uint8Array(max - min + 1);
  for (let r = min; r <= max; r++) table[r - min] = greyOf(r * slope + intercept);
  const grey = new Uint8Array(n);
  for (let i = 0; i < have; i++) grey[i] = table[raw[i]! - min]!;
  if (have < n) grey.fill(greyOf(intercept), have);
  return { channels: 1, pixels: grey, width: cols, height: rows };
}

/**
 * Render one frame of an uncompressed grey or RGB image as RGBA (see renderFrame); undefined for anything else.
 */
export function renderNative(bytes: Buffer, frameOf: (frames: number) => number): { pixels: Uint8Array; width: number; height: number } | undefined {
  const r = renderFrame(bytes, frameOf);
  if (!r || r.channels === 4) return r;
  const out = new Uint8Array(r.pixels.length * 4);
  for (let i = 0; i < r.pixels.length; i++) {
    const g = r.pixels[i]!;
    out[i * 4] = g;
    out[i * 4 + 1] = g;
    out[i * 4 + 2] = g;
    out[i * 4 + 3] = 255;
  }
  return { pixels: out, width: r.width, height: r.height };
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
    const native = renderFrame(bytes, (frames) => Math.floor(frames / 2));
    if (native) {
      const small = downscale(native.pixels, native.width, native.height, size, native.channels);
      return { ok: true, jpeg: encodeJpeg(small.data, small.width, small.height, 80), width: small.width, height: small.height };
    }
  } catch {
    // Not parsable here: dcmjs-imaging has its own go below.
  }
  try {
    const lib = await loadImaging();
    const image = new lib.DicomImage(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer);
    if (!UNCOMPRESSED.has(image.getTransferSyntaxUid())) await loadCodecs(lib);
    const frames = Math.max(1, image.getNumberOfFrames() || 1);
    const r = image.render({ frame: Math.floor(frames / 2), renderOverlays: false });
    if (!r || !r.width || !r.height || !r.pixels) return { ok: false, reason: "no pixel data" };
    const small = downscale(new Uint8Array(r.pixels), r.width, r.height, size);
    return { ok: true, jpeg: encodeJpeg(small.data, small.width, small.height, 80), width: small.width, height: small.height };
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    // Library messages name tags and syntaxes, never values; keep them short.
    return { ok: false, reason: `pixel data could not be decoded (${msg.slice(0, 120)})` };
  }
}
