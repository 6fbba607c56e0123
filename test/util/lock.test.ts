import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDirs } from "../helpers/cli.js";
import { acquireLock, withLock } from "../../src/util/lock.js";
import { processStartTime } from "../../src/util/process.js";

const tmp = tempDirs("sb-lock-");

/** The pid of a process that has exited (so it is certainly not running now). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

describe("the one lock (owner pid + host + start time)", () => {
  it("records its owner and removes only its own lock file on release", async () => {
    const path = join(tmp(), "x.lock");
    const lock = await acquireLock(path, { timeoutMs: 1000 });
    const owner = JSON.parse(readFileSync(path, "utf8"));
    expect(owner).toMatchObject({ pid: process.pid, host: hostname(), start: processStartTime(process.pid) });
    await lock.release();
    expect(existsSync(path)).toBe(false);
  });

  it("never waits unbounded for a live holder: LOCK_TIMEOUT after the given time", async () => {
    const path = join(tmp(), "x.lock");
    const held = await acquireLock(path, { timeoutMs: 1000 });
    await expect(acquireLock(path, { timeoutMs: 200 })).rejects.toMatchObject({ code: "LOCK_TIMEOUT", retryable: true });
    await held.release();
  });

  it("stops waiting when the signal aborts (SIGTERM)", async () => {
    const path = join(tmp(), "x.lock");
    const held = await acquireLock(path, { timeoutMs: 1000 });
    const ac = new AbortController();
    const p = acquireLock(path, { timeoutMs: 60_000, signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expect(p).rejects.toMatchObject({ code: "INTERRUPTED" });
    await held.release();
  });

  it("breaks a lock whose owner is gone, one whose pid was reused (other start time), and an unreadable one", async () => {
    const dir = tmp();
    const planted = [
      { host: hostname(), pid: deadPid(), start: "", token: "a", takenAt: "", purpose: "t" },
      // Our own (live) pid, but a start time that is not ours: a reused pid, not the owner.
      { host: hostname(), pid: process.pid, start: "other-boot:1", token: "b", takenAt: "", purpose: "t" },
    ];
    for (const [i, owner] of planted.entries()) {
      const path = join(dir, `${i}.lock`);
      writeFileSync(path, JSON.stringify(owner));
      await withLock(path, { timeoutMs: 500 }, async () => {
        expect(JSON.parse(readFileSync(path, "utf8")).pid).toBe(process.pid);
      });
    }
    const junk = join(dir, "junk.lock");
    writeFileSync(junk, "999999@somewhere");
    expect(await withLock(junk, { timeoutMs: 500 }, async () => 7)).toBe(7);
  });

  it("keeps another host's fresh lock, and breaks it once it is older than staleMs", async () => {
    const path = join(tmp(), "x.lock");
    writeFileSync(path, JSON.stringify({ host: "other-host.example", pid: 1, start: "", token: "z", takenAt: "", purpose: "t" }));
    await expect(acquireLock(path, { timeoutMs: 100, staleMs: 60_000 })).rejects.toMatchObject({ code: "LOCK_TIMEOUT" });
    const lock = await acquireLock(path, { timeoutMs: 2000, staleMs: 0 });
    await lock.release();
  });

  it("serialises 40 concurrent holders: never two inside at once", async () => {
    const path = join(tmp(), "x.lock");
    let inside = 0;
    let max = 0;
    await Promise.all(
      Array.from({ length: 40 }, () =>
        withLock(path, { timeoutMs: 20_000 }, async () => {
          max = Math.max(max, ++inside);
          await new Promise((r) => setImmediate(r));
          inside--;
        }),
      ),
    );
    expect(max).toBe(1);
  });
});
