// The parallel zip writer (src/pack/zip.ts): order, determinism whatever the parallelism, multi-piece entries with
// data descriptors, the store-when-incompressible rule, Zip64 records, all read back by unzip, 7z and yauzl.
import { createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ManifestFile } from "../../src/pack/manifest.js";
import type { PackagePlan, PlannedEntry } from "../../src/pack/plan.js";
import { workerLoader, type PieceLoader } from "../../src/pack/piece-loader.js";
import { writeZip } from "../../src/pack/zip.js";
import { readZip, sevenZipTest, unzipTest, zipinfoNames } from "../helpers/zip.js";

let dir: string;
let plan: PackagePlan;
const contents = new Map<string, Buffer>();

/** Smooth 16-bit "image" data: compresses well. */
function smooth(bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i + 1 < bytes; i += 2) b.writeUInt16LE((1000 + Math.round(200 * Math.sin(i / 4000 + seed)) + (i % 7)) & 0xffff, i);
  return b;
}

function entry(path: string, data: Buffer, mtime = new Date("2025-03-02T10:20:30Z")): PlannedEntry {
  const abs = join(dir, "in", path.replace(/\//g, "_"));
  writeFileSync(abs, data);
  contents.set(path, data);
  return { source: { absPath: abs, size: data.length, mtimeMs: mtime.getTime() } as PlannedEntry["source"], path, kind: "dicom" };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sb-zip-"));
  mkdirSync(join(dir, "in"));
  mkdirSync(join(dir, "out"));
  plan = {
    root: "Zoë Test",
    excluded: [],
    entries: [
      entry("a/empty.dcm", Buffer.alloc(0)),
      entry("a/small.dcm", smooth(3000, 1)),
      entry("a/one-piece.dcm", smooth(900_000, 2)),
      // Longer than one 1 MiB piece: written with a data descriptor, deflated by several threads at once.
      entry("b/multi-piece.dcm", smooth(3_500_000, 3)),
      entry("b/noise.jpg", randomBytes(300_000)),
      entry("b/noise-large.bin", randomBytes(2_600_000)),
      entry("c/ünïcödé 名前.pdf", smooth(5000, 4)),
    ],
  };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const buildManifest = (files: Iterable<ManifestFile>) => [Buffer.from(JSON.stringify([...files]) + "\n")];

async function write(name: string, extra: Partial<Parameters<typeof writeZip>[1]> = {}) {
  return writeZip(plan, { outDir: join(dir, "out"), fileName: name, level: 6, store: false, buildManifest, manifestTime: new Date("2025-03-03T00:00:00Z"), ...extra });
}

describe("writeZip", () => {
  it("writes the planned order, byte-identical whether one or eight deflate jobs run at once", async () => {
    const one = await write("one.zip", { parallel: 1 });
    const eight = await write("eight.zip", { parallel: 8 });
    const a = readFileSync(one.tmpPath);
    const b = readFileSync(eight.tmpPath);
    expect(a.equals(b)).toBe(true);
    expect(one.sha256).toBe(createHash("sha256").update(a).digest("hex"));
    expect(one.size).toBe(a.length);
    expect(zipinfoNames(one.tmpPath)).toEqual([...plan.entries.map((e) => `Zoë Test/${e.path}`), "Zoë Test/manifest.json"]);
  });

  it("reads the same bytes on the reading thread as inline, deflating and storing, at any read-ahead", async () => {
    for (const store of [false, true]) {
      const inline = await write(`inline-${store}.zip`, { store, readThread: false, parallel: 1 });
      const thread = await write(`thread-${store}.zip`, { store, readThread: true, parallel: 8 });
      const threadOne = await write(`thread1-${store}.zip`, { store, readThread: true, parallel: 1 });
      const a = readFileSync(inline.tmpPath);
      expect(readFileSync(thread.tmpPath).equals(a), `store=${store}`).toBe(true);
      expect(readFileSync(threadOne.tmpPath).equals(a), `store=${store}`).toBe(true);
      expect(thread.files).toEqual(inline.files);
      expect(thread.sha256).toBe(createHash("sha256").update(a).digest("hex"));
    }
  });

  it("writes the same zip with O_DIRECT, through the page cache, and when a direct write is refused half-way", async () => {
    for (const store of [false, true]) {
      const buffered = await write(`buffered-${store}.zip`, { store, directIo: "buffered" });
      const direct = await write(`direct-${store}.zip`, { store });
      const refused = await write(`refused-${store}.zip`, { store, directIo: "misaligned" });
      const a = readFileSync(buffered.tmpPath);
      expect(buffered.output).toBe("buffered");
      expect(refused.output).toBe("buffered");
      for (const other of [direct, refused]) {
        expect(readFileSync(other.tmpPath).equals(a), `store=${store} ${other.output}`).toBe(true);
        expect(other.sha256).toBe(buffered.sha256);
        expect(other.size).toBe(a.length);
      }
    }
  });

  for (const readThread of [false, true]) {
    const how = readThread ? "on the reading thread" : "inline";
    it(`a file that grew, shrank or vanished since the scan stops the zip (${how}) and the temporary file is removed`, async () => {
      const cases: Array<[string, (abs: string) => void, string]> = [
        ["one-piece grew", (abs) => writeFileSync(abs, Buffer.concat([readFileSync(abs), Buffer.from("more")])), "INPUT_CHANGED"],
        ["one-piece shrank", (abs) => writeFileSync(abs, readFileSync(abs).subarray(0, 10)), "INPUT_CHANGED"],
        ["multi-piece grew", (abs) => writeFileSync(abs, Buffer.concat([readFileSync(abs), Buffer.from("more")])), "INPUT_CHANGED"],
        ["multi-piece shrank", (abs) => writeFileSync(abs, readFileSync(abs).subarray(0, 2_000_000)), "INPUT_CHANGED"],
        ["vanished", (abs) => rmSync(abs), "INPUT_READ_FAILED"],
        // A link put in its place is not followed (it could point anywhere), and a FIFO is never waited on.
        ["replaced by a link", (abs) => {
          const moved = `${abs}.moved`;
          renameSync(abs, moved);
          symlinkSync(moved, abs);
        }, "INPUT_READ_FAILED"],
        ["replaced by a FIFO", (abs) => {
          rmSync(abs);
          execFileSync("mkfifo", [abs]);
        }, "INPUT_READ_FAILED"],
      ];
      for (const [what, change, code] of cases) {
        const src = what.startsWith("multi") ? plan.entries[3]! : plan.entries[2]!;
        const copy = join(dir, "in", `changing-${readThread}-${what.replace(/ /g, "-")}`);
        writeFileSync(copy, readFileSync(src.source.absPath));
        const changing: PackagePlan = { ...plan, entries: plan.entries.map((e) => (e === src ? { ...e, source: { ...e.source, absPath: copy } } : e)) };
        change(copy);
        const name = `changed-${readThread}-${what.replace(/ /g, "-")}.zip`;
        const err = await writeZip(changing, { outDir: join(dir, "out"), fileName: name, level: 6, store: false, buildManifest, readThread }).catch((e: unknown) => e);
        expect((err as { code?: string }).code, what).toBe(code);
        expect(readdirSync(join(dir, "out")).filter((f) => f.includes(name)), what).toEqual([]);
      }
    });
  }

  it("every entry reads back identical with yauzl; unzip -t and 7z t accept the zip; hashes match the files", async () => {
    const w = await write("read.zip");
    expect(unzipTest(w.tmpPath).ok).toBe(true);
    expect(sevenZipTest(w.tmpPath).ok).toBe(true);
    const entries = await readZip(w.tmpPath);
    for (const e of entries.slice(0, -1)) {
      const path = e.name.slice("Zoë Test/".length);
      expect(e.data.equals(contents.get(path)!), path).toBe(true);
      expect(e.utf8Flag).toBe(true);
    }
    for (const f of w.files) expect(f.sha256).toBe(createHash("sha256").update(contents.get(f.path)!).digest("hex"));
    expect(entries.at(-1)!.data.equals(Buffer.concat([...buildManifest(w.files)]))).toBe(true);
  });

  it("deflates what shrinks and stores what does not (small and multi-piece), counting the stored ones", async () => {
    const w = await write("methods.zip");
    const methods = new Map((await readZip(w.tmpPath)).map((e) => [e.name.slice("Zoë Test/".length), e.method]));
    expect(methods.get("a/small.dcm")).toBe(8);
    expect(methods.get("b/multi-piece.dcm")).toBe(8);
    expect(methods.get("b/noise.jpg")).toBe(0);
    expect(methods.get("b/noise-large.bin")).toBe(0);
    expect(w.storedEntries).toBe(2);
    // The smooth data really shrank.
    expect(w.size).toBeLessThan(statSync(plan.entries[3]!.source.absPath).size);
  });

  it("--store writes every entry stored, the same content", async () => {
    const w = await write("store.zip", { store: true });
    const entries = await readZip(w.tmpPath);
    expect(entries.every((e) => e.method === 0)).toBe(true);
    expect(w.storedEntries).toBe(0);
    expect(unzipTest(w.tmpPath).ok).toBe(true);
  });

  it("Zip64 records (forced on small data) are accepted by unzip, 7z and yauzl", async () => {
    const w = await write("z64.zip", { forceZip64: true });
    expect(unzipTest(w.tmpPath).ok).toBe(true);
    expect(sevenZipTest(w.tmpPath).ok).toBe(true);
    const entries = await readZip(w.tmpPath);
    expect(entries).toHaveLength(plan.entries.length + 1);
    expect(entries[3]!.data.equals(contents.get("b/multi-piece.dcm")!)).toBe(true);
    // The end of central directory defers to the Zip64 record.
    const raw = readFileSync(w.tmpPath);
    expect(raw.readUInt16LE(raw.length - 22 + 10)).toBe(0xffff);
  });

  for (const store of [false, true]) {
    it(`a manifest in several chunks is one entry, with a data descriptor (${store ? "stored" : "deflated"}); a central directory of several blocks`, async () => {
      // 1,500 entries with long names: the central directory (~110 bytes each) spans three 64 KiB blocks.
      const many: PlannedEntry[] = [];
      for (let i = 0; i < 1500; i++) many.push(entry(`many/${"long-folder-name-".repeat(3)}${i}/IM${i}.dcm`, Buffer.from(`file ${i}`)));
      const chunked = (files: Iterable<ManifestFile>) => [Buffer.from("[\n"), ...[...files].map((f) => Buffer.from(JSON.stringify(f) + ",\n")), Buffer.from("]\n")];
      let made = 0;
      const lazily = function* (files: Iterable<ManifestFile>) {
        for (const c of chunked(files)) {
          made++;
          yield c;
        }
      };
      const w = await writeZip({ root: "Zoë Test", excluded: [], entries: many }, { outDir: join(dir, "out"), fileName: `chunks-${store}.zip`, level: 6, store, buildManifest: lazily, readThread: false });
      expect(unzipTest(w.tmpPath).ok).toBe(true);
      expect(sevenZipTest(w.tmpPath).ok).toBe(true);
      const entries = await readZip(w.tmpPath);
      expect(entries).toHaveLength(1501);
      for (const [i, e] of entries.slice(0, -1).entries()) expect(e.data.toString()).toBe(`file ${i}`);
      const manifest = entries.at(-1)!;
      expect(manifest.name).toBe("Zoë Test/manifest.json");
      expect(manifest.method).toBe(store ? 0 : 8);
      expect(manifest.data.equals(Buffer.concat(chunked(w.files)))).toBe(true);
      expect(made).toBe(1502); // every chunk was asked for, one at a time
      // A multi-chunk manifest is written like a multi-piece file: general purpose flag bit 3, sizes after the data.
      const raw = readFileSync(w.tmpPath);
      expect(raw.readUInt32LE(raw.length - 22 + 12)).toBeGreaterThan(2 * 65536); // the central directory's size
      const local = raw.indexOf(Buffer.from("Zoë Test/manifest.json")) - 30;
      expect(raw.readUInt32LE(local)).toBe(0x04034b50);
      expect(raw.readUInt16LE(local + 6) & 0x08).toBe(0x08);
      rmSync(w.tmpPath);
    });
  }

  for (const store of [true, false]) {
    it(`asks for the manifest's chunks as the zip takes them, not all at once (${store ? "stored" : "deflated"})`, async () => {
      const out = join(dir, `pace-${store}`);
      mkdirSync(out, { recursive: true });
      const chunk = randomBytes(64 << 10); // incompressible: deflated or not, the zip grows by about a chunk each
      const sizeOnDisk = () => {
        const tmp = readdirSync(out).find((n) => n.endsWith(".tmp"));
        return tmp ? statSync(join(out, tmp)).size : 0;
      };
      const seen: number[] = [];
      const paced = function* () {
        for (let k = 0; k < 600; k++) {
          seen.push(sizeOnDisk());
          yield chunk;
        }
      };
      const w = await writeZip(plan, { outDir: out, fileName: "pace.zip", level: 6, store, buildManifest: paced, readThread: false });
      // Had all 600 chunks (37.5 MiB) been made at once, nothing of them would be on disk when the last one is asked
      // for; paced, all but the few waiting in the queue and the output's buffers (8 MiB at most) are.
      expect(seen[599]! - seen[0]!).toBeGreaterThan(20 << 20);
      const entries = await readZip(w.tmpPath);
      expect(entries.at(-1)!.data.length).toBe(600 * chunk.length);
      expect(entries.at(-1)!.data.subarray(599 * chunk.length).equals(chunk)).toBe(true);
      rmSync(out, { recursive: true, force: true });
    });
  }

  for (const store of [true, false]) {
    it(`reads into one buffer whatever the file sizes, reusing it as a ring (${store ? "stored" : "deflated"})`, async () => {
      // Sizes that change from file to file and pieces of several sizes: buffers allocated per size and dropped when
      // the sizes changed were shared memory freed only by chance (the peak RSS grew with large files). Now the read
      // buffer is one, allocated once, and the data still comes out right through every wrap of the ring.
      const mixed: PlannedEntry[] = [];
      for (let i = 0; i < 40; i++) {
        const size = [0, 1, 700, 65_535, 65_536, 300_000, 1_048_575, 1_048_577, 2_500_000, 4_194_305, 9_000_001][i % 11]!;
        mixed.push(entry(`mixed/${String(i).padStart(2, "0")}.dcm`, i % 3 === 0 ? randomBytes(size) : smooth(size, i)));
      }
      const inner = workerLoader();
      const asked: number[] = [];
      const counting: PieceLoader = { ...inner, buffer: (bytes) => (asked.push(bytes), inner.buffer(bytes)), close: () => inner.close() };
      const w = await writeZip({ root: "Zoë Test", excluded: [], entries: mixed }, {
        outDir: join(dir, "out"), fileName: `ring-${store}.zip`, level: 1, store, buildManifest, parallel: 2, readThread: true, startedLoader: counting,
      });
      expect(asked).toHaveLength(1);
      expect(unzipTest(w.tmpPath).ok).toBe(true);
      const entries = await readZip(w.tmpPath);
      for (const e of entries.slice(0, -1)) expect(e.data.equals(contents.get(e.name.slice("Zoë Test/".length))!), e.name).toBe(true);
      for (const f of w.files) expect(f.sha256).toBe(createHash("sha256").update(contents.get(f.path)!).digest("hex"));
      rmSync(w.tmpPath);
    });
  }

  it("--max-size stops the zip and removes the temporary file", async () => {
    const err = await write("small-limit.zip", { maxSize: 100_000 }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe("MAX_SIZE_EXCEEDED");
    expect(readdirSync(join(dir, "out")).filter((f) => f.includes("small-limit"))).toEqual([]);
  });

  it("an interrupt stops the zip and removes the temporary file", async () => {
    const ac = new AbortController();
    ac.abort();
    const err = await write("aborted.zip", { signal: ac.signal }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe("INTERRUPTED");
    expect(readdirSync(join(dir, "out")).filter((f) => f.includes("aborted"))).toEqual([]);
  });
});
