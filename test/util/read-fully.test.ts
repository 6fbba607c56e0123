import { randomBytes } from "node:crypto";
import { open, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDirs } from "../helpers/cli.js";
import { readFully, type PositionalReader } from "../../src/util/read-fully.js";

const tmp = tempDirs("sb-readfully-");

async function fileOf(bytes: Buffer) {
  const path = join(tmp(), "f.bin");
  await writeFile(path, bytes);
  return open(path, "r");
}

describe("readFully: the project's one read-until-full loop", () => {
  it("fills the buffer from a position of a real file", async () => {
    const data = randomBytes(300_000);
    const fh = await fileOf(data);
    try {
      const got = await readFully(fh, Buffer.alloc(100_000), 123_456);
      expect(got.equals(data.subarray(123_456, 223_456))).toBe(true);
    } finally {
      await fh.close();
    }
  });

  it("returns fewer bytes only at the end of the file, and none past it", async () => {
    const data = randomBytes(5000);
    const fh = await fileOf(data);
    try {
      const buf = Buffer.alloc(4096);
      const tail = await readFully(fh, buf, 3000);
      expect(tail.length).toBe(2000);
      expect(tail.equals(data.subarray(3000))).toBe(true);
      expect(tail.buffer).toBe(buf.buffer); // the caller's buffer, cut: no copy
      expect((await readFully(fh, Buffer.alloc(10), 5000)).length).toBe(0);
      expect((await readFully(fh, Buffer.alloc(10), 9000)).length).toBe(0);
    } finally {
      await fh.close();
    }
  });

  it("reads on after short reads (a reader that gives at most 7 bytes a call) until the buffer is full", async () => {
    const data = randomBytes(1000);
    const fh = await fileOf(data);
    let calls = 0;
    const stingy: PositionalReader = {
      read: (buffer, offset, length, position) => {
        calls++;
        return fh.read(buffer, offset, Math.min(7, length), position);
      },
    };
    try {
      const got = await readFully(stingy, Buffer.alloc(500), 250);
      expect(got.equals(data.subarray(250, 750))).toBe(true);
      expect(calls).toBe(Math.ceil(500 / 7));
    } finally {
      await fh.close();
    }
  });

  it("an empty buffer reads nothing", async () => {
    let calls = 0;
    const never: PositionalReader = {
      read: async () => {
        calls++;
        return { bytesRead: 0 };
      },
    };
    expect((await readFully(never, Buffer.alloc(0), 0)).length).toBe(0);
    expect(calls).toBe(0);
  });
});
