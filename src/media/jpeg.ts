/*
 * A small baseline JPEG encoder for the page's series previews (192 px). jpeg-js rebuilt its lookup tables (65,535
 * small arrays) for every image, which cost 30-90 ms of CPU and garbage collection per preview; here the tables are
 * built once per process and each preview takes a few milliseconds. Baseline sequential DCT, 8-bit, the standard
 * (ITU T.81 Annex K) quantisation and Huffman tables, no subsampling: one component for grey images (CT, MR, CR),
 * Y/Cb/Cr for colour ones, sharing one set of tables.
 */

/** Natural (row-major) index of each zig-zag position. */
const ZIGZAG = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63];
/** T.81 Table K.1, luminance quantisation (row-major). */
const BASE_QUANT = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99];
/** T.81 Table K.3 and K.5: luminance DC and AC Huffman tables (counts per code length 1..16, then symbols). */
const DC_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_VALUES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const AC_BITS = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
const AC_VALUES = [
  0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
  0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
  0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
  0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
  0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
  0xf9, 0xfa,
];

/** Code and length of each symbol of a Huffman table given as counts per length and symbols (T.81 Annex C). */
function huffmanCodes(bits: number[], values: number[]): { code: Uint16Array; size: Uint8Array } {
  const code = new Uint16Array(256);
  const size = new Uint8Array(256);
  let c = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    for (let i = 0; i < bits[len - 1]!; i++) {
      code[values[k]!] = c;
      size[values[k]!] = len;
      k++;
      c++;
    }
    c <<= 1;
  }
  return { code, size };
}

const DC = huffmanCodes(DC_BITS, DC_VALUES);
const AC = huffmanCodes(AC_BITS, AC_VALUES);
/** cos((2x+1)uπ/16) scaled by C(u)/2, indexed [u*8+x]. */
const COS = new Float64Array(64);
for (let u = 0; u < 8; u++) for (let x = 0; x < 8; x++) COS[u * 8 + x] = ((u === 0 ? Math.SQRT1_2 : 1) / 2) * Math.cos(((2 * x + 1) * u * Math.PI) / 16);

/** The quantisation table (row-major) for a quality of 1-100, IJG scaling. */
function quantTable(quality: number): Uint8Array {
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  const scale = q < 50 ? 5000 / q : 200 - 2 * q;
  return Uint8Array.from(BASE_QUANT, (b) => Math.min(255, Math.max(1, Math.floor((b * scale + 50) / 100))));
}

/** Big-endian bit writer with JPEG's 0xFF byte stuffing. */
class BitWriter {
  bytes: number[] = [];
  private acc = 0;
  private n = 0;
  write(value: number, length: number): void {
    for (let i = length - 1; i >= 0; i--) {
      this.acc = (this.acc << 1) | ((value >> i) & 1);
      if (++this.n === 8) this.flushByte();
    }
  }
  private flushByte(): void {
    this.bytes.push(this.acc);
    if (this.acc === 0xff) this.bytes.push(0);
    this.acc = 0;
    this.n = 0;
  }
  /** Pad the last byte with 1 bits. */
  end(): void {
    while (this.n !== 0) this.write(1, 1);
  }
}

/** Number of bits of |v| (the JPEG "category"). */
function category(v: number): number {
  let a = Math.abs(v);
  let s = 0;
  while (a > 0) {
    s++;
    a >>= 1;
  }
  return s;
}

/** x0·COS[c] + … + x7·COS[c+7], added in that order (the order of a plain loop: bit-identical results). */
function dot8(x0: number, x1: number, x2: number, x3: number, x4: number, x5: number, x6: number, x7: number, c: number): number {
  let s = 0;
  s += x0 * COS[c]!;
  s += x1 * COS[c + 1]!;
  s += x2 * COS[c + 2]!;
  s += x3 * COS[c + 3]!;
  s += x4 * COS[c + 4]!;
  s += x5 * COS[c + 5]!;
  s += x6 * COS[c + 6]!;
  s += x7 * COS[c + 7]!;
  return s;
}

/** Forward DCT, quantisation and entropy coding of one 8x8 block (level-shifted samples, row-major); returns its DC. */
function encodeBlock(block: Float64Array, q: Uint8Array, prevDc: number, out: BitWriter, tmp: Float64Array, coef: Int32Array): number {
  // Rows, then columns (separable 2-D DCT), the eight inputs of a row or column read once.
  for (let y = 0; y < 8; y++) {
    const r = y * 8;
    const b0 = block[r]!, b1 = block[r + 1]!, b2 = block[r + 2]!, b3 = block[r + 3]!, b4 = block[r + 4]!, b5 = block[r + 5]!, b6 = block[r + 6]!, b7 = block[r + 7]!;
    for (let u = 0; u < 8; u++) tmp[r + u] = dot8(b0, b1, b2, b3, b4, b5, b6, b7, u * 8);
  }
  for (let u = 0; u < 8; u++) {
    const t0 = tmp[u]!, t1 = tmp[8 + u]!, t2 = tmp[16 + u]!, t3 = tmp[24 + u]!, t4 = tmp[32 + u]!, t5 = tmp[40 + u]!, t6 = tmp[48 + u]!, t7 = tmp[56 + u]!;
    for (let v = 0; v < 8; v++) coef[v * 8 + u] = Math.round(dot8(t0, t1, t2, t3, t4, t5, t6, t7, v * 8) / q[v * 8 + u]!);
  }
  const dc = coef[0]!;
  const diff = dc - prevDc;
  const ds = category(diff);
  out.write(DC.code[ds]!, DC.size[ds]!);
  if (ds > 0) out.write(diff < 0 ? diff + (1 << ds) - 1 : diff, ds);
  let run = 0;
  for (let k = 1; k < 64; k++) {
    const v = coef[ZIGZAG[k]!]!;
    if (v === 0) {
      run++;
      continue;
    }
    while (run > 15) {
      out.write(AC.code[0xf0]!, AC.size[0xf0]!);
      run -= 16;
    }
    const s = category(v);
    const sym = (run << 4) | s;
    out.write(AC.code[sym]!, AC.size[sym]!);
    out.write(v < 0 ? v + (1 << s) - 1 : v, s);
    run = 0;
  }
  if (run > 0) out.write(AC.code[0]!, AC.size[0]!);
  return dc;
}

/** A marker segment: 0xFF, the marker, a 2-byte length, the payload. */
function segment(marker: number, payload: number[]): number[] {
  const len = payload.length + 2;
  return [0xff, marker, len >> 8, len & 0xff, ...payload];
}

/** Encode an RGBA image (alpha ignored) as a baseline JFIF JPEG; grey images get one component. */
export function encodeJpeg(rgba: Uint8Array, width: number, height: number, quality = 80): Buffer {
  if (width < 1 || height < 1 || width > 0xffff || height > 0xffff || rgba.length < width * height * 4) throw new RangeError("bad image size");
  let grey = true;
  for (let i = 0; i < width * height * 4 && grey; i += 4) grey = rgba[i] === rgba[i + 1] && rgba[i] === rgba[i + 2];
  const nc = grey ? 1 : 3;
  const q = quantTable(quality);
  const head: number[] = [0xff, 0xd8];
  head.push(...segment(0xe0, [0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]));
  head.push(...segment(0xdb, [0, ...ZIGZAG.map((i) => q[i]!)]));
  const comps: number[] = [];
  for (let c = 1; c <= nc; c++) comps.push(c, 0x11, 0);
  head.push(...segment(0xc0, [8, height >> 8, height & 0xff, width >> 8, width & 0xff, nc, ...comps]));
  head.push(...segment(0xc4, [0x00, ...DC_BITS, ...DC_VALUES, 0x10, ...AC_BITS, ...AC_VALUES]));
  const scomps: number[] = [];
  for (let c = 1; c <= nc; c++) scomps.push(c, 0x00);
  head.push(...segment(0xda, [nc, ...scomps, 0, 63, 0]));

  const out = new BitWriter();
  const block = new Float64Array(64);
  const tmp = new Float64Array(64);
  const coef = new Int32Array(64);
  const prev = [0, 0, 0];
  // Component value of pixel (x, y), edges repeated to fill the last blocks.
  const sample = (c: number, x: number, y: number): number => {
    const i = (Math.min(y, height - 1) * width + Math.min(x, width - 1)) * 4;
    const r = rgba[i]!;
    const g = rgba[i + 1]!;
    const b = rgba[i + 2]!;
    if (c === 0) return 0.299 * r + 0.587 * g + 0.114 * b;
    if (c === 1) return -0.168736 * r - 0.331264 * g + 0.5 * b + 128;
    return 0.5 * r - 0.418688 * g - 0.081312 * b + 128;
  };
  for (let by = 0; by < height; by += 8) {
    for (let bx = 0; bx < width; bx += 8) {
      for (let c = 0; c < nc; c++) {
        for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) block[y * 8 + x] = sample(c, bx + x, by + y) - 128;
        prev[c] = encodeBlock(block, q, prev[c]!, out, tmp, coef);
      }
    }
  }
  out.end();
  return Buffer.from([...head, ...out.bytes, 0xff, 0xd9]);
}
