import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { writeSync } from "node:fs";
import { open, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { tempDirs } from "../helpers/cli.js";
import { InterruptedError } from "../../src/errors.js";
import { formatSha256Line, hashFile, hashFileRange, parseSha256Line } from "../../src/util/hash.js";

const tmp = tempDirs("sb-hash-");

/** What coreutils' sha256sum says of a file. */
const sha256sum = (path: string): string => execFileSync("sha256sum", [path], { encoding: "utf8" }).slice(0, 64);

describe("the project's one whole-file SHA-256", () => {
  it("agrees with sha256sum on a path, over several 1 MiB reads", async () => {
    const path = join(tmp(), "a.bin");
    await writeFile(path, randomBytes(3 * 1024 * 1024 + 17));
    expect(await hashFile(path)).toBe(sha256sum(path));
  });

  it("hashes a file already open from its first byte, by position, and leaves it open", async () => {
    const dir = tmp();
    const path = join(dir, "b.bin");
    const data = randomBytes(2 * 1024 * 1024 + 5);
    await writeFile(path, data);
    const fh = await open(path, "r");
    try {
      // Move the descriptor's own position: the hash must not start there, nor move it.
      const head = Buffer.alloc(100);
      await fh.read(head, 0, 100, null);
      expect(await hashFile(fh)).toBe(sha256sum(path));
      const next = Buffer.alloc(10);
      const { bytesRead } = await fh.read(next, 0, 10, null);
      expect(bytesRead).toBe(10);
      expect(next.equals(data.subarray(100, 110))).toBe(true);
    } finally {
      await fh.close();
    }
  });

  it("hashes a range, and continues a hash already started", async () => {
    const path = join(tmp(), "c.bin");
    const data = randomBytes(1024 * 1024 * 2);
    await writeFile(path, data);
    const part = join(tmp(), "part.bin");
    await writeFile(part, data.subarray(1000, 1_500_000));
    expect((await hashFileRange(path, { start: 1000, end: 1_500_000 })).digest("hex")).toBe(sha256sum(part));
    const first = await hashFileRange(path, { end: 1000 });
    expect((await hashFileRange(path, { start: 1000, into: first })).digest("hex")).toBe(sha256sum(path));
    const fh = await open(path, "r");
    try {
      expect((await hashFileRange(fh, { start: 1000, end: 1_500_000 })).digest("hex")).toBe(sha256sum(part));
    } finally {
      await fh.close();
    }
  });

  it("hands each piece to onData as it is hashed, in order", async () => {
    const path = join(tmp(), "e.bin");
    const data = randomBytes(2 * 1024 * 1024 + 999);
    await writeFile(path, data);
    const copies: Buffer[] = [];
    const digest = (await hashFileRange(path, { onData: (piece) => copies.push(Buffer.from(piece)) })).digest("hex");
    expect(copies.length).toBe(3);
    expect(Buffer.concat(copies).equals(data)).toBe(true);
    expect(digest).toBe(sha256sum(path));
  });

  it("reads a small file with one buffer of its size, not two 1 MiB ones", async () => {
    const path = join(tmp(), "small.bin");
    await writeFile(path, randomBytes(100_000));
    const seen: number[] = [];
    // Counted, not replaced: every buffer the helper makes (the read that finds the end needs none of its own).
    const alloc = vi.spyOn(Buffer, "allocUnsafe");
    let digest: string;
    let made: number[];
    try {
      digest = (await hashFileRange(path, { onData: (piece) => seen.push(piece.buffer.byteLength) })).digest("hex");
    } finally {
      made = alloc.mock.calls.map(([n]) => n).filter((n) => n >= 4096);
      alloc.mockRestore();
    }
    expect(digest).toBe(sha256sum(path));
    expect(seen.length).toBe(1);
    expect(seen[0]).toBeLessThan(200_000);
    expect(made).toEqual([100_000]);
  });

  it("hashes a file that grew after it was opened, to its new end", async () => {
    const path = join(tmp(), "grows.bin");
    const first = randomBytes(300_000);
    await writeFile(path, first);
    const fh = await open(path, "r+");
    try {
      const more = randomBytes(2 * 1024 * 1024 + 3);
      let grown = false;
      // The file grows while its first (and, by its size then, only expected) piece is hashed.
      const digest = (await hashFileRange(fh, { onData: () => {
        if (!grown) {
          grown = true;
          writeSync(fh.fd, more, 0, more.length, first.length);
        }
      } })).digest("hex");
      expect(digest).toBe(sha256sum(path));
      expect(digest).toBe(createHash("sha256").update(Buffer.concat([first, more])).digest("hex"));
    } finally {
      await fh.close();
    }
  });

  it("stops with InterruptedError when aborted", async () => {
    const path = join(tmp(), "d.bin");
    await writeFile(path, randomBytes(4 * 1024 * 1024));
    const ac = new AbortController();
    ac.abort();
    await expect(hashFile(path, ac.signal)).rejects.toBeInstanceOf(InterruptedError);
    const fh = await open(path, "r");
    try {
      await expect(hashFile(fh, ac.signal)).rejects.toBeInstanceOf(InterruptedError);
      // Aborted between two reads: stops there, and the handle is still open and usable.
      const mid = new AbortController();
      let reads = 0;
      await expect(hashFileRange(fh, { signal: mid.signal, onBytes: () => (++reads === 1 ? mid.abort() : undefined) })).rejects.toBeInstanceOf(InterruptedError);
      expect(reads).toBe(1);
      await expect(hashFileRange(path, { signal: new AbortController().signal })).resolves.toBeDefined();
      expect(await hashFile(fh)).toBe(sha256sum(path));
    } finally {
      await fh.close();
    }
  });
});

describe("the project's one sha256sum line parser", () => {
  it("reads what sha256sum writes, in text and binary mode, and writes it back the same", async () => {
    const dir = tmp();
    const path = join(dir, "Ana María Núñez.zip");
    await writeFile(path, "x");
    const text = execFileSync("sha256sum", ["Ana María Núñez.zip"], { cwd: dir, encoding: "utf8" });
    const line = parseSha256Line(text);
    expect(line).toEqual({ sha256: sha256sum(path), fileName: "Ana María Núñez.zip" });
    expect(formatSha256Line(line!.sha256, line!.fileName)).toBe(text);
    const binary = execFileSync("sha256sum", ["-b", "Ana María Núñez.zip"], { cwd: dir, encoding: "utf8" });
    expect(parseSha256Line(binary)?.fileName).toBe("Ana María Núñez.zip");
    expect(parseSha256Line(text.replace("\n", "\r\n"))?.fileName).toBe("Ana María Núñez.zip");
    expect(parseSha256Line(text.toUpperCase())?.sha256).toBe(line!.sha256);
  });

  it("refuses what is not one", () => {
    expect(parseSha256Line("")).toBeUndefined();
    expect(parseSha256Line("abc  file.zip\n")).toBeUndefined();
    expect(parseSha256Line(`${"a".repeat(64)}file.zip\n`)).toBeUndefined();
    expect(parseSha256Line(`${"g".repeat(64)}  file.zip\n`)).toBeUndefined();
    expect(parseSha256Line(`${"a".repeat(64)}  \n`)).toBeUndefined();
  });
});
