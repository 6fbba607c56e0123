/**
 * The remote inbox end to end: the built CLI (`watch sftp://... --ready R`) against a real OpenSSH sshd on
 * loopback, plus the poller's crash recovery against a local folder standing in for the server.
 * Build first (`npx tsc -p tsconfig.json`).
 */
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256Of, writeSmallPackage } from "../../fixtures/package-builder.js";
import { RemoteInbox, type RemoteInboxEvent } from "../../src/ingest/remote-inbox.js";
import { LocalDestination } from "../../src/transfer/local.js";
import { cleanEnv, runCli, spawnCli, waitCli } from "../helpers/cli.js";
import { startSshd, type SshdServer } from "../helpers/sshd.js";
import { ls, tmp, until, walk } from "./helpers.js";

let sshd: SshdServer;

beforeAll(async () => {
  sshd = await startSshd();
}, 60_000);

afterAll(async () => {
  await sshd?.stop();
});

/** Every file in a folder tree to the sftp account (the test writes as root). */
function chownTree(dir: string): void {
  chownSync(dir, sshd.uid, sshd.gid);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) chownTree(p);
    else chownSync(p, sshd.uid, sshd.gid);
  }
}

function events(out: string): Array<Record<string, unknown>> {
  return out
    .split("\n")
    .filter((l) => l.startsWith("{") && l.endsWith("}"))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((e) => !("ok" in e));
}

function final(out: string): Record<string, unknown> {
  return JSON.parse(out.trim().split("\n").at(-1)!) as Record<string, unknown>;
}

function watchRemote(rel: string, home: string, ready: string, extra: string[] = [], knownHosts = sshd.knownHostsPath) {
  return runCli(["watch", sshd.url(rel), "--ready", ready, "--once", "--json", "--identity", sshd.privateKeyPath, "--known-hosts", knownHosts, ...extra], {
    cwd: home,
    env: cleanEnv(home),
    timeoutMs: 90_000,
  });
}

describe("watch sftp://... (remote inbox, real sshd)", () => {
  it("downloads complete sealed packages, moves them to processed/, leaves a partial and a mismatching one", async () => {
    const inbox = sshd.mkdirOwned("inbox");
    await writeSmallPackage(inbox, "Ana Remote");
    await writeSmallPackage(inbox, "Ben Remote");
    const bad = await writeSmallPackage(inbox, "Mismatch Remote");
    writeFileSync(bad.markerPath!, `${sha256Of("something else")}  Mismatch Remote.zip\n`);
    writeFileSync(join(inbox, "Partial Remote.zip.partial"), "half a zip");
    chownTree(inbox);

    const home = tmp("sb-remote-");
    const ready = join(home, "ready");
    const r = await watchRemote("inbox", home, ready);
    expect(r.code, r.stderr).toBe(0);

    // The two good packages are extracted in ready/.
    for (const n of ["Ana Remote", "Ben Remote"]) expect(existsSync(join(ready, n, "manifest.json"))).toBe(true);
    expect(ls(ready).filter((n) => !n.startsWith("."))).toEqual(["Ana Remote", "Ben Remote"]);
    // Remote copies (with their markers) moved to processed/ beside the inbox.
    expect(ls(join(sshd.home, "processed"))).toEqual([".claiming", "Ana Remote.zip", "Ana Remote.zip.sha256", "Ben Remote.zip", "Ben Remote.zip.sha256"]);
    // Each was claimed on the server by one rename into processed/.claiming before its download; nothing is left there.
    expect(ls(join(sshd.home, "processed", ".claiming"))).toEqual([]);
    // The partial is untouched; the mismatching package is left on the server, with its marker.
    expect(ls(inbox)).toEqual(["Mismatch Remote.zip", "Mismatch Remote.zip.sha256", "Partial Remote.zip.partial"]);
    expect(readFileSync(join(inbox, "Partial Remote.zip.partial"), "utf8")).toBe("half a zip");

    // The local drop (default <state>/remote-drop, state = scanbridge-state beside ready/) handed both over;
    // they were archived in the state folder; nothing half-done is left.
    const state = join(home, "scanbridge-state");
    const drop = join(state, "remote-drop");
    expect(ls(join(state, "archive"))).toEqual(["Ana Remote.zip", "Ana Remote.zip.sha256", "Ben Remote.zip", "Ben Remote.zip.sha256"]);
    expect(ls(join(drop, ".remote-incoming"))).toEqual([]);
    expect(walk(drop).filter((f) => f.includes("Mismatch"))).toEqual([]);

    const ev = events(r.stdout);
    expect(ev.filter((e) => e.event === "downloaded")).toHaveLength(2);
    expect(ev.filter((e) => e.event === "remote-cleaned").map((e) => e.action)).toEqual(["moved", "moved"]);
    const mismatch = ev.filter((e) => e.event === "error" && e.code === "REMOTE_MARKER_MISMATCH");
    expect(mismatch).toHaveLength(1);
    expect(mismatch[0]!.id).toBe(bad.sha256.slice(0, 12));
    expect(ev.filter((e) => e.event === "ready")).toHaveLength(2);
    expect(final(r.stdout)).toMatchObject({ ok: true });
    // No patient names without --verbose.
    expect(r.stdout + r.stderr).not.toContain("Remote");
  }, 120_000);

  it("--remote-after delete removes the remote copy; an unmarked package is taken once it settles", async () => {
    const inbox = sshd.mkdirOwned("inbox-del");
    await writeSmallPackage(inbox, "Cid Remote");
    await writeSmallPackage(inbox, "Dora Remote", { marker: false });
    chownTree(inbox);
    const home = tmp("sb-remote-");
    const ready = join(home, "ready");
    const drop = join(home, "mydrop");
    const r = await watchRemote("inbox-del", home, ready, ["--remote-after", "delete", "--settle", "1", "--drop", drop]);
    expect(r.code, r.stderr).toBe(0);
    for (const n of ["Cid Remote", "Dora Remote"]) expect(existsSync(join(ready, n, "manifest.json"))).toBe(true);
    expect(ls(inbox)).toEqual([]);
    expect(existsSync(join(sshd.home, "processed", "Cid Remote.zip"))).toBe(false);
    expect(ls(join(home, "scanbridge-state", "archive"))).toContain("Dora Remote.zip");
    const ev = events(r.stdout);
    expect(ev.filter((e) => e.event === "remote-cleaned").map((e) => e.action)).toEqual(["deleted", "deleted"]);
    expect(r.stdout + r.stderr).not.toContain("Remote");
  }, 120_000);

  it("keeps polling without --once: a package arriving later is taken; SIGTERM stops cleanly", async () => {
    const inbox = sshd.mkdirOwned("inbox-live");
    const home = tmp("sb-remote-");
    const ready = join(home, "ready");
    const child = spawnCli(
      ["watch", sshd.url("inbox-live"), "--ready", ready, "--rescan", "1", "--json", "--identity", sshd.privateKeyPath, "--known-hosts", sshd.knownHostsPath],
      { cwd: home, env: cleanEnv(home) },
    );
    const done = waitCli(child, undefined, 60_000);
    await until(() => existsSync(join(home, "scanbridge-state", "audit.jsonl")), 15_000, "watch start");
    // Written as an upload does: the zip under a temporary name, renamed, marker last.
    const staging = tmp("sb-remote-src-");
    const pkg = await writeSmallPackage(staging, "Hal Remote");
    writeFileSync(join(inbox, "Hal Remote.zip.partial"), readFileSync(pkg.zipPath));
    chownTree(inbox);
    renameSync(join(inbox, "Hal Remote.zip.partial"), join(inbox, "Hal Remote.zip"));
    writeFileSync(join(inbox, "Hal Remote.zip.sha256"), readFileSync(pkg.markerPath!));
    chownTree(inbox);
    await until(() => existsSync(join(ready, "Hal Remote", "manifest.json")) && ls(inbox).length === 0, 20_000, "package ready and moved");
    child.kill("SIGTERM");
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
    expect(ls(join(sshd.home, "processed"))).toContain("Hal Remote.zip");
    expect(events(r.stdout).filter((e) => e.event === "downloaded")).toHaveLength(1);
    expect(r.stdout + r.stderr).not.toContain("Remote");
  }, 90_000);

  it("an unknown host key fails closed: exit 5, nothing downloaded", async () => {
    const inbox = sshd.mkdirOwned("inbox-hk");
    await writeSmallPackage(inbox, "Eve Remote");
    chownTree(inbox);
    const home = tmp("sb-remote-");
    const ready = join(home, "ready");
    const emptyKnownHosts = join(home, "known_hosts");
    writeFileSync(emptyKnownHosts, "");
    const r = await watchRemote("inbox-hk", home, ready, [], emptyKnownHosts);
    expect(r.code).toBe(5);
    expect(r.stdout + r.stderr).toContain("HOST_KEY_UNKNOWN");
    expect(ls(inbox)).toEqual(["Eve Remote.zip", "Eve Remote.zip.sha256"]);
    expect(walk(home).filter((f) => f.endsWith(".zip") || f.includes(".download"))).toEqual([]);
    expect(existsSync(join(ready, "Eve Remote"))).toBe(false);
  }, 60_000);

  it("a wrong host key (known_hosts entry for another key) fails closed too", async () => {
    const home = tmp("sb-remote-");
    const wrong = join(home, "known_hosts");
    writeFileSync(wrong, `[127.0.0.1]:${sshd.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n`);
    const r = await watchRemote("inbox-hk", home, join(home, "ready"), [], wrong);
    expect(r.code).toBe(5);
    expect(ls(join(sshd.home, "inbox-hk"))).toEqual(["Eve Remote.zip", "Eve Remote.zip.sha256"]);
  }, 60_000);
});

describe("remote inbox poller (a local folder as the server)", () => {
  it("resumes after a crash between hand-over and remote clean-up without downloading twice", async () => {
    const root = tmp("sb-remote-unit-");
    const server = join(root, "server", "inbox");
    const drop = join(root, "drop");
    mkdirSync(drop, { recursive: true });
    const pkg = await writeSmallPackage(server, "Fay Remote");
    const dest = new LocalDestination(server);
    const evs: RemoteInboxEvent[] = [];
    const opts = { inbox: server, drop, after: "move" as const, processed: join(root, "server", "processed"), settleSeconds: 30 };
    const first = new RemoteInbox(opts, (e) => evs.push(e));
    // Simulate the crash: make the clean-up fail once (a destination that refuses renames).
    const failing = Object.create(dest) as LocalDestination;
    const claims = join(root, "server", "processed", ".claiming");
    failing.rename = async (from: string, to: string) => {
      // The server-side claim works; the clean-up (claims -> processed/) is refused.
      if (to.startsWith(claims)) return dest.rename(from, to);
      throw Object.assign(new Error("refused"), { code: "REMOTE_PERMISSION_DENIED" });
    };
    const r1 = await first.poll(failing);
    expect(r1).toMatchObject({ downloaded: 1, cleaned: 0, errors: 1 });
    // Handed over to the drop (the local pipeline takes it from there); the remote copy is still there.
    expect(ls(drop)).toEqual([".remote-incoming", "Fay Remote.zip", "Fay Remote.zip.sha256"]);
    expect(readFileSync(join(drop, "Fay Remote.zip.sha256"), "utf8")).toBe(`${pkg.sha256}  Fay Remote.zip\n`);
    // The package left the inbox with the claim; it waits in the claims folder until the clean-up.
    expect(ls(server)).toEqual([]);
    expect(ls(claims)).toEqual([expect.stringMatching(/^[0-9a-f]{12}-Fay Remote\.zip$/), expect.stringMatching(/^[0-9a-f]{12}-Fay Remote\.zip\.sha256$/)]);
    // The local pipeline takes the package away; a new process polls again: clean-up only, no second download.
    mkdirSync(join(drop, "archive"));
    for (const f of ["Fay Remote.zip", "Fay Remote.zip.sha256"]) writeFileSync(join(drop, "archive", f), readFileSync(join(drop, f)));
    for (const f of ["Fay Remote.zip", "Fay Remote.zip.sha256"]) unlinkSync(join(drop, f));
    const second = new RemoteInbox(opts, (e) => evs.push(e));
    const r2 = await second.poll(dest);
    expect(r2).toMatchObject({ downloaded: 0, cleaned: 1, errors: 0 });
    expect(ls(server)).toEqual([]);
    expect(ls(join(root, "server", "processed"))).toEqual([".claiming", "Fay Remote.zip", "Fay Remote.zip.sha256"]);
    expect(ls(claims)).toEqual([]);
    expect(ls(drop)).toEqual([".remote-incoming", "archive"]);
    expect(ls(join(drop, ".remote-incoming"))).toEqual([]);
    // Nothing more to do.
    expect(await second.poll(dest)).toMatchObject({ downloaded: 0, cleaned: 0, errors: 0 });
  });

  it("two watchers polling one inbox at once: every package is claimed (one rename on the server) and downloaded exactly once", async () => {
    const root = tmp("sb-remote-unit-");
    const server = join(root, "server", "inbox");
    for (const n of ["Ivy Remote", "Jon Remote", "Kim Remote", "Lea Remote"]) await writeSmallPackage(server, n);
    const dest = new LocalDestination(server);
    const drops = [join(root, "drop-a"), join(root, "drop-b")];
    for (const d of drops) mkdirSync(d, { recursive: true });
    const pollers = drops.map((drop) => new RemoteInbox({ inbox: server, drop, after: "move", processed: join(root, "server", "processed"), settleSeconds: 30 }));
    const results = await Promise.all(pollers.map((p) => p.poll(dest)));
    expect(results[0]!.downloaded + results[1]!.downloaded).toBe(4);
    const taken = drops.flatMap((d) => ls(d).filter((n) => n.endsWith(".zip")));
    expect(taken.sort()).toEqual(["Ivy Remote.zip", "Jon Remote.zip", "Kim Remote.zip", "Lea Remote.zip"]);
    expect(ls(server)).toEqual([]);
  });

  it("an unmarked package is taken only after two looks `settle` apart, and not when it changed in between", async () => {
    const root = tmp("sb-remote-unit-");
    const server = join(root, "inbox");
    const drop = join(root, "drop");
    mkdirSync(drop, { recursive: true });
    await writeSmallPackage(server, "Gus Remote", { marker: false });
    let now = 1_000_000;
    const inbox = new RemoteInbox({ inbox: server, drop, after: "delete", processed: join(root, "processed"), settleSeconds: 10, now: () => now });
    const dest = new LocalDestination(server);
    expect(await inbox.poll(dest)).toMatchObject({ downloaded: 0, settling: 1 });
    now += 5_000;
    expect(await inbox.poll(dest)).toMatchObject({ downloaded: 0, settling: 1 });
    // It is written again (new modification time): the clock starts again.
    utimesSync(join(server, "Gus Remote.zip"), new Date(), new Date(Date.now() + 5000));
    now += 6_000;
    expect(await inbox.poll(dest)).toMatchObject({ downloaded: 0, settling: 1 });
    now += 10_000;
    expect(await inbox.poll(dest)).toMatchObject({ downloaded: 1, cleaned: 1 });
    expect(ls(drop)).toEqual([".remote-incoming", "Gus Remote.zip", "Gus Remote.zip.sha256"]);
    expect(ls(server)).toEqual([]);
  });
});

describe("watch sftp://... when the remote inbox cannot be listed", () => {
  it("--once exits 5 after processing what it could (here: nothing)", async () => {
    const s = await startSshd();
    try {
      const home = tmp("sb-remote-");
      const r = await runCli(["watch", s.url("no-such-inbox"), "--ready", join(home, "ready"), "--once", "--json", "--identity", s.privateKeyPath, "--known-hosts", s.knownHostsPath], {
        cwd: home,
        env: cleanEnv(home),
      });
      expect(r.code).toBe(5);
      expect(events(r.stdout).some((e) => e.event === "error" && e.code === "REMOTE_NOT_FOUND")).toBe(true);
    } finally {
      await s.stop();
    }
  }, 60_000);
});
