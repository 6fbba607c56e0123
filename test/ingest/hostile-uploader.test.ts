/**
 * The hostile uploader (issue 10). A real OpenSSH sshd with an internal-sftp account chrooted to its folder, the
 * drop folder owned by that uploader; the watcher runs as another user. Through the SFTP account the uploader
 * plants every file that steered the watcher before the state moved out of the drop folder: claims and commit
 * states, forward-queue entries (queued and "delivered"), notification outboxes, a receipt symlink, lock files,
 * a forged audit log, a symlinked zip and a package carrying a scanbridge control file. Then: nothing outside the
 * drop is moved, deleted, overwritten, read or sent, no mail or webhook goes out that the watcher did not write,
 * the next real package is still filed (and forwarded), and SIGTERM stops the watcher within 5 s.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDicom } from "../../fixtures/dicom-builder.js";
import { sealedEntries, writeRawZip } from "../../fixtures/package-builder.js";
import { BIN, ROOT } from "../helpers/cli.js";
import { startSmtpServer, type TestSmtpServer } from "../helpers/smtp.js";
import { startSshd, type SshdServer } from "../helpers/sshd.js";
import { startWebhookServer, type TestWebhookServer } from "../helpers/webhook.js";
import { until, walk } from "./helpers.js";

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

/** Every file below a folder with its SHA-256 (and nothing else), to prove a tree was left exactly as it was. */
function treeHash(dir: string): Record<string, string> {
  return Object.fromEntries(walk(dir).map((f) => [f, sha(readFileSync(join(dir, f)))]));
}

/** A sealed package whose one DICOM instance carries `uid` (so what is forwarded can be told apart). */
function packageWithInstance(root: string, uid: string, extra: Array<{ path: string; data: string | Buffer }> = []): Buffer {
  const dcm = buildDicom({ patientName: "Hostile^Test", patientId: "EXT-1", studyInstanceUid: `${uid}.1`, seriesInstanceUid: `${uid}.1.1`, sopInstanceUid: `${uid}.1.1.1`, pixelDataBytes: 64 });
  return writeRawZip(sealedEntries(root, [{ path: "DICOM/IM1.dcm", data: dcm }, ...extra]));
}

const EVIL_UID = "1.2.826.0.1.3680043.9.7433.666";
const NEXT_UID = "1.2.826.0.1.3680043.9.7433.777";
const EARLIER_UID = "1.2.826.0.1.3680043.9.7433.555";

let base: string;
let sshd: SshdServer;
let smtp: TestSmtpServer;
let hook: TestWebhookServer;
let pacs: TestWebhookServer;
let watcherUser: string;
let watcherUid: number;
let watcherGid: number;
let bin = BIN;
let boundApp: string | undefined;
let drop: string;
let chrootDrop: string;
let hospital: string;
let ready: string;
let state: string;
let outside: string;
let secretSha: string;
let watcher: { child: ChildProcess; out: () => string; exited: () => boolean; code: () => number | null } | undefined;

/** Run sftp batch commands as the uploader (chrooted: "/drop" is the drop folder). */
function asUploader(commands: string[]): string {
  const batch = join(base, `batch-${randomBytes(4).toString("hex")}`);
  writeFileSync(batch, commands.join("\n") + "\n");
  const r = spawnSync("sftp", ["-b", batch, "-i", sshd.privateKeyPath, "-o", "BatchMode=yes", "-o", `UserKnownHostsFile=${sshd.knownHostsPath}`, "-o", "StrictHostKeyChecking=yes", "-P", String(sshd.port), `${sshd.user}@127.0.0.1`], { encoding: "utf8" });
  rmSync(batch, { force: true });
  if (r.status !== 0) throw new Error(`sftp failed (${r.status}): ${r.stderr}\n${sshd.log().slice(-2000)}`);
  return r.stdout;
}

/** A local file to `put` (root-owned scratch, readable by the sftp client). */
function local(name: string, data: string | Buffer): string {
  const p = join(base, "scratch", name);
  writeFileSync(p, data);
  return p;
}

function events(): Array<Record<string, unknown>> {
  return (watcher?.out() ?? "")
    .split("\n")
    .filter((l) => l.startsWith("{") && l.endsWith("}"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

beforeAll(async () => {
  // sshd accepts a chroot only below root-owned folders no one else can write: not /tmp.
  base = mkdtempSync(join(existsSync("/run") ? "/run" : "/srv", "sb-hostile-"));
  chmodSync(base, 0o755);
  mkdirSync(join(base, "scratch"), { mode: 0o700 });

  // The watcher's service account (a real user, not root), with its own home.
  watcherUser = `sbw${randomBytes(4).toString("hex")}`;
  const whome = join(base, "whome");
  sh("useradd", ["-M", "-d", whome, "-s", "/bin/sh", watcherUser]);
  watcherUid = Number(sh("id", ["-u", watcherUser]).trim());
  watcherGid = Number(sh("id", ["-g", watcherUser]).trim());
  mkdirSync(whome, { mode: 0o700 });
  chownSync(whome, watcherUid, watcherGid);

  // The built CLI must be readable by that user; a clone inside a private folder is bound to a readable place.
  const canRead = (p: string) => spawnSync(process.execPath, ["-e", `require("fs").accessSync(${JSON.stringify(p)}, 4)`], { uid: watcherUid, gid: watcherGid }).status === 0;
  if (!canRead(BIN)) {
    boundApp = join(base, "app");
    mkdirSync(boundApp, { mode: 0o755 });
    sh("mount", ["--bind", ROOT, boundApp]);
    bin = join(boundApp, "bin", "scanbridge.js");
    if (!canRead(bin)) throw new Error(`the watcher account cannot read the CLI at ${ROOT} even through a bind mount (make the clone's own folder 0755)`);
  }

  smtp = await startSmtpServer();
  hook = await startWebhookServer();
  pacs = await startWebhookServer({ path: "/dicom-web" });

  // The uploader: an internal-sftp account chrooted to <base>/chroot/<user>, whose drop folder it owns. The
  // watcher reaches the drop through its group (rename out of it needs write access to the folder).
  sshd = await startSshd({ extraConfig: [`ChrootDirectory ${join(base, "chroot")}/%u`, "ForceCommand internal-sftp -u 0022"], subsystem: "internal-sftp -u 0022" });
  const chroot = join(base, "chroot", sshd.user);
  mkdirSync(chroot, { recursive: true, mode: 0o755 });
  chmodSync(join(base, "chroot"), 0o755);
  chrootDrop = "/drop";
  drop = join(chroot, "drop");
  mkdirSync(drop, { mode: 0o775 });
  chownSync(drop, sshd.uid, watcherGid);
  chmodSync(drop, 0o775);

  // The hospital side: the watcher's folders (ready/ and, by default, scanbridge-state beside it).
  hospital = join(base, "hospital");
  mkdirSync(hospital, { mode: 0o700 });
  chownSync(hospital, watcherUid, watcherGid);
  ready = join(hospital, "ready");
  state = join(hospital, "scanbridge-state");

  // Things outside the drop the uploader would like to touch: all readable by the watcher account.
  outside = join(base, "outside");
  mkdirSync(join(outside, "staging-victim"), { recursive: true, mode: 0o755 });
  writeFileSync(join(outside, "staging-victim", "keep.txt"), "must survive");
  writeFileSync(join(outside, "victim.txt"), "original content");
  const secret = packageWithInstance("Secret Patient", "1.2.826.0.1.3680043.9.7433.999");
  secretSha = sha(secret);
  writeFileSync(join(outside, "Secret Patient.zip"), secret);
  chmodSync(join(outside, "Secret Patient.zip"), 0o644);
  chmodSync(join(outside, "victim.txt"), 0o666);
  // An access time older than the modification time: any read of the file would move it (relatime).
  utimesSync(join(outside, "Secret Patient.zip"), new Date(1_000_000_000), new Date());
  copyFileSync(smtp.cert.caFile, join(whome, "ca.pem"));
  chownSync(join(whome, "ca.pem"), watcherUid, watcherGid);
}, 120_000);

afterAll(async () => {
  if (watcher && !watcher.exited()) watcher.child.kill("SIGKILL");
  await sshd?.stop();
  await smtp?.stop();
  await hook?.stop();
  await pacs?.stop();
  if (watcherUser) {
    spawnSync("pkill", ["-KILL", "-u", watcherUser]);
    spawnSync("userdel", [watcherUser]);
  }
  if (boundApp) spawnSync("umount", ["-l", boundApp]);
  if (base) rmSync(base, { recursive: true, force: true });
}, 60_000);

describe("a hostile uploader cannot steer watch (real sshd, internal-sftp chroot, watcher as another user)", () => {
  it("plants every attack through SFTP: nothing outside the drop is touched, nothing is sent that the watcher did not write, the next package is filed, SIGTERM stops it", async () => {
    const whome = join(base, "whome");
    const child = spawn(
      process.execPath,
      [bin, "watch", drop, "--ready", ready, "--settle", "1", "--rescan", "1", "--json", "--stale-claim", "30",
        "--email", "intake@hospital.example", "--smtp", smtp.url, "--smtp-ca", join(whome, "ca.pem"), "--from", "scanbridge@hospital.example",
        "--webhook", hook.url, "--forward", pacs.url, "--forward-unreconciled", "--forward-retry", "1s"],
      { cwd: whome, uid: watcherUid, gid: watcherGid, stdio: ["ignore", "pipe", "pipe"], env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: whome, XDG_CONFIG_HOME: join(whome, ".config"), NO_COLOR: "1" } },
    );
    let out = "";
    let exitCode: number | null = null;
    let exited = false;
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (out += d));
    child.on("exit", (code) => {
      exited = true;
      exitCode = code;
    });
    watcher = { child, out: () => out, exited: () => exited, code: () => exitCode };
    await until(() => out.includes('"event":"started"') || exited, 20_000, "watch start");
    expect(exited, out).toBe(false);

    // An earlier patient, delivered normally: the planted commit state will name their folder.
    const earlier = packageWithInstance("Earlier Patient", EARLIER_UID);
    asUploader([`put "${local("e.zip", earlier)}" "${chrootDrop}/Earlier Patient.zip"`, `put "${local("e.sha", `${sha(earlier)}  Earlier Patient.zip\n`)}" "${chrootDrop}/Earlier Patient.zip.sha256"`]);
    await until(() => existsSync(join(ready, "Earlier Patient", "manifest.json")), 30_000, "earlier patient filed");
    const earlierTree = treeHash(join(ready, "Earlier Patient"));
    const secretAtime = statSync(join(outside, "Secret Patient.zip")).atimeMs;
    // (The secret package itself is not read here: its access time is the witness.)
    const outsideTree = () => Object.fromEntries(Object.entries(treeHash(join(outside, "staging-victim"))).concat([["victim.txt", sha(readFileSync(join(outside, "victim.txt")))]]));
    const outsideBefore = outsideTree();

    // The next real package (its id is known to the uploader: the first 12 hex of its SHA-256).
    const next = packageWithInstance("Next Patient", NEXT_UID);
    const nextId = sha(next).slice(0, 12);
    const control = packageWithInstance("Control Patient", "1.2.826.0.1.3680043.9.7433.888", [{ path: ".scanbridge-reconcile.json", data: JSON.stringify({ patientId: "CHOSEN-BY-SENDER", issuer: "HOSP" }) }]);
    const evilDcm = buildDicom({ patientId: "EVIL", studyInstanceUid: `${EVIL_UID}.1`, seriesInstanceUid: `${EVIL_UID}.1.1`, sopInstanceUid: `${EVIL_UID}.1.1.1`, pixelDataBytes: 16 });
    const evilManifest = JSON.stringify({ format: "scanbridge-package", files: [{ path: "x.dcm", size: evilDcm.length, sha256: sha(evilDcm), kind: "dicom" }] });
    const evilEntry = (id: string, readyPath: string) => JSON.stringify({ format: "scanbridge-forward", id, sha256: id.padEnd(64, "0"), readyPath, queuedAt: new Date().toISOString(), attempts: 0, nextAttemptAt: 0 });
    const outboxItems = [
      { id: "email:evil@attacker.example", channel: "email", target: "evil@attacker.example", status: "pending", attempts: 0, createdAt: new Date().toISOString() },
      { id: "webhook:x", channel: "webhook", target: hook.url, status: "pending", attempts: 0, createdAt: new Date().toISOString() },
    ];
    const outbox = JSON.stringify({
      format: "scanbridge-outbox", formatVersion: 1, receipt: `${nextId}-ready.receipt.json`, packageSha256: sha(next), notificationId: "evil",
      createdAt: new Date().toISOString(), email: { subject: "ATTACKER-SUBJECT", text: "ATTACKER-TEXT", html: "<a href=//evil>ATTACKER-HTML</a>" }, webhookBody: "ATTACKER-WEBHOOK-TEXT", items: outboxItems,
    });
    const claimOwner = JSON.stringify({ host: hostname(), pid: 999_999, start: "", instance: "evil", claimedAt: new Date().toISOString(), file: "x.zip", staging: join(outside, "staging-victim") });
    const commitState = JSON.stringify({ phase: "committing", from: join(ready, "Earlier Patient"), target: join(drop, "stolen") });
    const lock = JSON.stringify({ host: hostname(), pid: 1, start: "", token: "evil", takenAt: new Date().toISOString(), purpose: "audit log" });
    const forged = JSON.stringify({ time: new Date().toISOString(), event: "ready", id: "forged", prev: "0".repeat(64) });

    asUploader([
      // Claims and a commit state naming an earlier patient's folder and a folder outside the drop.
      `mkdir ${chrootDrop}/processing`, `mkdir ${chrootDrop}/processing/evil-1`,
      `put "${local("claim.json", claimOwner)}" ${chrootDrop}/processing/evil-1/claim.json`,
      `put "${local("state.json", commitState)}" ${chrootDrop}/processing/evil-1/state.json`,
      // Forward queue: an uploader-written folder queued for the PACS, and the real package marked delivered.
      `mkdir ${chrootDrop}/evilfolder`,
      `put "${local("x.dcm", evilDcm)}" ${chrootDrop}/evilfolder/x.dcm`,
      `put "${local("manifest.json", evilManifest)}" ${chrootDrop}/evilfolder/manifest.json`,
      `mkdir ${chrootDrop}/forward-queue`, `mkdir ${chrootDrop}/forward-queue/delivered`,
      `put "${local("q.json", evilEntry("aaaaaaaaaaaa", join(drop, "evilfolder")))}" ${chrootDrop}/forward-queue/aaaaaaaaaaaa.json`,
      `put "${local("d.json", evilEntry(nextId, join(ready, "Next Patient")))}" ${chrootDrop}/forward-queue/delivered/${nextId}.json`,
      // Notifications: an outbox with attacker text and recipient, a receipt that is a symlink, an outbox lock.
      `mkdir ${chrootDrop}/notifications`,
      `put "${local("o.json", outbox)}" ${chrootDrop}/notifications/${nextId}-ready.outbox.json`,
      `ln -s ${join(outside, "victim.txt")} ${chrootDrop}/notifications/${nextId}-ready.receipt.json`,
      `put "${local("ol", lock)}" ${chrootDrop}/notifications/${nextId}-ready.outbox.json.lock`,
      // The audit log and its lock.
      `put "${local("a.jsonl", forged + "\n")}" ${chrootDrop}/audit.jsonl`,
      `put "${local("al", lock)}" ${chrootDrop}/audit.jsonl.lock`,
      // A zip that is a link to a readable package elsewhere, with a matching marker.
      `ln -s "${join(outside, "Secret Patient.zip")}" "${chrootDrop}/Secret Patient.zip"`,
      `put "${local("s.sha", `${secretSha}  Secret Patient.zip\n`)}" "${chrootDrop}/Secret Patient.zip.sha256"`,
      // A package carrying a scanbridge control file.
      `put "${local("c.zip", control)}" "${chrootDrop}/Control Patient.zip"`,
      `put "${local("c.sha", `${sha(control)}  Control Patient.zip\n`)}" "${chrootDrop}/Control Patient.zip.sha256"`,
      // And the next real package.
      `put "${local("n.zip", next)}" "${chrootDrop}/Next Patient.zip"`,
      `put "${local("n.sha", `${sha(next)}  Next Patient.zip\n`)}" "${chrootDrop}/Next Patient.zip.sha256"`,
    ]);

    // The next real package is filed, forwarded (its instance reaches the PACS) and notified.
    await until(() => existsSync(join(ready, "Next Patient", "manifest.json")), 30_000, "next patient filed");
    await until(() => pacs.requests.some((r) => r.body.includes(Buffer.from(NEXT_UID))), 30_000, "next patient sent to the PACS");
    await until(() => existsSync(join(state, "quarantine", "Control Patient.reason.json")), 30_000, "control-file package quarantined");
    await until(() => smtp.messages.filter((m) => /ready for review/.test(m.subject)).length >= 2, 30_000, "staff mails");
    await until(() => events().some((e) => e.event === "ignored"), 10_000, "symlinked zip reported");

    // SIGTERM: the watcher stops within 5 s (polled, bounded), exit 0.
    child.kill("SIGTERM");
    await until(() => exited, 5_000, "exit within 5 s of SIGTERM");
    expect(exitCode, out).toBe(0);

    // Nothing outside the drop was moved, deleted, overwritten or read.
    expect(treeHash(join(ready, "Earlier Patient"))).toEqual(earlierTree);
    expect(statSync(join(outside, "Secret Patient.zip")).atimeMs).toBe(secretAtime);
    expect(outsideTree()).toEqual(outsideBefore);
    expect(readFileSync(join(outside, "victim.txt"), "utf8")).toBe("original content");
    expect(existsSync(join(drop, "stolen"))).toBe(false);
    expect(readdirSync(ready).sort()).toEqual([".scanbridge-staging", "Earlier Patient", "Next Patient"]);
    const stateFiles = walk(state);
    expect(stateFiles.filter((f) => /Secret/.test(f))).toEqual([]);
    expect(readdirSync(join(state, "quarantine")).sort()).toEqual(["Control Patient.reason.json", "Control Patient.zip", "Control Patient.zip.sha256"]);
    const reason = JSON.parse(readFileSync(join(state, "quarantine", "Control Patient.reason.json"), "utf8")) as { problems: Array<{ code: string }> };
    expect(reason.problems.map((p) => p.code)).toContain("CONTROL_FILE");

    // What the uploader planted is still there, ignored (never interpreted, never touched).
    for (const f of ["processing/evil-1/claim.json", "processing/evil-1/state.json", "forward-queue/aaaaaaaaaaaa.json", `forward-queue/delivered/${nextId}.json`, `notifications/${nextId}-ready.outbox.json`, "audit.jsonl", "audit.jsonl.lock", "Secret Patient.zip.sha256"]) {
      expect(existsSync(join(drop, f)), f).toBe(true);
    }
    expect(readFileSync(join(drop, "audit.jsonl"), "utf8")).toBe(forged + "\n");

    // Nothing sent that the watcher did not write: no uploader folder to the PACS, no attacker mail or webhook.
    expect(pacs.requests.filter((r) => r.body.includes(Buffer.from(EVIL_UID)))).toEqual([]);
    expect(pacs.requests.filter((r) => r.body.includes(Buffer.from("1.2.826.0.1.3680043.9.7433.999")))).toEqual([]);
    for (const m of smtp.messages) {
      expect(m.envelopeTo).toEqual(["intake@hospital.example"]);
      expect(m.raw).not.toMatch(/ATTACKER/);
    }
    for (const r of hook.requests) expect(r.body.toString()).not.toMatch(/ATTACKER/);
    expect(hook.requests.length).toBeGreaterThan(0);

    // Patient data the watcher wrote is private (umask 022 inherited), and owned by the watcher.
    for (const f of walk(join(ready, "Next Patient"))) {
      const st = statSync(join(ready, "Next Patient", f));
      expect(st.mode & 0o777, f).toBe(0o600);
      expect(st.uid).toBe(watcherUid);
    }
    expect(statSync(state).mode & 0o777).toBe(0o700);

    // The watcher's own audit log is keyed and intact.
    const check = spawnSync(process.execPath, [bin, "audit", "verify", join(state, "audit.jsonl"), "--json"], { encoding: "utf8" });
    expect(check.status, check.stderr).toBe(0);
    expect(JSON.parse(check.stdout)).toMatchObject({ keyed: true, checkpoint: "match" });
  }, 180_000);
});
