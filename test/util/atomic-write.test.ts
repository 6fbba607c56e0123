import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readJsonFile, writeFileAtomic, writeJsonAtomic } from "../../src/util/atomic-write.js";

let dir: string;
let umask: number;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "sb-aw-"));
  umask = process.umask(0o022);
});
afterEach(() => {
  process.umask(umask);
  rmSync(dir, { recursive: true, force: true });
});

describe("the one atomic durable write", () => {
  it("writes 0600 by default under umask 022, 0640 when asked, and leaves no temporary file", async () => {
    const a = join(dir, "a.json");
    await writeJsonAtomic(a, { x: 1 });
    expect(statSync(a).mode & 0o777).toBe(0o600);
    const b = join(dir, "b.json");
    await writeFileAtomic(b, "x", { mode: 0o640 });
    expect(statSync(b).mode & 0o777).toBe(0o640);
    expect(readdirSync(dir).sort()).toEqual(["a.json", "b.json"]);
  });

  it("replaces a planted symlink instead of writing through it", async () => {
    const victim = join(dir, "victim.txt");
    writeFileSync(victim, "keep me");
    const p = join(dir, "entry.json");
    symlinkSync(victim, p);
    await writeJsonAtomic(p, { mine: true });
    expect(readFileSync(victim, "utf8")).toBe("keep me");
    expect(statSync(p).isFile()).toBe(true);
  });

  it("100 concurrent writers of one file: each temporary name unique, the result is one whole write", async () => {
    const p = join(dir, "q.json");
    await Promise.all(Array.from({ length: 100 }, (_, i) => writeJsonAtomic(p, { i, pad: "x".repeat(10_000) })));
    expect(typeof (await readJsonFile<{ i: number }>(p, "q"))!.i).toBe("number");
    expect(readdirSync(dir)).toEqual(["q.json"]);
  });

  it("reports a torn or edited JSON file (STATE_DAMAGED), and a symlink, instead of skipping it", async () => {
    const p = join(dir, "torn.json");
    writeFileSync(p, '{"format":"scanbridge-forward","id":"ab');
    await expect(readJsonFile(p, "queue entry")).rejects.toMatchObject({ code: "STATE_DAMAGED" });
    const l = join(dir, "link.json");
    symlinkSync("/etc/hostname", l);
    await expect(readJsonFile(l, "queue entry")).rejects.toMatchObject({ code: "STATE_DAMAGED" });
    expect(await readJsonFile(join(dir, "absent.json"), "x")).toBeUndefined();
    expect(existsSync(p)).toBe(true);
  });
});
