import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeDicomTree } from "../../fixtures/dicom-builder.js";
import { writeHostilePackage } from "../../fixtures/package-builder.js";
import { cleanEnv, runCli, tempDirs } from "../helpers/cli.js";
import { makeTestCert, startSmtpServer, type TestCert, type TestSmtpServer } from "../helpers/smtp.js";

const mk = tempDirs();
let smtp: TestSmtpServer;
let cert: TestCert;
beforeAll(async () => {
  cert = makeTestCert();
  smtp = await startSmtpServer({ cert });
});
afterAll(async () => {
  await smtp?.stop();
});

describe("pack → watch, with staff notifications", () => {
  it("a package made by pack is verified, extracted into ready/, and staff are told (no name); a hostile one is quarantined and reported", async () => {
    const env = cleanEnv(mk());
    const scans = mk();
    await writeDicomTree(scans, { patients: [{ name: "Lima^Ana", id: "A-1", studies: [{ description: "MR KNEE", date: "20250601", modality: "MR", series: 2, imagesPerSeries: 3 }] }] });
    const out = mk();
    const packed = await runCli(["pack", scans, "--patient", "Ana Lima", "--out", out], { env });
    expect(packed.code, packed.stderr).toBe(0);

    const drop = mk();
    const ready = mk();
    copyFileSync(join(out, "Ana Lima.zip"), join(drop, "Ana Lima.zip"));
    copyFileSync(join(out, "Ana Lima.zip.sha256"), join(drop, "Ana Lima.zip.sha256"));
    await writeHostilePackage(drop, "zip-slip", "Evil Sender");
    const before = smtp.messages.length;
    const state = join(mk(), "state");
    const r = await runCli(["watch", drop, "--ready", ready, "--state", state, "--once", "--settle", "1", "--json",
      "--email", "radiology-intake@hospital.example", "--smtp", smtp.url, "--smtp-ca", cert.caFile, "--from", "scanbridge@hospital.example"], { env, timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);

    expect(readdirSync(ready).filter((f) => !f.startsWith("."))).toEqual(["Ana Lima"]);
    expect(existsSync(join(ready, "Ana Lima", "DICOMDIR"))).toBe(true);
    expect(readdirSync(join(state, "quarantine")).some((f) => f.endsWith(".reason.json"))).toBe(true);

    const mails = smtp.messages.slice(before);
    expect(mails).toHaveLength(2);
    const readyMail = mails.find((m) => /ready for review/.test(m.subject))!;
    const quarantineMail = mails.find((m) => /QUARANTINED/.test(m.subject))!;
    expect(readyMail, mails.map((m) => m.subject).join("\n")).toBeDefined();
    expect(quarantineMail).toBeDefined();
    expect(readyMail.text).toContain("MR");
    expect(readyMail.text).toMatch(/passed every check/);
    expect(quarantineMail.text).toMatch(/FAILED its checks/);
    for (const m of mails) expect(m.raw).not.toMatch(/Ana Lima|Lima\^Ana|Evil Sender/);

    // Receipts and outboxes of the notifications are named by package id, and private to the service account.
    const notes = readdirSync(join(state, "notifications"));
    expect(notes.every((f) => /^[0-9a-f]{12}-(ready|quarantined)\.(receipt|outbox)\.json$/.test(f))).toBe(true);
    for (const f of notes) expect(statSync(join(state, "notifications", f)).mode & 0o077).toBe(0);
    const events = r.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    expect(events.filter((e) => e.event === "notified").map((e) => e.result).sort()).toEqual(["quarantined", "ready"]);
  });

  it("without notification settings, watch runs as before and writes no notifications folder", async () => {
    const drop = mk();
    mkdirSync(join(drop, "in"));
    const state = join(mk(), "state");
    const r = await runCli(["watch", drop, "--ready", mk(), "--state", state, "--once"], { env: cleanEnv(mk()) });
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(join(state, "notifications"))).toEqual([]);
    expect(readdirSync(drop)).toEqual(["in"]);
  });
});
