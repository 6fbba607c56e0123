import { execFileSync, spawnSync } from "node:child_process";
import yauzl from "yauzl";

/** One entry read back from a zip with yauzl (an independent reader). */
export interface ReadEntry {
  name: string;
  data: Buffer;
  utf8Flag: boolean;
  method: number;
}

/** Read every entry of a zip fully with yauzl (small test packages only). */
export function readZip(path: string): Promise<ReadEntry[]> {
  return new Promise((resolve, reject) => {
    yauzl.open(path, { lazyEntries: true, decodeStrings: true, validateEntrySizes: true }, (err, zip) => {
      if (err || !zip) return reject(err ?? new Error(`cannot open ${path}`));
      const out: ReadEntry[] = [];
      zip.on("error", reject);
      zip.on("end", () => resolve(out));
      zip.on("entry", (entry: yauzl.Entry) => {
        zip.openReadStream(entry, (e2, stream) => {
          if (e2 || !stream) return reject(e2 ?? new Error(`cannot read ${entry.fileName}`));
          const chunks: Buffer[] = [];
          stream.on("data", (c: Buffer) => chunks.push(c));
          stream.on("error", reject);
          stream.on("end", () => {
            out.push({ name: entry.fileName, data: Buffer.concat(chunks), utf8Flag: (entry.generalPurposeBitFlag & 0x800) !== 0, method: entry.compressionMethod });
            zip.readEntry();
          });
        });
      });
      zip.readEntry();
    });
  });
}

/** `unzip -t` exit status and output. */
export function unzipTest(path: string): { ok: boolean; output: string } {
  const r = spawnSync("unzip", ["-t", path], { encoding: "utf8", maxBuffer: 64 << 20 });
  return { ok: r.status === 0, output: r.stdout + r.stderr };
}

/** `7z t` exit status and output. */
export function sevenZipTest(path: string): { ok: boolean; output: string } {
  const r = spawnSync("7z", ["t", path], { encoding: "utf8", maxBuffer: 64 << 20 });
  return { ok: r.status === 0, output: r.stdout + r.stderr };
}

/** Entry names as `zipinfo -1` lists them. */
export function zipinfoNames(path: string): string[] {
  return execFileSync("zipinfo", ["-1", path], { encoding: "utf8", maxBuffer: 256 << 20 }).split("\n").filter(Boolean);
}

/** Uncompressed size of every entry, read with yauzl by streaming each entry through (verifies CRCs and sizes). */
export function zipEntrySizes(path: string): Promise<Map<string, number>> {
  return new Promise((resolve, reject) => {
    yauzl.open(path, { lazyEntries: true, validateEntrySizes: true }, (err, zip) => {
      if (err || !zip) return reject(err ?? new Error(`cannot open ${path}`));
      const out = new Map<string, number>();
      zip.on("error", reject);
      zip.on("end", () => resolve(out));
      zip.on("entry", (entry: yauzl.Entry) => {
        zip.openReadStream(entry, (e2, stream) => {
          if (e2 || !stream) return reject(e2 ?? new Error(`cannot read ${entry.fileName}`));
          let n = 0;
          stream.on("data", (c: Buffer) => (n += c.length));
          stream.on("error", reject);
          stream.on("end", () => {
            out.set(entry.fileName, n);
            zip.readEntry();
          });
        });
      });
      zip.readEntry();
    });
  });
}
