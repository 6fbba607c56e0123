// One contract, two implementations: the local folder and SFTP against a real OpenSSH sshd on loopback.
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDestination, formatDestination, type Destination } from "../../src/transfer/destination.js";
import { LocalDestination } from "../../src/transfer/local.js";
import { connectSftp } from "../../src/transfer/sftp.js";
import { hashRemoteRange } from "../../src/transfer/upload.js";
import { startSshd, type SshdServer } from "../helpers/sshd.js";

interface Harness {
  name: string;
  setup(): Promise<void>;
  open(): Promise<Destination>;
  teardown(): Promise<void>;
  /** Where a destination path is on this machine's disk (to check modes). */
  onDisk(path: string): string;
}

let sshd: SshdServer;
let localRoot: string;

const harnesses: Harness[] = [
  {
    name: "local folder",
    async setup() {
      localRoot = mkdtempSync(join(tmpdir(), "sb-contract-"));
    },
    async open() {
      return new LocalDestination(join(localRoot, "dest", randomBytes(4).toString("hex")));
    },
    async teardown() {
      rmSync(localRoot, { recursive: true, force: true });
    },
    onDisk: (p) => p,
  },
  {
    name: "sftp (OpenSSH sshd)",
    async setup() {
      sshd = await startSshd();
    },
    async open() {
      const folder = `dest/${randomBytes(4).toString("hex")}`;
      return connectSftp({
        host: sshd.host,
        port: sshd.port,
        folder,
        url: sshd.url(folder),
        auth: { username: sshd.user, password: sshd.password },
        trust: { host: sshd.host, port: sshd.port, knownHostsFiles: [sshd.knownHostsPath] },
        connectTimeoutMs: 10_000,
        idleTimeoutMs: 20_000,
      });
    },
    async teardown() {
      await sshd?.stop();
    },
    onDisk: (p) => join(sshd.home, p),
  },
];

async function readAll(d: Destination, path: string): Promise<Buffer> {
  const st = await d.stat(path);
  const r = await d.openRead(path);
  try {
    return await r.read(st!.size, 0);
  } finally {
    await r.close();
  }
}

for (const h of harnesses) {
  describe(`Destination contract: ${h.name}`, () => {
    let d: Destination;
    beforeAll(async () => {
      await h.setup();
      d = await h.open();
      await d.mkdirp(d.folder);
    });
    afterAll(async () => {
      await d?.close();
      await h.teardown();
    });

    it("mkdirp creates nested folders and is idempotent", async () => {
      const nested = d.pathOf("a/b/c");
      await d.mkdirp(nested);
      await d.mkdirp(nested);
      expect(await d.stat(nested)).toMatchObject({ isDirectory: true });
    });

    it("uploaded copies are private under umask 022: files 0640, folders 0750 (issue 10)", async () => {
      const old = process.umask(0o022);
      try {
        const dir = d.pathOf(`private-${randomBytes(3).toString("hex")}/sub`);
        await d.mkdirp(dir);
        const w = await d.openWrite(`${dir}/p.zip.partial`, { truncate: true });
        await w.write(Buffer.from("patient data"), 0);
        await w.close();
        await d.writeSmall(`${dir}/p.zip.sha256`, Buffer.from("x"));
        expect(statSync(h.onDisk(dir)).mode & 0o777).toBe(0o750);
        expect(statSync(h.onDisk(`${dir}/p.zip.partial`)).mode & 0o777).toBe(0o640);
        expect(statSync(h.onDisk(`${dir}/p.zip.sha256`)).mode & 0o777).toBe(0o640);
      } finally {
        process.umask(old);
      }
    });

    it("stat/exists report missing files as undefined/false", async () => {
      expect(await d.stat(d.pathOf("nope"))).toBeUndefined();
      expect(await d.exists(d.pathOf("nope"))).toBe(false);
    });

    it("writes at offsets with many writes in flight, and resumes a partial without truncating it", async () => {
      const data = randomBytes(3 * 1024 * 1024 + 123);
      const p = d.pathOf(".José Álvarez.zip.partial");
      const w = await d.openWrite(p, { truncate: true });
      const half = 1_500_001;
      const writes: Promise<void>[] = [];
      for (let off = 0; off < half; off += 65536) writes.push(w.write(data.subarray(off, Math.min(half, off + 65536)), off));
      await Promise.all(writes);
      await w.close();
      expect((await d.stat(p))?.size).toBe(half);
      // Resume: open without truncating, continue at the partial's size.
      const w2 = await d.openWrite(p, { truncate: false });
      await Promise.all([w2.write(data.subarray(half, 2_000_000), half), w2.write(data.subarray(2_000_000), 2_000_000)]);
      await w2.close();
      expect((await d.stat(p))?.size).toBe(data.length);
      expect((await readAll(d, p)).equals(data)).toBe(true);
      // Reading back in parallel windows gives the same hash as the data.
      const r = await d.openRead(p);
      const { hash, bytes } = await hashRemoteRange(r, 0, data.length, { requests: 16, chunkSize: 32768 });
      await r.close();
      expect(bytes).toBe(data.length);
      expect(hash.digest("hex")).toBe(createHash("sha256").update(data).digest("hex"));
    });

    it("truncate: true empties an existing file", async () => {
      const p = d.pathOf("t.bin");
      await d.writeSmall(p, Buffer.from("0123456789"));
      const w = await d.openWrite(p, { truncate: true });
      await w.write(Buffer.from("ab"), 0);
      await w.close();
      expect((await readAll(d, p)).toString()).toBe("ab");
    });

    it("renames, replacing an existing target", async () => {
      const a = d.pathOf("r-a");
      const b = d.pathOf("r-b");
      await d.writeSmall(a, Buffer.from("new"));
      await d.writeSmall(b, Buffer.from("old"));
      const r = await d.rename(a, b);
      expect(r.atomic).toBe(true);
      expect(await d.exists(a)).toBe(false);
      expect((await readAll(d, b)).toString()).toBe("new");
    });

    it("removes files, and removing a missing file is fine", async () => {
      const p = d.pathOf("gone");
      await d.writeSmall(p, Buffer.from("x"));
      await d.remove(p);
      await d.remove(p);
      expect(await d.exists(p)).toBe(false);
    });

    it("reads a short result only at end of file", async () => {
      const p = d.pathOf("short");
      await d.writeSmall(p, Buffer.from("hello"));
      const r = await d.openRead(p);
      expect((await r.read(100, 2)).toString()).toBe("llo");
      expect((await r.read(100, 5)).length).toBe(0);
      await r.close();
    });

    it("lists a folder: names, sizes, modification times and kinds", async () => {
      const folder = d.pathOf("listing");
      await d.mkdirp(d.pathOf("listing/sub"));
      await d.writeSmall(d.pathOf("listing/José Álvarez.zip"), Buffer.from("12345"));
      await d.writeSmall(d.pathOf("listing/José Álvarez.zip.sha256"), Buffer.from("x"));
      const entries = (await d.list(folder)).sort((a, b) => a.name.localeCompare(b.name));
      expect(entries.map((e) => e.name)).toEqual(["José Álvarez.zip", "José Álvarez.zip.sha256", "sub"]);
      const zip = entries[0]!;
      expect(zip).toMatchObject({ size: 5, isFile: true, isDirectory: false });
      expect(Math.abs(zip.mtimeMs - Date.now())).toBeLessThan(120_000);
      expect(entries[2]).toMatchObject({ isFile: false, isDirectory: true });
      expect((await d.stat(d.pathOf("listing/José Álvarez.zip")))?.mtimeMs).toBe(zip.mtimeMs);
      const err = await d.list(d.pathOf("no/such/folder")).then(() => undefined, (e) => e);
      expect(err?.code).toBe("REMOTE_NOT_FOUND");
    });

    it("downloads to a local file with many reads in flight, hashing on the way", async () => {
      const data = randomBytes(2 * 1024 * 1024 + 777);
      const p = d.pathOf("dl.bin");
      const w = await d.openWrite(p, { truncate: true });
      await w.write(data, 0);
      await w.close();
      const local = join(mkdtempSync(join(tmpdir(), "sb-dl-")), "out.bin");
      writeFileSync(local, "old content to be replaced, longer than nothing");
      const r = await d.download(p, local);
      expect(r).toEqual({ size: data.length, sha256: createHash("sha256").update(data).digest("hex") });
      expect(readFileSync(local).equals(data)).toBe(true);
      // An empty file, and a missing one.
      await d.writeSmall(d.pathOf("empty"), Buffer.alloc(0));
      expect((await d.download(d.pathOf("empty"), local)).size).toBe(0);
      expect(readFileSync(local).length).toBe(0);
      const err = await d.download(d.pathOf("missing.zip"), local).then(() => undefined, (e) => e);
      expect(err?.code).toBe("REMOTE_NOT_FOUND");
      rmSync(join(local, ".."), { recursive: true, force: true });
    });

    it("reports a missing folder as a typed error without the path in the message", async () => {
      const p = d.pathOf("no/such/dir/José.zip");
      const err = await d.openWrite(p, { truncate: true }).then(() => undefined, (e) => e);
      expect(err?.code).toBe("REMOTE_NOT_FOUND");
      expect(err.exitCode).toBe(5);
      expect(String(err.message)).not.toContain("José");
    });
  });
}

describe("parseDestination", () => {
  it("parses sftp URLs, relative and absolute folders, ports and IPv6", () => {
    expect(parseDestination("sftp://jo@h.example.org/incoming", "/x")).toEqual({ kind: "sftp", user: "jo", host: "h.example.org", port: 22, folder: "incoming" });
    expect(parseDestination("sftp://jo@h:2222//srv/in/", "/x")).toEqual({ kind: "sftp", user: "jo", host: "h", port: 2222, folder: "/srv/in" });
    expect(parseDestination("sftp://jo@[::1]:2200/", "/x")).toEqual({ kind: "sftp", user: "jo", host: "::1", port: 2200, folder: "." });
    expect(parseDestination("sftp://j%40o@h/a%20b", "/x")).toMatchObject({ user: "j@o", folder: "a b" });
  });
  it("parses local folders and file URLs", () => {
    expect(parseDestination("out", "/work")).toEqual({ kind: "local", folder: "/work/out" });
    expect(parseDestination("/srv/outbox", "/work")).toEqual({ kind: "local", folder: "/srv/outbox" });
    expect(parseDestination("file:///srv/out%20box", "/work")).toEqual({ kind: "local", folder: "/srv/out box" });
  });
  it("refuses passwords in the URL and unknown schemes", () => {
    expect(() => parseDestination("sftp://jo:secret@h/in", "/")).toThrow(/password/);
    expect(() => parseDestination("ftp://h/in", "/")).toThrow(/Unsupported/);
  });
  it("formats without secrets", () => {
    expect(formatDestination(parseDestination("sftp://jo@h/in", "/"))).toBe("sftp://jo@h:22/in");
    expect(formatDestination(parseDestination("sftp://jo@h//srv/in", "/"))).toBe("sftp://jo@h:22//srv/in");
  });
});
