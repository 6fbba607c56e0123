/**
 * Archives that are not plain zips: .7z, .rar, .tar, .tar.gz (and Deflate64 zip entries, which Windows Explorer
 * writes for large files). They are listed and extracted with 7-Zip compiled to WASM (7z-wasm, which includes
 * the unRAR code), never with a native program, and held to the same limits as zips: names checked, no links,
 * no encryption, sizes and ratio checked on the listing before anything is written, and what was written
 * checked against the listing afterwards.
 */
import { createReadStream } from "node:fs";
import { lstat, mkdir, mkdtemp, readdir, rm, stat, type FileHandle } from "node:fs/promises";
import { basename, dirname, join, relative } from "node:path";
import type { Readable } from "node:stream";
import type { SevenZipModuleFactory } from "7z-wasm";
import { classifyFile } from "../pack/classify.js";
import { SNIFF_HEAD as HEAD_BYTES } from "./extract.js";
import { DEFAULT_EXTRACT_LIMITS, totalRatioExceeded, type ExtractLimits } from "../util/extract-limits.js";
import { hashFileRange } from "../util/hash.js";
import { checkEntryName, collisionKey } from "./names.js";
import type { ExtractedFile, PackageProblem } from "./verify.js";
import type { ZipEntryRecord } from "./zip-reader.js";
import { SIG_END, SIG_LOCAL } from "../util/zip-format.js";

/** Archive formats recognised by their first bytes. */
export type ArchiveFormat = "zip" | "7z" | "rar" | "gzip" | "tar" | "bzip2" | "xz" | "unknown";

/** The format of a file from its first bytes (a .7z renamed .zip is a 7z). */
export function sniffArchive(head: Buffer): ArchiveFormat {
  if (head.length >= 4 && head.readUInt32LE(0) === SIG_LOCAL) return "zip";
  if (head.length >= 4 && head.readUInt32LE(0) === SIG_END) return "zip"; // empty zip
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]))) return "7z";
  if (head.length >= 4 && head.toString("latin1", 0, 4) === "Rar!") return "rar";
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.length >= 3 && head.toString("latin1", 0, 3) === "BZh") return "bzip2";
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return "xz";
  if (head.length >= 262 && head.toString("latin1", 257, 262) === "ustar") return "tar";
  return "unknown";
}

/** One item of a 7-Zip listing (`7z l -slt`). */
interface ListedItem {
  path: string;
  folder: boolean;
  size: number;
  packed: number;
  attributes: string;
  encrypted: boolean;
}

/**
 * 7-Zip (WASM), loaded on first use: most packages are zips that never need it, and loading it costs every watch
 * process about 0.1 s at start-up. A CommonJS module: Node hands its exports (the factory) to the default import.
 */
async function sevenZip(): Promise<SevenZipModuleFactory> {
  const mod = (await import("7z-wasm")) as unknown as { default?: SevenZipModuleFactory };
  return (mod.default ?? mod) as unknown as SevenZipModuleFactory;
}

interface SevenZipRun {
  code: number;
  out: string[];
}

/** Run 7-Zip (WASM) with `dir` mounted at /in and `outDir` at /out; a fresh instance per run. */
async function run7z(args: (inDir: string, outDir: string) => string[], dir: string, outDir?: string): Promise<SevenZipRun> {
  const out: string[] = [];
  let code = 0;
  const sz = await (await sevenZip())({ print: (s: string) => out.push(s), printErr: (s: string) => out.push(s), quit: (c: number) => (code = c) } as never);
  sz.FS.mkdir("/in");
  sz.FS.mount(sz.NODEFS, { root: dir } as never, "/in");
  if (outDir) {
    sz.FS.mkdir("/out");
    sz.FS.mount(sz.NODEFS, { root: outDir } as never, "/out");
  }
  try {
    sz.callMain(args("/in", "/out"));
  } catch (err) {
    const status = (err as { status?: number }).status;
    code = typeof status === "number" ? status : 2;
  }
  return { code, out };
}

function parseListing(lines: string[]): ListedItem[] {
  const items: ListedItem[] = [];
  let cur: Record<string, string> | undefined;
  const flush = () => {
    if (cur?.Path !== undefined) {
      items.push({
        path: cur.Path,
        folder: cur.Folder === "+" || /^D/.test(cur.Attributes ?? ""),
        size: Number(cur.Size ?? 0) || 0,
        packed: Number(cur["Packed Size"] ?? 0) || 0,
        attributes: cur.Attributes ?? "",
        encrypted: cur.Encrypted === "+",
      });
    }
    cur = undefined;
  };
  for (const raw of lines.join("\n").split("\n")) {
    const line = raw.replace(/^.*?(?=Path = )/, (m) => (m.includes("=") ? m : "")); // progress text before the first field
    if (line.trim() === "") {
      flush();
      continue;
    }
    const m = /^([A-Za-z ]+?) = (.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === "Path" && cur?.Path !== undefined) flush();
    cur ??= {};
    cur[m[1]!] = m[2]!;
  }
  flush();
  return items;
}

/**
 * Extract a .7z, .rar, .tar or .gz archive into `dest` (an empty private folder) after checking its listing.
 * Returns the files written (relative to `dest`, hashed and classified) or the problems that stopped it.
 */
export async function extractOtherArchive(archive: string, dest: string, limits: Partial<ExtractLimits> = {}): Promise<{ written: ExtractedFile[]; problems: PackageProblem[] }> {
  const l = { ...DEFAULT_EXTRACT_LIMITS, ...limits };
  const problems: PackageProblem[] = [];
  const name = basename(archive);
  const listing = await run7z((i) => ["l", "-slt", "-ba", "-bsp0", "-p-", `${i}/${name}`], dirname(archive));
  const items = parseListing(listing.out);
  if (listing.code !== 0 || items.length === 0) {
    const encrypted = listing.out.some((s) => /password|encrypted/i.test(s));
    problems.push(encrypted
      ? { code: "ENCRYPTED_ENTRY", message: "The archive is password-protected" }
      : { code: "NOT_A_ZIP", message: "The archive cannot be read (damaged, cut short, or a format scanbridge does not open)" });
    return { written: [], problems };
  }
  if (items.length > l.maxEntries) problems.push({ code: "TOO_MANY_ENTRIES", message: `More than ${l.maxEntries} entries` });
  let total = 0;
  const keys = new Set<string>();
  for (const it of items) {
    const n = it.path.replace(/\\/g, "/").normalize("NFC") + (it.folder ? "/" : "");
    const codes = checkEntryName(n);
    for (const c of codes) problems.push({ code: c, message: "Unsafe name in the archive", entry: n });
    if (/^.?\s*-?l/.test(it.attributes.replace(/^[A-Z]*\s+/, ""))) problems.push({ code: "SYMLINK_ENTRY", message: "Symbolic link entry", entry: n });
    if (it.encrypted) problems.push({ code: "ENCRYPTED_ENTRY", message: "Encrypted entry (password-protected archive)", entry: n });
    const key = collisionKey(n.replace(/\/$/, ""));
    if (keys.has(key)) problems.push({ code: "DUPLICATE_ENTRY", message: "The same name appears twice", entry: n });
    keys.add(key);
    total += it.size;
  }
  const archiveSize = (await stat(archive)).size;
  if (total > l.maxUnpackedBytes) problems.push({ code: "TOO_LARGE", message: `Declared uncompressed size ${total} bytes exceeds the limit of ${l.maxUnpackedBytes}` });
  const ratio = totalRatioExceeded(total, archiveSize, l);
  if (ratio !== undefined) problems.push({ code: "COMPRESSION_RATIO", message: `Overall compression ratio ${Math.round(ratio)}:1 exceeds ${l.maxRatio}:1 (archive bomb?)` });
  if (problems.length > 0) return { written: [], problems };

  const x = await run7z((i, o) => ["x", "-y", "-bsp0", "-p-", "-snld", `-o${o}`, `${i}/${name}`], dirname(archive), dest);
  if (x.code !== 0) return { written: [], problems: [{ code: "ENTRY_UNREADABLE", message: "The archive could not be extracted completely (damaged?)" }] };

  // What was written must be what was listed: regular files and folders only, sizes as declared.
  const declared = new Map(items.filter((i) => !i.folder).map((i) => [i.path.replace(/\\/g, "/").normalize("NFC"), i.size]));
  const written: ExtractedFile[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const d of await readdir(dir)) {
      const p = join(dir, d);
      const st = await lstat(p);
      const rel = relative(dest, p).split("\\").join("/");
      if (st.isDirectory()) await walk(p);
      else if (!st.isFile()) problems.push({ code: "SYMLINK_ENTRY", message: "The archive holds a link or special file", entry: rel });
      else {
        const want = declared.get(rel.normalize("NFC"));
        if (want === undefined || want !== st.size) problems.push({ code: "ENTRY_UNREADABLE", message: "A file came out of the archive with another name or size than listed", entry: rel });
        // One read of the file for its SHA-256 and its head (copied: the read buffers are reused).
        let head = Buffer.alloc(0);
        const sha256 = (await hashFileRange(p, { onData: (piece) => {
          if (head.length < HEAD_BYTES) head = Buffer.concat([head, piece.subarray(0, HEAD_BYTES - head.length)]);
        } })).digest("hex");
        written.push({ rel, size: st.size, sha256, classification: classifyFile(rel, head) });
        if (written.reduce((s, f) => s + f.size, 0) > l.maxUnpackedBytes) throw new Error("archive unpacked to more than it declared");
      }
    }
  };
  await walk(dest);
  return { written, problems };
}

/**
 * A decoder for the Deflate64 entries of a zip (method 9), for verify's data pass: the first request extracts the
 * zip once with 7-Zip (WASM) into a private folder beside it, matched to the central directory by order; each
 * entry is then streamed from there (and its CRC-32 and size checked by the caller as for any entry).
 */
export function deflate64Decoder(zipPath: string, tmpParent: string): { open: (fh: FileHandle, e: ZipEntryRecord) => Promise<Readable>; cleanup: () => Promise<void> } {
  let ready: Promise<{ dir: string; paths: string[] }> | undefined;
  const prepare = async () => {
    await mkdir(tmpParent, { recursive: true, mode: 0o700 });
    const dir = await mkdtemp(join(tmpParent, ".deflate64-"));
    const name = basename(zipPath);
    const list = await run7z((i) => ["l", "-slt", "-ba", "-bsp0", "-p-", `${i}/${name}`], dirname(zipPath));
    const items = parseListing(list.out);
    const x = await run7z((i, o) => ["x", "-y", "-bsp0", "-p-", "-snld", `-o${o}`, `${i}/${name}`], dirname(zipPath), dir);
    if (x.code !== 0) throw new Error("7-Zip could not extract the Deflate64 entries");
    return { dir, paths: items.map((i) => i.path) };
  };
  return {
    open: async (_fh, e) => {
      ready ??= prepare();
      const { dir, paths } = await ready;
      const p = paths[e.index];
      if (p === undefined) throw new Error("Deflate64 entry not found in 7-Zip's listing");
      const abs = join(dir, p);
      if (!abs.startsWith(dir + "/")) throw new Error("Deflate64 entry name leaves the folder");
      return createReadStream(abs);
    },
    cleanup: async () => {
      if (!ready) return;
      const r = await ready.catch(() => undefined);
      if (r) await rm(r.dir, { recursive: true, force: true });
    },
  };
}
