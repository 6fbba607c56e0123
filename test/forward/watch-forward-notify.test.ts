/**
 * The forward recorded in staff notifications: `watch --forward` with notification channels configured sends one
 * e-mail per package delivered to a real Orthanc and confirmed, with instances sent, confirmed and the duration,
 * and without the patient's name (real SMTP test server).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDicom } from "../../fixtures/dicom-builder.js";
import { factsFromReceipt, renderMessage } from "../../src/notify/message.js";
import type { Receipt } from "../../src/transfer/receipt.js";
import { cleanEnv, removeDir, runCli, testdir } from "../helpers/cli.js";
import { startOrthanc, type OrthancServer } from "../helpers/orthanc.js";
import { makeTestCert, startSmtpServer, type TestCert, type TestSmtpServer } from "../helpers/smtp.js";

const events = (out: string) => out.split("\n").filter((l) => l.startsWith("{") && l.includes('"event"')).map((l) => JSON.parse(l) as Record<string, unknown>);

describe("forwarded notification message", () => {
  const receipt: Receipt = {
    format: "scanbridge-receipt",
    formatVersion: 1,
    package: "Zelda Quintero.zip",
    destination: "https://pacs.example/dicom-web",
    remotePath: "https://pacs.example/dicom-web",
    size: 0,
    sha256: "ab".repeat(32),
    verified: "sha256",
    attempts: 2,
    startedAt: "2026-11-23T10:00:00.000Z",
    finishedAt: "2026-11-23T10:00:03.400Z",
    event: "forwarded",
    forward: { instances: 6, confirmed: 6, durationMs: 3400, pacs: "https://pacs.example/dicom-web" },
  };
  it("subject and rows carry the counts and duration; no name unless asked", () => {
    const m = renderMessage(factsFromReceipt(receipt, { includePatientName: false, sender: {} }));
    expect(m.facts.event).toBe("package.forwarded");
    expect(m.subject).toBe("[scanbridge] Imaging package abababababab delivered to the PACS (6 instances)");
    expect(m.text).toMatch(/Instances sent:\s+6/);
    expect(m.text).toMatch(/Confirmed by the PACS:\s+6 of 6 \(QIDO-RS\)/);
    expect(m.text).toMatch(/Duration:\s+3\.4 s/);
    expect(m.text).toMatch(/PACS:\s+https:\/\/pacs\.example\/dicom-web/);
    expect(m.html).toContain("Instances sent");
    expect(m.text + m.html + m.subject).not.toMatch(/Zelda|Quintero/);
    const named = renderMessage(factsFromReceipt(receipt, { includePatientName: true, sender: {} }));
    expect(named.subject).toMatch(/ - Zelda Quintero$/);
  });
});

describe("watch --forward with staff notifications (real Orthanc, real SMTP)", () => {
  let pacs: OrthancServer;
  let smtp: TestSmtpServer;
  let cert: TestCert;
  let home: string;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    cert = makeTestCert();
    [pacs, smtp] = await Promise.all([startOrthanc(), startSmtpServer({ cert })]);
    home = testdir({}, "sb-forward-notify-");
    env = cleanEnv(home);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([pacs?.dispose(), smtp?.stop()]);
    removeDir(home);
    if (cert) removeDir(cert.dir);
  });

  it("one e-mail for the forwarded package with instances sent, confirmed and duration, without the patient name", async () => {
    const uid = "1.2.826.0.1.3680043.9.7433.81";
    const files: Record<string, Buffer> = {};
    for (let i = 1; i <= 5; i++) {
      files[`DICOM/SE1/IM${i}`] = buildDicom({
        patientName: "Quintero^Zelda",
        patientId: "EXT-81",
        studyInstanceUid: `${uid}.1`,
        seriesInstanceUid: `${uid}.1.1`,
        sopInstanceUid: `${uid}.1.1.${i}`,
        modality: "CT",
        studyDate: "20260105",
        seriesNumber: 1,
        instanceNumber: i,
        pixelDataBytes: 2048,
      });
    }
    const input = testdir(files, "sb-forward-notify-in-");
    const out = join(home, "out");
    const drop = join(home, "drop");
    const ready = join(home, "ready");
    const p = await runCli(["pack", input, "--patient", "Zelda Quintero", "--out", out, "--allow-patient-mismatch", "--force"], { env });
    expect(p.code, p.stderr).toBe(0);
    const u = await runCli(["upload", join(out, "Zelda Quintero.zip"), "--to", drop], { env });
    expect(u.code, u.stderr).toBe(0);
    removeDir(input);

    const before = smtp.messages.length;
    const w = await runCli(
      ["--json", "watch", drop, "--ready", ready, "--once", "--settle", "0", "--forward", pacs.dicomweb, "--forward-unreconciled",
        "--email", "pacs-team@hospital.example", "--smtp", smtp.url, "--smtp-ca", cert.caFile, "--from", "scanbridge@hospital.example"],
      { env, timeoutMs: 120_000 },
    );
    expect(w.code, w.stderr + w.stdout).toBe(0);
    expect(events(w.stdout).filter((e) => e.event === "forwarded")).toEqual([expect.objectContaining({ instances: 5, confirmed: 5 })]);
    expect(events(w.stdout).filter((e) => e.event === "notified").map((e) => e.result).sort()).toEqual(["forwarded", "ready"]);

    const mails = smtp.messages.slice(before);
    const forwarded = mails.filter((m) => /delivered to the PACS/.test(m.subject));
    expect(forwarded, mails.map((m) => m.subject).join("\n")).toHaveLength(1);
    const m = forwarded[0]!;
    expect(m.subject).toMatch(/^\[scanbridge\] Imaging package [0-9a-f]{12} delivered to the PACS \(5 instances\)$/);
    expect(m.envelopeTo).toEqual(["pacs-team@hospital.example"]);
    expect(m.text).toMatch(/Instances sent:\s+5/);
    expect(m.text).toMatch(/Confirmed by the PACS:\s+5 of 5/);
    expect(m.text).toMatch(/Duration:\s+\d+\.\d s/);
    expect(m.text).toContain(pacs.dicomweb.replace(/\/$/, ""));
    for (const mail of mails) expect(mail.raw).not.toMatch(/Zelda|Quintero/);

    const stored = await pacs.get<Array<{ MainDicomTags: { SOPInstanceUID: string } }>>("/instances?expand");
    expect(stored.filter((i) => i.MainDicomTags.SOPInstanceUID.startsWith(`${uid}.`))).toHaveLength(5);

    const notes = readdirSync(join(home, "scanbridge-state", "notifications"));
    expect(notes.filter((f) => /^[0-9a-f]{12}-forwarded\.(receipt|outbox)\.json$/.test(f))).toHaveLength(2);
    const receipt = JSON.parse(readFileSync(join(home, "scanbridge-state", "notifications", notes.find((f) => f.endsWith("-forwarded.receipt.json"))!), "utf8")) as Receipt;
    expect(receipt).toMatchObject({ event: "forwarded", forward: { instances: 5, confirmed: 5 } });
    expect(receipt.forward!.pacs).not.toMatch(/@/);
  }, 180_000);
});
