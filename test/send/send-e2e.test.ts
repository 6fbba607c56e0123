import { createHash, randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeDicomTree } from "../../fixtures/dicom-builder.js";
import { cleanEnv, ROOT, runCli, spawnCli, waitCli, tempDirs } from "../helpers/cli.js";
import { makeTestCert, startSmtpServer, type TestCert, type TestSmtpServer } from "../helpers/smtp.js";
import { startSshd, type SshdServer } from "../helpers/sshd.js";
import { startRelay } from "../transfer/relay.js";

const PATIENT = "José Álvarez Núñez";
const sha = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");
const mk = tempDirs();

let sshd: SshdServer;
let smtp: TestSmtpServer;
let cert: TestCert;
beforeAll(async () => {
  sshd = await startSshd();
  cert = makeTestCert();
  smtp = await startSmtpServer({ cert });
}, 120_000);
afterAll(async () => {
  await smtp?.stop();
  await sshd?.stop();
});

async function cd(pixelBytes = 256): Promise<string> {
  const dir = mk();
  await writeDicomTree(dir, {
    patients: [{ name: "Álvarez Núñez^José", id: "P-1", birthDate: "19800214", studies: [{ description: "CT CHEST", date: "20250302", modality: "CT", series: 2, imagesPerSeries: 5 }] }],
    viewer: "RadiAnt",
    pixelDataBytes: pixelBytes,
  });
  return dir;
}

describe("scanbridge send", () => {
  it("runs the README's first command on the bundled sample: pack, 'upload' to a local folder, re-run does nothing twice", async () => {
    const work = mk();
    const env = cleanEnv(mk());
    const args = ["send", join(ROOT, "fixtures", "sample"), "--patient", PATIENT, "--to", "./outbox", "--json"];
    const first = await runCli(args, { env, cwd: work });
    expect(first.code, first.stderr).toBe(0);
    const r = JSON.parse(first.stdout);
    expect(r.package.files.byKind).toEqual({ dicom: 11, dicomdir: 1, document: 1 });
    expect(r.package.dicom.studyLine).toBe("2 studies · CT CHEST 2025-03-02 (2 series, 8 images) · MR BRAIN 2025-04-11 (1 series, 3 images)");
    expect(r.upload.skipped).toBe(false);
    expect(r.warnings.map((w: { code: string }) => w.code)).toContain("NOBODY_NOTIFIED");
    expect(readdirSync(join(work, "outbox")).sort()).toEqual([`${PATIENT}.zip`, `${PATIENT}.zip.sha256`]);
    expect(sha(join(work, "outbox", `${PATIENT}.zip`))).toBe(r.package.sha256);
    const receipt = JSON.parse(readFileSync(join(work, `${PATIENT}.receipt.json`), "utf8"));
    expect(receipt.summary.byKind).toEqual({ dicom: 11, dicomdir: 1, document: 1 });
    const mtime = statSync(join(work, `${PATIENT}.zip`)).mtimeMs;

    const again = await runCli(args, { env, cwd: work });
    expect(again.code, again.stderr).toBe(0);
    const r2 = JSON.parse(again.stdout);
    expect(r2.reusedPackage).toBe(true);
    expect(r2.upload.skipped).toBe(true);
    expect(r2.package.sha256).toBe(r.package.sha256);
    expect(statSync(join(work, `${PATIENT}.zip`)).mtimeMs).toBe(mtime);
  });

  it("uploads over SFTP to the real sshd and e-mails the coordinators once, without the patient's name", async () => {
    const input = await cd();
    const work = mk();
    const env = cleanEnv(mk(), { SCANBRIDGE_KEY_PASSPHRASE: "" });
    const args = [
      "send", input, "--patient", PATIENT, "--to", sshd.url("inbox"), "--identity", sshd.privateKeyPath, "--known-hosts", sshd.knownHostsPath,
      "--verify", "--email", "intl@hospital.example,coord@hospital.example", "--smtp", smtp.url, "--smtp-ca", cert.caFile, "--from", "clinic@clinica.example", "--json",
    ];
    const before = smtp.messages.length;
    const r = await runCli(args, { env, cwd: work });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.upload.verified).toBe("sha256");
    const remote = join(sshd.home, "inbox", `${PATIENT}.zip`);
    expect(sha(remote)).toBe(res.package.sha256);
    expect(readFileSync(`${remote}.sha256`, "utf8")).toBe(`${res.package.sha256}  ${PATIENT}.zip\n`);
    const mails = smtp.messages.slice(before);
    // One message per coordinator (each is delivered and recorded on its own in the outbox).
    expect(mails.flatMap((m) => m.envelopeTo).sort()).toEqual(["coord@hospital.example", "intl@hospital.example"]);
    for (const m of mails) {
      expect(m.secure).toBe(true);
      expect(m.text).toContain(res.package.sha256);
      expect(m.raw).not.toMatch(/Álvarez|Alvarez|Jos[eé]/);
    }
    expect(res.notify.sent).toHaveLength(2);

    // The same command again: nothing is zipped, uploaded or e-mailed twice.
    const again = await runCli(args, { env, cwd: work });
    expect(again.code, again.stderr).toBe(0);
    const res2 = JSON.parse(again.stdout);
    expect(res2.upload.skipped).toBe(true);
    expect(res2.notify.sent).toHaveLength(0);
    expect(res2.notify.alreadySent).toHaveLength(2);
    expect(smtp.messages.length - before).toBe(2);
  });

  it("interrupted during the upload, then re-run: one byte-identical package on the server and one e-mail", async () => {
    const input = await cd(1_000_000);
    // Incompressible pixel data so the upload takes a while through a rate-limited relay.
    for (const f of readdirSync(join(input, "DICOM", "P001"), { recursive: true })) {
      const p = join(input, "DICOM", "P001", String(f));
      if (statSync(p).isFile()) {
        const b = readFileSync(p);
        randomBytes(900_000).copy(b, b.length - 900_000);
        writeFileSync(p, b);
      }
    }
    const relay = await startRelay(sshd.port, { rate: 2 * 1024 * 1024 });
    const kh = join(mk(), "known_hosts");
    writeFileSync(kh, `[127.0.0.1]:${relay.port} ${sshd.hostPublicKey}\n`);
    const work = mk();
    const env = cleanEnv(mk());
    const dest = `sftp://${sshd.user}@127.0.0.1:${relay.port}/interrupted`;
    const args = ["send", input, "--patient", PATIENT, "--to", dest, "--identity", sshd.privateKeyPath, "--known-hosts", kh,
      "--email", "intl@hospital.example", "--smtp", smtp.url, "--smtp-ca", cert.caFile, "--from", "clinic@clinica.example"];
    const before = smtp.messages.length;
    try {
      const child = spawnCli(args, { env, cwd: work });
      const done = waitCli(child);
      const partial = join(sshd.home, "interrupted", `.${PATIENT}.zip.partial`);
      const until = Date.now() + 60_000;
      while (Date.now() < until && !(existsSync(partial) && statSync(partial).size > 2_000_000)) await new Promise((r) => setTimeout(r, 50));
      child.kill("SIGINT");
      const first = await done;
      expect(first.code, first.stderr).toBe(130);
      expect(smtp.messages.length).toBe(before);
      // The marker's file is opened under a hidden name while the data is sent; an interrupted upload may leave it, empty.
      const staged = `.${PATIENT}.zip.sha256.partial`;
      const left = readdirSync(join(sshd.home, "interrupted"));
      if (left.includes(staged)) expect(statSync(join(sshd.home, "interrupted", staged)).size).toBe(0);
      expect(left.filter((n) => n !== staged)).toEqual([`.${PATIENT}.zip.partial`]);

      const again = await runCli([...args, "--json"], { env, cwd: work, timeoutMs: 180_000 });
      expect(again.code, again.stderr).toBe(0);
      const res = JSON.parse(again.stdout);
      expect(res.reusedPackage).toBe(true);
      expect(res.upload.resumedFrom).toBeGreaterThan(0);
      expect(readdirSync(join(sshd.home, "interrupted")).sort()).toEqual([`${PATIENT}.zip`, `${PATIENT}.zip.sha256`]);
      expect(sha(join(sshd.home, "interrupted", `${PATIENT}.zip`))).toBe(sha(join(work, `${PATIENT}.zip`)));
      expect(smtp.messages.length - before).toBe(1);
    } finally {
      await relay.close();
    }
  }, 240_000);

  it("fails at once on a bad destination or notification setting, before packing", async () => {
    const input = await cd();
    const work = mk();
    const env = cleanEnv(mk());
    const noDest = await runCli(["send", input, "--patient", PATIENT], { env, cwd: work });
    expect(noDest.code).toBe(2);
    expect(noDest.stderr).toMatch(/DESTINATION_MISSING/);
    const badMail = await runCli(["send", input, "--patient", PATIENT, "--to", "./out", "--email", "not-an-address"], { env, cwd: work });
    expect(badMail.code).toBe(2);
    expect(readdirSync(work)).toEqual([]);
  });

  it("a notification that cannot be delivered leaves the upload done and exits 7; notify --retry delivers it once", async () => {
    const input = await cd();
    const work = mk();
    const env = cleanEnv(mk());
    const down = await startSmtpServer({ cert });
    const url = down.url;
    await down.stop();
    const r = await runCli(["send", input, "--patient", PATIENT, "--to", "./outbox", "--email", "intl@hospital.example", "--smtp", url, "--smtp-ca", cert.caFile, "--from", "clinic@clinica.example", "--json"], { env, cwd: work });
    expect(r.code, r.stderr).toBe(7);
    const res = JSON.parse(r.stdout);
    expect(res.notify.pending).toHaveLength(1);
    expect(readdirSync(join(work, "outbox")).sort()).toEqual([`${PATIENT}.zip`, `${PATIENT}.zip.sha256`]);
    const before = smtp.messages.length;
    const retry = await runCli(["notify", "--retry", "--smtp", smtp.url, "--smtp-ca", cert.caFile, "--from", "clinic@clinica.example"], { env, cwd: work });
    expect(retry.code, retry.stderr).toBe(0);
    expect(smtp.messages.length - before).toBe(1);
    const retry2 = await runCli(["notify", "--retry", "--smtp", smtp.url, "--smtp-ca", cert.caFile, "--from", "clinic@clinica.example"], { env, cwd: work });
    expect(retry2.code).toBe(0);
    expect(smtp.messages.length - before).toBe(1);
  });
});
