import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { dirname, join, posix } from "node:path";
import { pipeline } from "node:stream/promises";
import { crc32 } from "node:zlib";
import { Transform } from "node:stream";
import yauzl from "yauzl";
import { InputError, throwIfAborted } from "../errors.js";
import { msg, type LocalText } from "../i18n/index.js";
import { checkEntryName, S_IFLNK, unixFileType } from "../ingest/names.js";
import type { Emit } from "../ui/events.js";
import { DEFAULT_EXTRACT_LIMITS, entryRatioExceeded, type ExtractLimits } from "../util/extract-limits.js";
import { trackTemp, untrackTemp } from "../util/tempfiles.js";
import { scanInputs, type ScanResult, type ScannedFile } from "./scan.js";

/** Limits for unpacking a nested .zip (a zip bomb must not fill the disk): the ones verify and watch use. */
export type ExpandLimits = Pick<ExtractLimits, "maxEntries" | "maxUnpackedBytes" | "maxRatio">;

/** Defaults: the shared safe-extraction limits. */
export const DEFAULT_EXPAND_LIMITS: ExpandLimits = DEFAULT_EXTRACT_LIMITS;

const isZip = (relPath: string) => /\.zip$/i.test(relPath);

function refuse(why: LocalText | string, privatePath: string): InputError {
  return new InputError("NESTED_ARCHIVE_UNSAFE", msg("pack.nestedArchiveUnsafe", { why }), {
    hint: msg("pack.nestedArchiveUnsafe.hint"),
    privateLines: [privatePath],
  });
}

/** Unpack one zip into `dest`: names checked, no links, CRC-32 and sizes checked, limits enforced. */
async function unpackZip(zipPath: string, dest: string, limits: ExpandLimits, signal?: AbortSignal): Promise<void> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(zipPath, { lazyEntries: true, autoClose: true, validateEntrySizes: true, strictFileNames: true, decodeStrings: true }, (err, z) => (err || !z ? reject(refuse(err?.message ?? msg("archive.notZip"), zipPath)) : resolve(z))),
  );
  if (zip.entryCount > limits.maxEntries) {
    zip.close();
    throw refuse(msg("archive.tooManyEntries", { max: limits.maxEntries }), zipPath);
  }
  let total = 0;
  const seen = new Set<string>();
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on("error", (e: Error) => reject(refuse(e.message, zipPath)));
      zip.on("end", () => resolve());
      zip.on("entry", (entry: yauzl.Entry) => {
        void (async () => {
          throwIfAborted(signal);
          const name = entry.fileName;
          const problems = checkEntryName(name);
          if (problems.length) throw refuse(msg("archive.unsafeName", { problems: problems.join(", ") }), zipPath);
          if (unixFileType(entry.versionMadeBy, entry.externalFileAttributes) === S_IFLNK) throw refuse(msg("archive.symlink"), zipPath);
          if ((entry.generalPurposeBitFlag & 0x1) !== 0) throw refuse(msg("archive.encrypted"), zipPath);
          if (name.endsWith("/")) return;
          const key = name.normalize("NFC").toLowerCase();
          if (seen.has(key)) throw refuse(msg("archive.duplicate"), zipPath);
          seen.add(key);
          total += entry.uncompressedSize;
          if (total > limits.maxUnpackedBytes) throw refuse(msg("archive.tooLarge"), zipPath);
          if (entryRatioExceeded(entry.uncompressedSize, entry.compressedSize, limits) !== undefined) {
            throw refuse(msg("archive.bomb"), zipPath);
          }
          const target = join(dest, ...name.split("/"));
          await mkdir(dirname(target), { recursive: true });
          const stream = await new Promise<NodeJS.ReadableStream>((res, rej) => zip.openReadStream(entry, (e, s) => (e || !s ? rej(refuse(e?.message ?? msg("archive.unreadableEntry"), zipPath)) : res(s))));
          let crc = 0;
          const check = new Transform({
            transform(chunk: Buffer, _e, cb) {
              crc = crc32(chunk, crc);
              cb(null, chunk);
            },
          });
          await pipeline(stream, check, createWriteStream(target, { flags: "wx", mode: 0o600 }), { signal });
          if (crc >>> 0 !== entry.crc32 >>> 0) throw refuse(msg("archive.crc"), zipPath);
        })().then(() => zip.readEntry(), (err) => {
          zip.close();
          reject(err);
        });
      });
      zip.readEntry();
    });
  } catch (err) {
    throw err instanceof InputError ? err : refuse((err as Error).message, zipPath);
  }
}

/**
 * `--expand-archives`: unpack every nested .zip found by the scan into a private temporary folder next to the
 * output and add its files to the scan as if they were in a folder named after the archive (`scans.zip` →
 * `scans/`). Archives inside archives, and other archive types, stay refused. Returns the temporary folder to
 * remove after packing. Source archives are only read.
 */
export async function expandArchives(scan: ScanResult, opts: { tmpParent: string; limits?: ExpandLimits; signal?: AbortSignal; emit?: Emit }): Promise<string | undefined> {
  const zips = scan.archives.filter((a) => isZip(a.relPath));
  if (zips.length === 0) return undefined;
  await mkdir(opts.tmpParent, { recursive: true });
  const tmp = await mkdtemp(join(opts.tmpParent, ".scanbridge-expand-"));
  trackTemp(tmp);
  try {
    opts.emit?.({ type: "step", id: "expand", label: msg("step.expand", { n: zips.length }) });
    for (const [i, a] of zips.entries()) {
      const dest = join(tmp, String(i));
      await unpackZip(a.absPath, dest, opts.limits ?? DEFAULT_EXPAND_LIMITS, opts.signal);
      const inner = await scanInputs([dest], { cwd: tmp, signal: opts.signal });
      if (inner.archives.length > 0) throw refuse(msg("archive.nested"), a.absPath);
      const prefix = a.relPath.replace(/\.zip$/i, "");
      const asIfFolder = (rel: string) => (prefix === "" ? rel : posix.join(prefix, rel));
      for (const f of inner.files) {
        // Read from where it was unpacked, named as if the archive were a folder; its header (read by the inner
        // scan) goes with it.
        const moved: ScannedFile = {
          absPath: f.absPath, input: a.input, relPath: asIfFolder(f.relPath), size: f.size, mtimeMs: f.mtimeMs, kind: f.kind, dir: asIfFolder(f.dir),
          studyInstanceUid: f.studyInstanceUid, seriesInstanceUid: f.seriesInstanceUid,
        };
        scan.files.push(moved);
        const read = inner.dicomHeaders?.get(f);
        if (read) scan.dicomHeaders?.set(moved, read);
      }
      for (const e of inner.excluded) scan.excluded.push({ ...e, input: a.input, path: asIfFolder(e.path) });
      for (const u of inner.unreadable) scan.unreadable.push({ ...u, input: a.input, relPath: asIfFolder(u.relPath) });
      scan.excluded.push({ input: a.input, path: a.relPath, reason: "archive-expanded", size: a.size });
    }
    scan.archives = scan.archives.filter((a) => !isZip(a.relPath));
    opts.emit?.({ type: "step-done", id: "expand", label: msg("step.expand.done", { n: zips.length }) });
    return tmp;
  } catch (err) {
    opts.emit?.({ type: "step-done", id: "expand", ok: false });
    await removeExpanded(tmp);
    throw err;
  }
}

/** Remove the temporary folder of expandArchives. */
export async function removeExpanded(tmp: string | undefined): Promise<void> {
  if (!tmp) return;
  await rm(tmp, { recursive: true, force: true });
  untrackTemp(tmp);
}
