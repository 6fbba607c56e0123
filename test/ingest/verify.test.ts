import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import {
  EVIL_ABSOLUTE_PATH,
  hostileVariants,
  pseudoRandomStream,
  sealedEntries,
  writeHostilePackage,
  writeRawZip,
  writeSealedPackage,
  writeSmallPackage,
  type HostileVariant,
} from "../../fixtures/package-builder.js";
import { writeZip } from "../../fixtures/handmade-zip.js";
import { verifyPackage } from "../../src/ingest/verify.js";
import { checkEntryName } from "../../src/ingest/names.js";
import { parseSidecar } from "../../src/ingest/sidecar.js";
import { tmp, walk } from "./helpers.js";

describe("verifyPackage on valid packages", () => {
  let dir: string;
  beforeAll(() => {
    dir = tmp();
  });

  it("accepts a sealed package and summarises it", async () => {
    const p = await writeSmallPackage(join(dir, "a"), "José Álvarez Núñez");
    const r = await verifyPackage(p.zipPath);
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.sealed).toBe(true);
    expect(r.sidecar).toBe("match");
    expect(r.sha256).toBe(p.sha256);
    expect(r.id).toBe(p.sha256.slice(0, 12));
    expect(r.summary.root).toBe("José Álvarez Núñez");
    expect(r.summary.files).toBe(5); // 4 files + manifest
  });

  it("accepts a package written by archiver (streamed entries, data descriptors) and extracts it exactly", async () => {
    const files = [
      { path: "CT/001.dcm", data: { size: 3_000_000, stream: () => pseudoRandomStream(3_000_000, 7, true) } },
      { path: "CT/002.dcm", data: Buffer.from("second") },
      { path: "王小明 notes.txt", data: "unicode name" },
    ];
    const p = await writeSealedPackage(join(dir, "b"), "王小明", files);
    const staging = join(dir, "b-staging");
    await mkdir(staging);
    const r = await verifyPackage(p.zipPath, { extractTo: staging });
    expect(r.problems).toEqual([]);
    expect(r.extracted?.root).toBe(join(staging, "王小明"));
    expect(walk(staging)).toEqual(["王小明/CT/001.dcm", "王小明/CT/002.dcm", "王小明/manifest.json", "王小明/王小明 notes.txt"]);
    expect(readFileSync(join(staging, "王小明", "CT/002.dcm"), "utf8")).toBe("second");
  });

  it("reads local headers of every length (extra fields short and longer than the first read takes), one read or two", async () => {
    const extra = (n: number) => {
      const b = Buffer.alloc(4 + n, 0x41);
      b.writeUInt16LE(0xcafe, 0);
      b.writeUInt16LE(n, 2);
      return b;
    };
    const entries = [
      { name: Buffer.from("Folder/"), dir: true },
      { name: Buffer.from("Folder/short.txt"), data: Buffer.from("short extra"), extra: extra(8) },
      { name: Buffer.from("Folder/long.txt"), data: Buffer.from("a local extra field of 4 KiB"), extra: extra(4096) },
      { name: Buffer.from("Folder/none.txt"), data: Buffer.from("no extra") },
    ];
    const good = join(dir, "extra.zip");
    writeFileSync(good, writeZip(entries).buf);
    const staging = join(dir, "extra-staging");
    await mkdir(staging);
    const r = await verifyPackage(good, { allowUnsealed: true, extractTo: staging });
    expect(r.problems).toEqual([]);
    expect(readFileSync(join(staging, "Folder", "long.txt"), "utf8")).toBe("a local extra field of 4 KiB");
    // A local extra field longer in the local header than in the central directory moves the data start: still read right.
    const other = join(dir, "extra-local.zip");
    writeFileSync(other, writeZip(entries.map((e) => (e.extra?.length === 12 ? { ...e, localExtra: extra(3000) } : e))).buf);
    const r2 = await verifyPackage(other, { allowUnsealed: true });
    expect(r2.problems).toEqual([]);
    expect(r2.summary.files).toBe(3);
  });

  it("reads Zip64 packages", async () => {
    const p = await writeSealedPackage(join(dir, "z64"), "Zip Sixty-Four", [{ path: "a.dcm", data: "zip64" }], { forceZip64: true });
    const raw = readFileSync(p.zipPath);
    expect(raw.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06]))).toBe(true); // Zip64 end of central directory record
    const r = await verifyPackage(p.zipPath);
    expect(r.problems).toEqual([]);
  });

  it("reports a package without manifest as unsealed, accepted only when allowed", async () => {
    const zip = join(dir, "Other Tool.zip");
    writeFileSync(zip, writeRawZip(sealedEntries("Other Tool", [{ path: "a.dcm", data: "x" }], { omitManifest: true })));
    const strict = await verifyPackage(zip);
    expect(strict.ok).toBe(false);
    expect(strict.problems.map((p) => p.code)).toEqual(["UNSEALED"]);
    const lax = await verifyPackage(zip, { allowUnsealed: true });
    expect(lax.ok).toBe(true);
    expect(lax.sealed).toBe(false);
    expect(lax.warnings.map((w) => w.code)).toContain("UNSEALED");
    expect(lax.sidecar).toBe("absent");
  });

  it("returns every problem, not just the first", async () => {
    const entries = sealedEntries("P", [{ path: "a.dcm", data: "aaaa" }, { path: "b.dcm", data: "bbbb" }], { wrongHashFor: "b.dcm" });
    entries.splice(1, 0, { name: "../up.txt", data: Buffer.from("x") }, { name: "P/link", data: Buffer.from("/etc"), unixMode: 0o120777, method: 0 });
    entries[3] = { ...entries[3]!, method: 0, corruptData: true };
    const zip = join(dir, "many.zip");
    writeFileSync(zip, writeRawZip(entries));
    const r = await verifyPackage(zip);
    const codes = r.problems.map((p) => p.code).sort();
    expect(codes).toEqual(expect.arrayContaining(["PARENT_PATH", "SYMLINK_ENTRY", "CRC_MISMATCH", "FILE_HASH_MISMATCH"]));
  });

  it("never shows the root folder (patient name) in problem messages", async () => {
    const p = await writeHostilePackage(join(dir, "phi"), "crc-error", "Maria Secret-Name");
    const r = await verifyPackage(p.zipPath);
    expect(r.ok).toBe(false);
    expect(JSON.stringify(r.problems)).not.toContain("Secret");
    expect(r.problems[0]!.entry).toMatch(/^<root>\//);
  });
});

describe("verifyPackage on hostile packages", () => {
  const variants = Object.keys(hostileVariants) as HostileVariant[];
  let dir: string;
  beforeAll(() => {
    dir = tmp();
    rmSync(EVIL_ABSOLUTE_PATH, { force: true });
  });

  for (const v of variants) {
    it(`${v}: rejected with ${hostileVariants[v]}, nothing extracted, nothing written outside staging`, async () => {
      const p = await writeHostilePackage(join(dir, v, "drop"), v);
      const staging = join(dir, v, "staging");
      await mkdir(staging);
      const r = await verifyPackage(p.zipPath, { extractTo: staging });
      expect(r.ok).toBe(false);
      expect(r.problems.map((x) => x.code)).toContain(hostileVariants[v]);
      expect(r.extracted).toBeUndefined();
      // The caller removes staging on failure; what matters is nothing escaped it.
      expect(walk(join(dir, v)).filter((f) => !f.startsWith("drop/") && !f.startsWith("staging/"))).toEqual([]);
      expect(existsSync(EVIL_ABSOLUTE_PATH)).toBe(false);
      expect(existsSync(join(dir, "scanbridge-evil-slip.txt"))).toBe(false);
      expect(existsSync(join(dir, v, "scanbridge-evil-slip.txt"))).toBe(false);
      for (const p2 of r.problems) expect(p2.message.length).toBeGreaterThan(5);
    });
  }

  it("refuses entry counts over the limit without reading them all", async () => {
    const entries = sealedEntries("P", Array.from({ length: 30 }, (_, i) => ({ path: `f${i}.dcm`, data: `x${i}` })));
    const zip = join(dir, "count.zip");
    writeFileSync(zip, writeRawZip(entries));
    const r = await verifyPackage(zip, { limits: { maxEntries: 10 } });
    expect(r.problems.map((p) => p.code)).toContain("TOO_MANY_ENTRIES");
  });

  it("refuses a total uncompressed size over the limit", async () => {
    const p = await writeSmallPackage(join(dir, "size"), "Big", { extraBytes: 200_000 });
    const r = await verifyPackage(p.zipPath, { limits: { maxUnpackedBytes: 100_000 } });
    expect(r.problems.map((x) => x.code)).toContain("TOO_LARGE");
  });

  it("rejects names that are only distinct in Unicode normalisation (NFC makes them one name)", async () => {
    const entries = sealedEntries("P", [{ path: "Jos\u00e9.dcm", data: "a" }, { path: "Jose\u0301.dcm", data: "b" }]);
    const zip = join(dir, "nfc.zip");
    writeFileSync(zip, writeRawZip(entries));
    const r = await verifyPackage(zip);
    expect(r.problems.map((p) => p.code)).toContain("DUPLICATE_ENTRY");
  });

  it("rejects invalid UTF-8 names, control characters and a file that shadows a folder", async () => {
    const entries = sealedEntries("P", [{ path: "a", data: "file" }, { path: "a/b.dcm", data: "x" }]);
    entries.splice(1, 0, { name: Buffer.from([0x50, 0x2f, 0xff, 0xfe]), data: Buffer.from("x") }, { name: "P/bad\nname", data: Buffer.from("x") });
    const zip = join(dir, "names.zip");
    writeFileSync(zip, writeRawZip(entries));
    const codes = (await verifyPackage(zip)).problems.map((p) => p.code);
    expect(codes).toEqual(expect.arrayContaining(["BAD_NAME_ENCODING", "CONTROL_CHARACTER", "FILE_FOLDER_CONFLICT"]));
  });
});

describe("name and marker rules", () => {
  it("classifies unsafe names", () => {
    expect(checkEntryName("P/a/b.dcm")).toEqual([]);
    expect(checkEntryName("../x")).toContain("PARENT_PATH");
    expect(checkEntryName("/etc/x")).toContain("ABSOLUTE_PATH");
    expect(checkEntryName("C:/x")).toContain("DRIVE_LETTER");
    expect(checkEntryName("a\\b")).toContain("BACKSLASH_PATH"); // only reached by names decoding kept as they are
    expect(checkEntryName("a//b")).toContain("EMPTY_PATH_SEGMENT");
    expect(checkEntryName("a/./b")).toContain("EMPTY_PATH_SEGMENT");
    expect(checkEntryName(`a/${"x".repeat(256)}`)).toContain("NAME_TOO_LONG");
  });

  it("parses sha256sum lines", () => {
    const h = "a".repeat(64);
    expect(parseSidecar(`${h}  José.zip\n`)).toEqual({ sha256: h, fileName: "José.zip" });
    expect(parseSidecar(`${h.toUpperCase()} *x.zip`)).toEqual({ sha256: h, fileName: "x.zip" });
    expect(parseSidecar("nonsense")).toBeUndefined();
  });
});
