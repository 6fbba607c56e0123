/**
 * End to end: the built CLI (`node bin/scanbridge.js watch ...`) against real folders, real processes,
 * real signals. Build first (`npx tsc -p tsconfig.json`).
 */
import { copyFileSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, statSync, writeFileSync, writeSync, ftruncateSync, fsyncSync, readdirSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { slowIt } from "../helpers/slow.js";
import {
  EVIL_ABSOLUTE_PATH,
  hostileVariants,
  pseudoRandomStream,
  sha256Of,
  smallPackageBytes,
  writeHostilePackage,
  writeSealedPackage,
  writeSmallPackage,
  type BuiltPackage,
  type HostileVariant,
} from "../../fixtures/package-builder.js";
import { ls, run, start, tmp, until, walk } from "./helpers.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The JSON Lines events of a `watch --json` run (the final result line, `{"ok":...}`, is left out). */
function jsonLines(out: string): Array<Record<string, unknown>> {
  return out
    .split("\n")
    .filter((l) => l.startsWith("{") && l.endsWith("}"))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((e) => !("ok" in e));
}

/** The final result of a `watch --json` run: its last line. */
function finalResult<T>(out: string): T {
  const last = out.trim().split("\n").at(-1)!;
  return JSON.parse(last) as T;
}

function auditRecords(file: string): Array<Record<string, unknown>> {
  return readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Every file of a ready folder matches its manifest (size and SHA-256), and nothing else is there but the page watch writes. */
function assertCompleteDelivery(folder: string): void {
  const manifest = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8")) as { files: Array<{ path: string; size: number; sha256: string }> };
  const files = walk(folder).filter((f) => f !== "manifest.json" && f !== "index.html" && !f.startsWith("index_files/"));
  expect(files).toEqual(manifest.files.map((f) => f.path).sort());
  for (const f of manifest.files) {
    const p = join(folder, f.path);
    expect(statSync(p).size).toBe(f.size);
    expect(createHash("sha256").update(readFileSync(p)).digest("hex")).toBe(f.sha256);
  }
}

function layout(root: string) {
  const drop = join(root, "drop");
  const ready = join(root, "ready");
  mkdirSync(drop, { recursive: true });
  // The watcher's state folder defaults to scanbridge-state beside ready/: nothing of its own is in the drop.
  const state = join(root, "scanbridge-state");
  return { drop, ready, state, archive: join(state, "archive"), quarantine: join(state, "quarantine"), processing: join(state, "claims"), staging: join(ready, ".scanbridge-staging"), audit: join(state, "audit.jsonl") };
}

let big: BuiltPackage;
let bigDir: string;
const BIG_NAME = "Large Study Patient";

beforeAll(async () => {
  bigDir = tmp("sb-big-");
  const files = Array.from({ length: 6 }, (_, i) => ({ path: `CT/series${i}.dcm`, data: { size: 25_000_000, stream: () => pseudoRandomStream(25_000_000, i + 1) } }));
  big = await writeSealedPackage(bigDir, BIG_NAME, files, { store: true });
}, 120_000);

describe("watch: completeness", () => {
  it("does not take a package written slowly in chunks (preallocated or growing) before it is complete", async () => {
    const home = tmp();
    const d = layout(home);
    const w = start(["watch", d.drop, "--ready", d.ready, "--settle", "2", "--rescan", "1", "--json"], home);
    await until(() => w.output().includes('"started"'), 15_000, "watch start");

    const growing = smallPackageBytes("Slow Growing");
    const prealloc = smallPackageBytes("Slow Prealloc");
    const sealed = smallPackageBytes("Slow Sealed");
    const fGrow = openSync(join(d.drop, "Slow Growing.zip"), "w");
    const fPre = openSync(join(d.drop, "Slow Prealloc.zip"), "w");
    ftruncateSync(fPre, prealloc.length); // what Samba does: full size at once, zeros, filled in later (chokidar#471)
    const fSealed = openSync(join(d.drop, "Slow Sealed.zip"), "w");
    const chunks = 6;
    let sawEarly = false;
    for (let i = 0; i < chunks; i++) {
      const part = (b: Buffer) => b.subarray(Math.floor((b.length * i) / chunks), Math.floor((b.length * (i + 1)) / chunks));
      writeSync(fGrow, part(growing));
      writeSync(fPre, part(prealloc), 0, part(prealloc).length, Math.floor((prealloc.length * i) / chunks));
      writeSync(fSealed, part(sealed));
      for (let t = 0; t < 8; t++) {
        await sleep(100);
        if (ls(d.ready).some((n) => n.startsWith("Slow")) || ls(d.processing).length > 0) sawEarly = true;
      }
    }
    for (const f of [fGrow, fPre, fSealed]) {
      fsyncSync(f);
      closeSync(f);
    }
    const writtenAt = Date.now();
    writeFileSync(join(d.drop, "Slow Sealed.zip.sha256"), `${sha256Of(sealed)}  Slow Sealed.zip\n`);
    expect(sawEarly).toBe(false);

    await until(() => ["Slow Growing", "Slow Prealloc", "Slow Sealed"].every((n) => existsSync(join(d.ready, n, "manifest.json"))), 20_000, "all three ready");
    w.child.kill("SIGTERM");
    const r = await w.done;
    expect(r.code).toBe(0);
    const events = jsonLines(r.stdout);
    const claimed = events.filter((e) => e.event === "claimed");
    expect(claimed).toHaveLength(3);
    for (const c of claimed) expect(Date.parse(c.time as string)).toBeGreaterThanOrEqual(writtenAt - 50);
    // The sealed one is taken on its marker, at once; the others only after the settle time.
    const why = claimed.map((c) => c.why).sort();
    expect(why).toEqual(["marker-matches", "settled", "settled"]);
    expect(events.at(-1)?.event).toBe("stopped");
    for (const n of ["Slow Growing", "Slow Prealloc", "Slow Sealed"]) assertCompleteDelivery(join(d.ready, n));
    // No patient names in events without --verbose.
    expect(r.stdout).not.toContain("Slow");
  }, 60_000);

  it("never overwrites an earlier delivery with the same name: the second gets a date suffix", async () => {
    const home = tmp();
    const d = layout(home);
    await writeSmallPackage(d.drop, "Same Name");
    expect((await run(["watch", d.drop, "--ready", d.ready, "--once", "--settle", "0"], home)).code).toBe(0);
    writeFileSync(join(d.ready, "Same Name", "staff-notes.txt"), "added by staff");
    await writeSmallPackage(d.drop, "Same Name");
    expect((await run(["watch", d.drop, "--ready", d.ready, "--once", "--settle", "0"], home)).code).toBe(0);
    const folders = ls(d.ready).filter((n) => !n.startsWith("."));
    expect(folders).toHaveLength(2);
    expect(folders[0]).toBe("Same Name");
    expect(folders[1]).toMatch(/^Same Name \(\d{4}-\d\d-\d\d \d{6}\)$/);
    expect(readFileSync(join(d.ready, "Same Name", "staff-notes.txt"), "utf8")).toBe("added by staff");
    assertCompleteDelivery(join(d.ready, folders[1]!));
    expect(ls(d.archive)).toHaveLength(4); // both zips and markers, the second with a suffix
  });

  it("ignores .partial and hidden upload names", async () => {
    const home = tmp();
    const d = layout(home);
    const p = await writeSmallPackage(d.drop, "Uploading");
    copyFileSync(p.zipPath, join(d.drop, ".Other.zip.partial"));
    copyFileSync(p.zipPath, join(d.drop, "Third.zip.partial"));
    const r = await run(["watch", d.drop, "--ready", d.ready, "--once", "--settle", "0"], home);
    expect(r.code).toBe(0);
    expect(ls(d.ready)).toEqual([".scanbridge-staging", "Uploading"]);
    expect(ls(d.drop)).toEqual(expect.arrayContaining([".Other.zip.partial", "Third.zip.partial"]));
  });
});

describe("watch: rejection", () => {
  it("quarantines a package whose marker does not match, with a reason file", async () => {
    const home = tmp();
    const d = layout(home);
    await writeHostilePackage(d.drop, "wrong-marker", "Marker Mismatch");
    const r = await run(["watch", d.drop, "--ready", d.ready, "--once", "--settle", "1"], home);
    expect(r.code).toBe(0);
    expect(ls(d.quarantine)).toEqual(["Marker Mismatch.reason.json", "Marker Mismatch.zip", "Marker Mismatch.zip.sha256"]);
    const reason = JSON.parse(readFileSync(join(d.quarantine, "Marker Mismatch.reason.json"), "utf8")) as { problems: Array<{ code: string }> };
    expect(reason.problems.map((p) => p.code)).toEqual(["SIDECAR_MISMATCH"]);
    expect(ls(d.ready)).toEqual([".scanbridge-staging"]);
  });

  it("checks the marker of a settled package on the private copy: a mismatch is quarantined, a match is ready", async () => {
    // --settle 0: both are settled at first sight, so the settler takes them without hashing them in the drop;
    // the only hash is the private copy's, and that one decides.
    const home = tmp();
    const d = layout(home);
    await writeHostilePackage(d.drop, "wrong-marker", "Marker Mismatch");
    await writeSmallPackage(d.drop, "Marker Good");
    const r = await run(["watch", d.drop, "--ready", d.ready, "--once", "--settle", "0", "--json"], home);
    expect(r.code).toBe(0);
    const claimed = jsonLines(r.stdout).filter((e) => e.event === "claimed");
    expect(claimed.map((c) => c.why)).toEqual(["settled", "settled"]);
    expect(ls(d.quarantine)).toEqual(["Marker Mismatch.reason.json", "Marker Mismatch.zip", "Marker Mismatch.zip.sha256"]);
    const reason = JSON.parse(readFileSync(join(d.quarantine, "Marker Mismatch.reason.json"), "utf8")) as { problems: Array<{ code: string }> };
    expect(reason.problems.map((p) => p.code)).toEqual(["SIDECAR_MISMATCH"]);
    expect(ls(d.ready)).toEqual([".scanbridge-staging", "Marker Good"]);
    assertCompleteDelivery(join(d.ready, "Marker Good"));
  });

  it("quarantines every hostile zip and writes nothing outside ready/", async () => {
    const home = tmp();
    const d = layout(home);
    const variants = (Object.keys(hostileVariants) as HostileVariant[]).filter((v) => v !== "bomb-ratio");
    for (const v of variants) await writeHostilePackage(d.drop, v, `Hostile ${v}`);
    // --sealed-only: the strict policy, under which a package without manifest (hand-made) is refused too.
    const r = await run(["watch", d.drop, "--ready", d.ready, "--once", "--settle", "1", "--concurrency", "4", "--json", "--sealed-only"], home);
    expect(r.code).toBe(0);
    const result = finalResult<{ ok: boolean; quarantined: number; ready: number; packages: Array<{ problems: string[] }> }>(r.stdout);
    expect(result.ok).toBe(true);
    expect(result.quarantined).toBe(variants.length);
    expect(result.ready).toBe(0);
    for (const v of variants) {
      const reason = JSON.parse(readFileSync(join(d.quarantine, `Hostile ${v}.reason.json`), "utf8")) as { problems: Array<{ code: string }> };
      expect(reason.problems.map((p) => p.code)).toContain(hostileVariants[v]);
    }
    expect(ls(d.ready)).toEqual([".scanbridge-staging"]);
    expect(ls(d.staging)).toEqual([]);
    expect(ls(d.processing)).toEqual([]);
    expect(existsSync(EVIL_ABSOLUTE_PATH)).toBe(false);
    expect(walk(home).filter((f) => f.includes("scanbridge-evil"))).toEqual([]);
    expect(ls(home)).toEqual(["drop", "ready", "scanbridge-state"]);
    // The drop folder is read for packages only: the watcher leaves nothing of its own there.
    expect(ls(d.drop)).toEqual([]);
  }, 60_000);
});

describe("watch: concurrency and volume", () => {
  it("two watchers on one folder process each of 50 packages exactly once", async () => {
    const home = tmp();
    const d = layout(home);
    const args = ["watch", d.drop, "--ready", d.ready, "--settle", "1", "--rescan", "1", "--concurrency", "3", "--json"];
    const a = start(args, home);
    const b = start(args, home);
    await until(() => a.output().includes('"started"') && b.output().includes('"started"'), 15_000, "both started");
    await Promise.all(Array.from({ length: 50 }, (_, i) => writeSmallPackage(d.drop, `Patient ${String(i).padStart(2, "0")}`)));
    await until(() => ls(d.archive).filter((f) => f.endsWith(".zip")).length >= 50, 60_000, "50 archived");
    await sleep(500);
    a.child.kill("SIGTERM");
    b.child.kill("SIGTERM");
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect(ra.code).toBe(0);
    expect(rb.code).toBe(0);
    const readyA = jsonLines(ra.stdout).filter((e) => e.event === "ready").length;
    const readyB = jsonLines(rb.stdout).filter((e) => e.event === "ready").length;
    expect(readyA + readyB).toBe(50);
    const folders = ls(d.ready).filter((n) => !n.startsWith("."));
    expect(folders).toHaveLength(50);
    expect(folders.every((n) => /^Patient \d\d$/.test(n))).toBe(true); // no " (date)" duplicates
    expect(ls(d.archive).filter((f) => f.endsWith(".zip"))).toHaveLength(50);
    expect(ls(d.quarantine)).toEqual([]);
    expect(ls(d.processing)).toEqual([]);
    const ids = auditRecords(d.audit).filter((r) => r.event === "ready").map((r) => r.id);
    expect(ids).toHaveLength(50);
    expect(new Set(ids).size).toBe(50);
    const check = await run(["audit", "verify", d.audit], home);
    expect(check.code).toBe(0);
  }, 90_000);

  it("processes 100 packages arriving at once; the audit chain verifies and tampering is detected", async () => {
    const home = tmp();
    const d = layout(home);
    await Promise.all(Array.from({ length: 100 }, (_, i) => writeSmallPackage(d.drop, `Bulk ${String(i).padStart(3, "0")}`, { marker: i % 2 === 0 })));
    const r = await run(["watch", d.drop, "--ready", d.ready, "--once", "--settle", "1", "--concurrency", "4"], home);
    expect(r.code).toBe(0);
    expect(ls(d.ready).filter((n) => !n.startsWith("."))).toHaveLength(100);
    expect(ls(d.archive).filter((f) => f.endsWith(".zip"))).toHaveLength(100);
    expect(ls(d.drop).filter((f) => f.endsWith(".zip"))).toEqual([]);
    const records = auditRecords(d.audit);
    expect(records.filter((x) => x.event === "ready")).toHaveLength(100);
    expect(readFileSync(d.audit, "utf8")).not.toContain("Bulk"); // no names unless --audit-names

    const ok = await run(["audit", "verify", d.audit, "--json"], home);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).records).toBe(records.length);

    const lines = readFileSync(d.audit, "utf8").split("\n");
    const tampered = [...lines];
    const i = lines.findIndex((l, n) => n >= 10 && l.includes('"result":"ready"'));
    tampered[i] = tampered[i]!.replace(/"result":"ready"/, '"result":"quarantined"');
    expect(tampered[i]).not.toBe(lines[i]);
    writeFileSync(join(home, "tampered.jsonl"), tampered.join("\n"));
    const bad = await run(["audit", "verify", join(home, "tampered.jsonl")], home);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain(`line ${i + 2}:`); // the record after the changed one no longer chains

    const removed = [...lines];
    removed.splice(20, 1);
    writeFileSync(join(home, "removed.jsonl"), removed.join("\n"));
    expect((await run(["audit", "verify", join(home, "removed.jsonl")], home)).code).toBe(3);
  }, 90_000);
});

describe("watch: crash safety and stopping", () => {
  slowIt("kill -9 during extraction, then restart: the package ends fully in ready/, once", async () => {
    // The random kill time is logged and named in every assertion of that round, so a failure can be replayed.
    const randomMs = 200 + Math.floor(Math.random() * 2000);
    console.info(`kill -9 test: the third kill comes ${randomMs} ms after start (random)`);
    const plan: Array<[string, "staging" | "claim" | number]> = [
      ["during extraction", "staging"],
      ["shortly after claim", "claim"],
      [`at a random moment (${randomMs} ms after start)`, randomMs],
    ];
    for (const [attempt, killWhen] of plan) {
      const home = tmp();
      const d = layout(home);
      copyFileSync(big.zipPath, join(d.drop, `${BIG_NAME}.zip`));
      copyFileSync(big.markerPath!, join(d.drop, `${BIG_NAME}.zip.sha256`));
      const w = start(["watch", d.drop, "--ready", d.ready, "--settle", "1", "--json"], home);
      if (killWhen === "staging") {
        await until(() => walk(d.staging).length >= 2, 30_000, "extraction under way");
      } else if (killWhen === "claim") {
        // Claimed = the package has left the drop (renamed into a claim folder); a claim folder still being
        // prepared (.new-*) leaves the package in the drop, and a restart simply claims it afresh.
        await until(() => !existsSync(join(d.drop, `${BIG_NAME}.zip`)), 30_000, "claim").catch((e: Error) => {
          throw new Error(`${e.message}\n${w.output()}\n${walk(home).join("\n")}`);
        });
      } else {
        await sleep(killWhen);
      }
      w.child.kill("SIGKILL");
      await w.done;
      if (existsSync(join(d.ready, BIG_NAME))) assertCompleteDelivery(join(d.ready, BIG_NAME)); // never half-visible
      const again = await run(["watch", d.drop, "--ready", d.ready, "--once", "--settle", "1", "--json"], home);
      expect(again.code, `${attempt}: ${again.stderr}`).toBe(0);
      expect(ls(d.ready), attempt).toEqual([".scanbridge-staging", BIG_NAME]);
      assertCompleteDelivery(join(d.ready, BIG_NAME));
      expect(ls(d.staging), attempt).toEqual([]);
      expect(ls(d.processing), attempt).toEqual([]);
      expect(ls(d.archive), attempt).toEqual([`${BIG_NAME}.zip`, `${BIG_NAME}.zip.sha256`]);
      expect(ls(d.drop).filter((f) => f.endsWith(".zip")), attempt).toEqual([]);
      const events = auditRecords(d.audit).map((r) => r.event);
      expect(events.filter((e) => e === "ready"), attempt).toHaveLength(1);
      if (typeof killWhen === "string") expect(events, `${attempt}: ${events.join(",")}`).toContain("requeued");
      const verified = await run(["audit", "verify", d.audit], home);
      expect(verified.code, `${attempt}: ${verified.stderr}`).toBe(0);
    }
  }, 150_000);

  it("SIGTERM while extracting rolls the package back into the queue and exits 0", async () => {
    const home = tmp();
    const d = layout(home);
    copyFileSync(big.zipPath, join(d.drop, `${BIG_NAME}.zip`));
    copyFileSync(big.markerPath!, join(d.drop, `${BIG_NAME}.zip.sha256`));
    const w = start(["watch", d.drop, "--ready", d.ready, "--settle", "1", "--json"], home);
    await until(() => walk(d.staging).length >= 1, 30_000, "extraction under way");
    w.child.kill("SIGTERM");
    const r = await w.done;
    expect(r.code).toBe(0);
    const events = jsonLines(r.stdout).map((e) => e.event);
    if (events.includes("ready")) {
      // It finished just before the signal landed: then it must be complete.
      assertCompleteDelivery(join(d.ready, BIG_NAME));
    } else {
      expect(events).toContain("requeued");
      expect(ls(d.drop)).toEqual(expect.arrayContaining([`${BIG_NAME}.zip`, `${BIG_NAME}.zip.sha256`]));
      expect(ls(d.ready)).toEqual([".scanbridge-staging"]);
    }
    expect(ls(d.staging)).toEqual([]);
    expect(ls(d.processing)).toEqual([]);
  }, 60_000);
});

describe("verify and watch command lines", () => {
  it("verify: exit 0 with the summary; exit 3 listing every problem without the patient name", async () => {
    const home = tmp();
    const good = await writeSmallPackage(home, "Ana Example");
    const ok = await run(["verify", good.zipPath], home);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain("Package OK");
    expect(ok.stdout).toContain("Patient: Ana Example");
    const badPkg = await writeHostilePackage(join(home, "bad"), "crc-error", "Hidden Name");
    const bad = await run(["verify", badPkg.zipPath], home);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain("CRC_MISMATCH");
    expect(bad.stderr).toContain("FILE_HASH_MISMATCH");
    expect(bad.stderr).not.toContain("Hidden");
    const json = await run(["verify", badPkg.zipPath, "--json"], home);
    expect(json.code).toBe(3);
    const out = JSON.parse(json.stdout) as { ok: boolean; error: { code: string; problems: Array<{ code: string }> } };
    expect(out.error.code).toBe("PACKAGE_INVALID");
    expect(out.error.problems.map((p) => p.code).sort()).toEqual(["CRC_MISMATCH", "FILE_HASH_MISMATCH"]);
    expect(json.stdout).not.toContain("Hidden");
  });

  it("watch without --ready is a usage error (exit 2)", async () => {
    const home = tmp();
    mkdirSync(join(home, "drop"));
    const r = await run(["watch", join(home, "drop")], home);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--ready");
    expect(readdirSync(join(home, "drop"))).toEqual([]);
  });
});

afterAll(() => {
  // temporary folders are left for inspection on failure; the OS cleans /tmp
});
