/**
 * Crash points that random kills rarely hit, built exactly: the state a watcher leaves when it dies at
 * each step, then a real restart of the CLI must finish or roll back, never duplicate or lose.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeSmallPackage } from "../../fixtures/package-builder.js";
import { chooseReadyTarget, claimPackage, commitToReady, ensureDirs, ingestDirs, writeCommitState, type Claim } from "../../src/ingest/store.js";
import { OWNER_ONLY, openStateDir } from "../../src/ingest/state.js";
import { verifyPackage } from "../../src/ingest/verify.js";
import { appendAudit, auditLogIn, verifyAuditLog } from "../../src/ingest/ledger.js";
import { ls, run, tmp, walk } from "./helpers.js";

/** A pid that certainly belongs to no running process. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]);
  return Number(r.stdout.toString());
}

/** Claim a package as a watcher would (the claim must succeed). */
async function claimed(d: ReturnType<typeof ingestDirs>, file: string): Promise<Claim> {
  const c = await claimPackage(d, file, "dead-instance");
  if (c.kind !== "claimed") throw new Error(`not claimed: ${c.kind}`);
  return c.claim;
}

async function crashAt(step: "claimed" | "copy-not-on-disk" | "extracting" | "committing" | "renamed" | "archived") {
  const home = tmp();
  const drop = join(home, "drop");
  const ready = join(home, "ready");
  // The default state folder: scanbridge-state beside ready/.
  const state = join(home, "scanbridge-state");
  const d = ingestDirs(drop, ready, await openStateDir(state, OWNER_ONLY), OWNER_ONLY);
  await ensureDirs(d);
  await mkdir(drop, { recursive: true });
  await writeSmallPackage(drop, "Crash Patient");
  const claim = await claimed(d, "Crash Patient.zip");
  expect(claim).toBeDefined();
  let original: Buffer | undefined;
  if (step === "copy-not-on-disk") {
    // The private copy is named but its fsync has not finished: the uploader's file is still in the claim, and a
    // power cut may leave the copy short. (Built exactly: the claim is let finish, then put back to that moment.)
    await claim.durable;
    original = readFileSync(claim.zip);
    writeFileSync(join(claim.dir, "received"), original);
    writeFileSync(claim.zip, original.subarray(0, 100));
  } else if (step !== "claimed") {
    await mkdir(claim.staging, { recursive: true });
    const r = await verifyPackage(claim.zip, { extractTo: claim.staging, sidecarPath: claim.marker! });
    expect(r.ok).toBe(true);
    if (step !== "extracting") {
      // The hash is in the commit record from this version on; the other steps leave it out, as older versions did.
      const state = { phase: "committing" as const, from: r.extracted!.root, target: await chooseReadyTarget(d, "Crash Patient"), ...(step === "archived" ? { sha256: r.sha256 } : {}) };
      expect(state.target).toBe(join(ready, "Crash Patient"));
      await writeCommitState(claim, state);
      if (step === "renamed" || step === "archived") await commitToReady(d, claim, state);
      if (step === "archived") {
        // As the watcher does after the rename: the "ready" record, then the zip and its marker into archive/; it
        // dies before the claim folder is removed.
        await appendAudit(auditLogIn(join(home, "scanbridge-state")), { event: "ready", id: r.sha256.slice(0, 12), sha256: r.sha256, result: "ready" });
        renameSync(claim.zip, join(d.archive, "Crash Patient.zip"));
        renameSync(claim.marker!, join(d.archive, "Crash Patient.zip.sha256"));
      }
    }
  }
  // The owner dies: its claim names a pid that no longer runs.
  const ownerFile = join(claim.dir, "claim.json");
  const owner = JSON.parse(readFileSync(ownerFile, "utf8")) as { pid: number };
  owner.pid = deadPid();
  writeFileSync(ownerFile, JSON.stringify(owner));
  const again = await run(["watch", drop, "--ready", ready, "--once", "--settle", "0"], home);
  expect(again.code, again.stderr).toBe(0);
  expect(ls(ready)).toEqual([".scanbridge-staging", "Crash Patient"]);
  // The specialist's page (index.html, index_files/) is written when the package is processed, not by recovery.
  expect(walk(join(ready, "Crash Patient")).filter((f) => f !== "index.html" && !f.startsWith("index_files/"))).toEqual(["DICOMDIR", "manifest.json", "report.pdf", "series1/img1.dcm", "series1/img2.dcm"]);
  expect(ls(d.staging)).toEqual([]);
  expect(ls(d.processing)).toEqual([]);
  expect(ls(d.archive)).toEqual(["Crash Patient.zip", "Crash Patient.zip.sha256"]);
  if (original) expect(readFileSync(join(d.archive, "Crash Patient.zip")).equals(original)).toBe(true);
  expect(existsSync(join(drop, "Crash Patient.zip"))).toBe(false);
  const audit = readFileSync(join(state, "audit.jsonl"), "utf8");
  expect(audit.match(/"event":"ready"/g)).toHaveLength(1);
  expect(await verifyAuditLog(auditLogIn(state))).toMatchObject({ ok: true, keyed: true, checkpoint: "match" });
  // Nothing of the watcher's is in the drop folder.
  expect(ls(drop)).toEqual([]);
  return audit;
}

describe("restart after a crash at each step", () => {
  it("after the commit record, with the name taken meanwhile: a suffixed folder, the other left alone", async () => {
    const home = tmp();
    const drop = join(home, "drop");
    const ready = join(home, "ready");
    const d = ingestDirs(drop, ready, await openStateDir(join(home, "scanbridge-state"), OWNER_ONLY), OWNER_ONLY);
    await ensureDirs(d);
    await mkdir(drop, { recursive: true });
    await writeSmallPackage(drop, "Taken Name");
    const claim = await claimed(d, "Taken Name.zip");
    await mkdir(claim.staging, { recursive: true });
    const r = await verifyPackage(claim.zip, { extractTo: claim.staging, sidecarPath: claim.marker! });
    await writeCommitState(claim, { phase: "committing", from: r.extracted!.root, target: await chooseReadyTarget(d, "Taken Name") });
    await mkdir(join(ready, "Taken Name"));
    writeFileSync(join(ready, "Taken Name", "mine.txt"), "staff");
    const owner = JSON.parse(readFileSync(join(claim.dir, "claim.json"), "utf8")) as { pid: number };
    owner.pid = deadPid();
    writeFileSync(join(claim.dir, "claim.json"), JSON.stringify(owner));
    expect((await run(["watch", drop, "--ready", ready, "--once", "--settle", "0"], home)).code).toBe(0);
    const folders = ls(ready).filter((n) => !n.startsWith("."));
    expect(folders).toHaveLength(2);
    expect(walk(join(ready, "Taken Name"))).toEqual(["mine.txt"]);
    expect(walk(join(ready, folders[1]!))).toContain("manifest.json");
    expect(ls(d.processing)).toEqual([]);
  });

  it("right after the claim: back to the queue, then processed once", async () => {
    expect(await crashAt("claimed")).toContain('"event":"requeued"');
  });
  it("after the private copy is named, before it is on disk: the uploader's file goes back to the queue, processed once from whole bytes", async () => {
    expect(await crashAt("copy-not-on-disk")).toContain('"event":"requeued"');
  });
  it("half-way through extraction: staging removed, back to the queue, processed once", async () => {
    expect(await crashAt("extracting")).toContain('"event":"requeued"');
  });
  it("after the commit record, before the rename into ready/: the rename is finished", async () => {
    expect(await crashAt("committing")).toContain('"recovered":true');
  });
  it("after the rename into ready/, before archiving: archived, not delivered twice", async () => {
    expect(await crashAt("renamed")).toContain('"recovered":true');
  });
  it("after archiving, before the claim is released: released, the \"ready\" record not written twice", async () => {
    // Found by the random kill of watch-e2e: the zip was no longer in the claim, so recovery could not hash it and
    // wrote a second "ready" record. crashAt checks there is exactly one.
    expect(await crashAt("archived")).not.toContain('"recovered":true');
  });
});
