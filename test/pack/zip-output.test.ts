// The zip's output (src/pack/zip-output.ts): what reaches the disk is exactly what was appended, whether it is
// written with O_DIRECT from aligned staging buffers or through the page cache, and when the kernel refuses a
// direct write half-way (a real refusal: a misaligned buffer) the rest goes buffered with nothing lost.
import { constants, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import { createHash, randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ZipOutput } from "../../src/pack/zip-output.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sb-zipout-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Whether this folder's file system takes O_DIRECT at all (probed on its own, not through the code under test). */
async function directWorksHere(): Promise<boolean> {
  const flag = (constants as { O_DIRECT?: number }).O_DIRECT;
  if (process.platform !== "linux" || !flag) return false;
  const probe = join(dir, "probe");
  const fh = await open(probe, constants.O_WRONLY | constants.O_CREAT | flag, 0o600).catch(() => undefined);
  await fh?.close();
  rmSync(probe, { force: true });
  return fh !== undefined;
}

/** Pieces of awkward sizes: empty, tiny, one byte short of and past a block, larger than the staging buffers. */
const SIZES = [0, 1, 30, 4095, 4096, 4097, 10_000, 0, 65_536, 200_003, 7, 131_072, 999_999, 12];

async function writeAll(name: string, direct: "auto" | "buffered" | "misaligned", coalesce: number) {
  const path = join(dir, name);
  const fh = await open(path, "wx", 0o600);
  const out = await ZipOutput.open(fh, path, { coalesce, direct });
  const modeAtStart = out.mode;
  const pieces = SIZES.map((n) => randomBytes(n));
  let released = 0;
  for (const p of pieces) await out.append(p, () => released++);
  await out.finish();
  const modeAtEnd = out.mode;
  await out.close();
  await fh.close();
  const expected = Buffer.concat(pieces);
  return { path, expected, modeAtStart, modeAtEnd, released, sha256: out.hash.digest("hex"), offset: out.offset };
}

describe("ZipOutput", () => {
  for (const coalesce of [8192, 1 << 20]) {
    it(`writes exactly what was appended, direct and buffered, every buffer handed back (staging ${coalesce} bytes)`, async () => {
      const canDirect = await directWorksHere();
      for (const direct of ["auto", "buffered"] as const) {
        const r = await writeAll(`out-${direct}-${coalesce}.bin`, direct, coalesce);
        const written = readFileSync(r.path);
        expect(written.length, direct).toBe(r.expected.length);
        expect(written.equals(r.expected), direct).toBe(true);
        expect(r.offset).toBe(r.expected.length);
        expect(r.sha256).toBe(createHash("sha256").update(r.expected).digest("hex"));
        expect(r.released, direct).toBe(SIZES.length);
        expect(r.modeAtEnd, direct).toBe(direct === "auto" && canDirect ? "direct" : "buffered");
      }
    });
  }

  it("a direct write the kernel refuses goes on buffered from where it was: the same bytes, nothing lost", async () => {
    const canDirect = await directWorksHere();
    const r = await writeAll("out-misaligned.bin", "misaligned", 8192);
    expect(r.modeAtStart).toBe(canDirect ? "direct" : "buffered");
    expect(r.modeAtEnd).toBe("buffered");
    expect(readFileSync(r.path).equals(r.expected)).toBe(true);
    expect(r.released).toBe(SIZES.length);
  });

  it("appending past --max-size throws MAX_SIZE_EXCEEDED without writing past the limit's data", async () => {
    for (const direct of ["auto", "buffered"] as const) {
      const path = join(dir, `limit-${direct}.bin`);
      const fh = await open(path, "wx", 0o600);
      const out = await ZipOutput.open(fh, path, { coalesce: 8192, direct, maxSize: 10_000 });
      await out.append(randomBytes(6000));
      const err = await Promise.resolve().then(() => out.append(randomBytes(6000))).catch((e: unknown) => e);
      expect((err as { code?: string }).code, direct).toBe("MAX_SIZE_EXCEEDED");
      await out.drain();
      await out.close();
      await fh.close();
      expect(readFileSync(path).length, direct).toBeLessThanOrEqual(10_000);
    }
  });
});
