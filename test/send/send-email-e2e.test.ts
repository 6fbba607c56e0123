/*
 * Issue 12: `send --to mailto:` e-mails small packages through the real SMTP server of the test suite; unknown
 * schemes are usage errors; a re-run checks the destination before saying "already uploaded".
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDicom } from "../../fixtures/dicom-builder.js";
import { cleanEnv, runCli, tempDirs } from "../helpers/cli.js";
import { makeTestCert, startSmtpServer, type TestCert, type TestSmtpServer } from "../helpers/smtp.js";

const mk = tempDirs();
let smtp: TestSmtpServer;
let cert: TestCert;
beforeAll(async () => {
  cert = makeTestCert();
  smtp = await startSmtpServer({ cert });
}, 60_000);
afterAll(async () => {
  await smtp?.stop();
  rmSync(cert.dir, { recursive: true, force: true });
});

const input = () =>
  mk({
    IM1: buildDicom({ patientName: "Lima^Ana", patientId: "A-17", studyInstanceUid: "1.2.3.4", seriesInstanceUid: "1.2.3.4.1", sopInstanceUid: "1.2.3.4.1.1", modality: "CR", pixelDataBytes: 20_000 }),
    "letter.pdf": "%PDF-1.4\n%%EOF\n",
  });
const mailArgs = () => ["--smtp", smtp.url, "--smtp-ca", cert.caFile, "--from", "ana@patient.example"];

/** The attachment of a raw message: the base64 body of its application/zip part. */
function attachmentOf(raw: string): { name: string; data: Buffer } {
  const m = /Content-Type: application\/zip;?\s*(?:name="?([^"\r\n]+)"?)?[\s\S]*?\r?\n\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n--/i.exec(raw);
  if (!m) throw new Error("no application/zip part");
  return { name: m[1] ?? "", data: Buffer.from(m[2]!.replace(/\s+/g, ""), "base64") };
}

describe("send --to mailto: (the e-mail path)", () => {
  it("e-mails the package as one message to every address, attachment byte-identical, SHA-256 in the body, no name", async () => {
    const work = mk();
    const env = cleanEnv(mk());
    const before = smtp.messages.length;
    const r = await runCli(["send", input(), "--patient", "Ana Lima", "--to", "mailto:intl@hospital.example,Coord@Hospital.example", ...mailArgs(), "--json"], { env, cwd: work });
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    const mails = smtp.messages.slice(before);
    expect(mails).toHaveLength(1);
    const mail = mails[0]!;
    expect(mail.secure).toBe(true);
    expect(mail.envelopeTo.sort()).toEqual(["coord@hospital.example", "intl@hospital.example"]);
    const zip = readFileSync(join(work, "Ana Lima.zip"));
    const sha = createHash("sha256").update(zip).digest("hex");
    expect(res.email.sha256).toBe(sha);
    const att = attachmentOf(mail.raw);
    expect(att.data.equals(zip)).toBe(true);
    expect(mail.text).toContain(sha);
    expect(mail.subject).toMatch(new RegExp(`Imaging package ${sha.slice(0, 12)} attached`));
    expect(`${mail.subject}\n${mail.text}`).not.toMatch(/Lima|Ana/);
  });

  it("over --email-limit: exit 4, says to upload instead, sends nothing", async () => {
    const before = smtp.messages.length;
    const r = await runCli(["send", input(), "--patient", "Ana Lima", "--to", "mailto:intl@hospital.example", "--email-limit", "1KB", ...mailArgs()], { env: cleanEnv(mk()), cwd: mk() });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/upload it instead/i);
    expect(smtp.messages.length).toBe(before);
  });

  it("unknown schemes and mailto typos are usage errors (exit 2), never folder names", async () => {
    for (const to of ["ftp://files.example/in", "https://hospital.example/upload", "mailt:intl@hospital.example", "maillto:intl@hospital.example", "mailto:not-an-address", "intl@hospital.example"]) {
      const work = mk();
      const r = await runCli(["send", input(), "--patient", "Ana Lima", "--to", to, ...mailArgs()], { env: cleanEnv(mk()), cwd: work });
      expect(r.code, `${to}: ${r.stderr}`).toBe(2);
      expect(readdirSync(work), to).toEqual([]);
    }
    const up = await runCli(["upload", "x.zip", "--to", "mailto:intl@hospital.example"], { env: cleanEnv(mk()), cwd: mk() });
    expect(up.code).toBe(2);
    expect(up.stderr).toMatch(/scanbridge send. only/);
  });

  it("a mailto: send without an SMTP server fails at once with a usage error, before packing", async () => {
    const work = mk();
    const r = await runCli(["send", input(), "--patient", "Ana Lima", "--to", "mailto:intl@hospital.example"], { env: cleanEnv(mk()), cwd: work });
    expect(r.code).toBe(2);
    expect(readdirSync(work)).toEqual([]);
  });
});

describe("send re-run checks the destination", () => {
  it("uploads again when the package was removed from the destination instead of saying 'Already uploaded'", async () => {
    const work = mk();
    const env = cleanEnv(mk());
    const src = input();
    const args = ["send", src, "--patient", "Ana Lima", "--to", "./outbox", "--json"];
    expect((await runCli(args, { env, cwd: work })).code).toBe(0);
    const again = await runCli(args, { env, cwd: work });
    expect(JSON.parse(again.stdout).upload.skipped).toBe(true);
    rmSync(join(work, "outbox", "Ana Lima.zip"));
    const third = await runCli(args, { env, cwd: work });
    expect(third.code, third.stderr).toBe(0);
    expect(JSON.parse(third.stdout).upload.skipped).toBe(false);
    expect(existsSync(join(work, "outbox", "Ana Lima.zip"))).toBe(true);
  });
});
