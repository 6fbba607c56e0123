/**
 * The trust boundary of watch, in-process: the state folder (created private, refused when unsafe), private modes
 * for everything holding patient data under umask 022, packages carrying scanbridge control files quarantined,
 * and the bytes verified and archived being the bytes taken, even while the uploader still holds the file open.
 */
import { createHash } from "node:crypto";
import { chmodSync, chownSync, linkSync, mkdirSync, openSync, readFileSync, statSync, symlinkSync, writeFileSync, writeSync, closeSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sealedEntries, writeHostilePackage, writeRawZip, writeSmallPackage } from "../../fixtures/package-builder.js";
import { OWNER_ONLY, openStateDir, privateModes } from "../../src/ingest/state.js";
import { claimPackage, ensureDirs, ingestDirs } from "../../src/ingest/store.js";
import { runWatch, type WatchEvent } from "../../src/ingest/watcher.js";
import { run, tmp, walk } from "./helpers.js";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const mode = (p: string) => statSync(p).mode & 0o777;
const base = (drop: string, ready: string) => ({ drop, ready, settleSeconds: 0, concurrency: 2, once: true, allowUnsealed: false, limits: {}, auditNames: false, rescanSeconds: 30, giveUpSeconds: 3600, staleClaimSeconds: 120 });

let umask: number;
beforeEach(() => {
  umask = process.umask(0o022);
});
afterEach(() => {
  process.umask(umask);
});

describe("the state folder", () => {
  it("is created 0700 with its sub-folders; a group/other-writable, foreign-owned or linked one is refused", async () => {
    const home = tmp();
    const state = join(home, "state");
    const d = await openStateDir(state, OWNER_ONLY);
    expect(mode(state)).toBe(0o700);
    for (const p of [d.claims, d.queue, d.notifications, d.reconcile]) expect(mode(p)).toBe(0o700);

    chmodSync(state, 0o770);
    await expect(openStateDir(state, OWNER_ONLY)).rejects.toMatchObject({ code: "STATE_UNSAFE", exitCode: 2 });
    chmodSync(state, 0o700);
    chownSync(state, 65534, 65534);
    await expect(openStateDir(state, OWNER_ONLY)).rejects.toMatchObject({ code: "STATE_UNSAFE" });
    const link = join(home, "link");
    symlinkSync(state, link);
    await expect(openStateDir(link, OWNER_ONLY)).rejects.toMatchObject({ code: "STATE_UNSAFE" });
  });
});

describe("watch refuses an unsafe state folder at start (exit 2, nothing taken)", () => {
  it("inside the drop folder (STATE_IN_DROP), writable by others (STATE_UNSAFE)", async () => {
    const home = tmp();
    const drop = join(home, "drop");
    await writeSmallPackage(drop, "Waits Patient");
    const inside = await run(["watch", drop, "--ready", join(home, "ready"), "--state", join(drop, "state"), "--once"], home);
    expect(inside.code).toBe(2);
    expect(inside.stderr).toContain("STATE_IN_DROP");
    const open = join(home, "open-state");
    mkdirSync(open);
    chmodSync(open, 0o777);
    const unsafe = await run(["watch", drop, "--ready", join(home, "ready"), "--state", open, "--once"], home);
    expect(unsafe.code).toBe(2);
    expect(unsafe.stderr).toContain("STATE_UNSAFE");
    expect(readdirSync(drop).sort()).toEqual(["Waits Patient.zip", "Waits Patient.zip.sha256"]);
  }, 60_000);
});

describe("private modes under umask 022", () => {
  it("ready/, archive, quarantine, reason and state files: 0600 / 0700 by default", async () => {
    const home = tmp();
    const drop = join(home, "drop");
    const ready = join(home, "ready");
    await writeSmallPackage(drop, "Mode Patient");
    await writeHostilePackage(drop, "zip-slip", "Mode Hostile");
    const s = await runWatch(base(drop, ready), { signal: new AbortController().signal });
    expect(s).toMatchObject({ ready: 1, quarantined: 1 });
    const state = join(home, "scanbridge-state");
    expect(mode(ready)).toBe(0o700);
    expect(mode(state)).toBe(0o700);
    const pkg = join(ready, "Mode Patient");
    expect(mode(pkg)).toBe(0o700);
    expect(mode(join(pkg, "series1"))).toBe(0o700);
    for (const f of walk(pkg)) expect(mode(join(pkg, f)), f).toBe(0o600);
    for (const f of readdirSync(join(state, "archive"))) expect(mode(join(state, "archive", f)), f).toBe(0o600);
    const q = readdirSync(join(state, "quarantine"));
    expect(q).toEqual(["Mode Hostile.reason.json", "Mode Hostile.zip", "Mode Hostile.zip.sha256"]);
    for (const f of q) expect(mode(join(state, "quarantine", f)), f).toBe(0o600);
    for (const f of walk(state)) expect(mode(join(state, f)) & 0o077, f).toBe(0);
  });

  it("with a staff group: files 0640, folders 0750, owned by that group", async () => {
    const home = tmp();
    const drop = join(home, "drop");
    const ready = join(home, "ready");
    await writeSmallPackage(drop, "Group Patient");
    const gid = process.getgid!();
    const s = await runWatch({ ...base(drop, ready), modes: privateModes(String(gid)) }, { signal: new AbortController().signal });
    expect(s.ready).toBe(1);
    const pkg = join(ready, "Group Patient");
    expect(mode(pkg)).toBe(0o750);
    for (const f of walk(pkg)) {
      expect(mode(join(pkg, f)), f).toBe(0o640);
      expect(statSync(join(pkg, f)).gid).toBe(gid);
    }
    const archive = join(home, "scanbridge-state", "archive");
    for (const f of readdirSync(archive)) expect(mode(join(archive, f))).toBe(0o640);
  });
});

describe("nothing from a package is configuration", () => {
  it("a package carrying <Root>/.scanbridge-reconcile.json is quarantined with CONTROL_FILE; nothing reaches ready/", async () => {
    const home = tmp();
    const drop = join(home, "drop");
    const ready = join(home, "ready");
    mkdirSync(drop);
    const files = [
      { path: "series1/img1.dcm", data: Buffer.concat([Buffer.alloc(128), Buffer.from("DICM"), Buffer.from("pixels")]) },
      { path: ".scanbridge-reconcile.json", data: JSON.stringify({ patientId: "CHOSEN-BY-SENDER", issuer: "HOSP" }) },
    ];
    const zip = writeRawZip(sealedEntries("Control Patient", files));
    writeFileSync(join(drop, "Control Patient.zip"), zip);
    writeFileSync(join(drop, "Control Patient.zip.sha256"), `${sha(zip)}  Control Patient.zip\n`);
    const events: WatchEvent[] = [];
    const s = await runWatch(base(drop, ready), { signal: new AbortController().signal, onEvent: (e) => void events.push(e) });
    expect(s).toMatchObject({ ready: 0, quarantined: 1 });
    const reason = JSON.parse(readFileSync(join(home, "scanbridge-state", "quarantine", "Control Patient.reason.json"), "utf8")) as { problems: Array<{ code: string }> };
    expect(reason.problems.map((p) => p.code)).toContain("CONTROL_FILE");
    expect(readdirSync(ready)).toEqual([".scanbridge-staging"]);
    expect(walk(join(ready, ".scanbridge-staging"))).toEqual([]);
  });
});

describe("claim: one rename out of the drop, then a private copy", () => {
  it("bytes written by an uploader still holding the file open after the claim change nothing that is verified or archived", async () => {
    const home = tmp();
    const drop = join(home, "drop");
    const ready = join(home, "ready");
    const pkg = await writeSmallPackage(drop, "Open Handle");
    const fd = openSync(pkg.zipPath, "r+");
    const d = ingestDirs(drop, ready, await openStateDir(join(home, "scanbridge-state"), OWNER_ONLY), OWNER_ONLY);
    await ensureDirs(d);
    const c = await claimPackage(d, "Open Handle.zip", "test");
    if (c.kind !== "claimed") throw new Error(c.kind);
    // The uploader appends through its old handle after the claim.
    writeSync(fd, Buffer.from("APPENDED AFTER SETTLE"), 0, 21, pkg.size);
    closeSync(fd);
    expect(c.claim.sha256).toBe(pkg.sha256);
    expect(sha(readFileSync(c.claim.zip))).toBe(pkg.sha256);
    expect(mode(c.claim.zip)).toBe(0o600);
    expect(readdirSync(drop)).toEqual([]);
  });

  it("refuses symlinks and hard links in the drop without opening them", async () => {
    const home = tmp();
    const drop = join(home, "drop");
    const ready = join(home, "ready");
    const outside = await writeSmallPackage(join(home, "outside"), "Elsewhere");
    mkdirSync(drop, { recursive: true });
    symlinkSync(outside.zipPath, join(drop, "Linked.zip"));
    const d = ingestDirs(drop, ready, await openStateDir(join(home, "scanbridge-state"), OWNER_ONLY), OWNER_ONLY);
    await ensureDirs(d);
    expect(await claimPackage(d, "Linked.zip", "test")).toMatchObject({ kind: "refused", code: "NOT_REGULAR_FILE" });
    linkSync(outside.zipPath, join(drop, "Hard.zip"));
    expect(await claimPackage(d, "Hard.zip", "test")).toMatchObject({ kind: "refused", code: "HARD_LINKED" });
    expect(readdirSync(drop).sort()).toEqual(["Hard.zip", "Linked.zip"]);
    expect(readdirSync(d.processing)).toEqual([]);
  });
});

describe("existing installations (state kept in the drop by an older version)", () => {
  it("ignores the old state in the drop and says exactly what to move", async () => {
    const home = tmp();
    const drop = join(home, "drop");
    const ready = join(home, "ready");
    mkdirSync(join(drop, "processing", "old-claim"), { recursive: true });
    mkdirSync(join(drop, "archive"));
    writeFileSync(join(drop, "archive", "Old.zip"), "old");
    writeFileSync(join(drop, "audit.jsonl"), "{}\n");
    const events: WatchEvent[] = [];
    await runWatch(base(drop, ready), { signal: new AbortController().signal, onEvent: (e) => void events.push(e) });
    const w = events.find((e) => e.event === "warning") as Extract<WatchEvent, { event: "warning" }> | undefined;
    expect(w?.code).toBe("LEGACY_STATE_IN_DROP");
    const state = join(home, "scanbridge-state");
    expect(w!.message).toContain(`mv '${join(drop, "audit.jsonl")}' '${join(state, "audit-before-state-folder.jsonl")}'`);
    expect(w!.message).toContain(`mkdir -p '${join(state, "archive")}' && mv '${join(drop, "archive")}'/* '${join(state, "archive")}'/`);
    expect(w!.message).toMatch(/processing: old watcher state that uploaders could have planted; review it by hand, never copy it/);
    // Nothing of it was touched or used.
    expect(readdirSync(drop).sort()).toEqual(["archive", "audit.jsonl", "processing"]);
    expect(readFileSync(join(drop, "audit.jsonl"), "utf8")).toBe("{}\n");
  });
});
