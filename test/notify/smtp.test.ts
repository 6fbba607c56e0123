import { readFileSync, statSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExitCode, UsageError } from "../../src/errors.js";
import { readOutbox } from "../../src/notify/outbox.js";
import type { NotifySettings } from "../../src/notify/options.js";
import { notifyReceipt, pendingError, resolveNotifyChannels } from "../../src/notify/stage.js";
import type { StageEvent } from "../../src/ui/events.js";
import { closedPort, makeTestCert, startSmtpServer, type TestCert, type TestSmtpServer } from "../helpers/smtp.js";
import { PATIENT, SHA, writeReceipt } from "./receipt-fixture.js";

const fast = { smtpRetry: { attempts: 2, baseDelayMs: 10 }, timeoutMs: 5000 };
const sender = { role: "clinic" as const, name: "Clínica Sol", email: "admin@clinica.example", phone: "+34 600 000 000" };

describe("e-mail notifications through a real SMTP server (STARTTLS, throw-away cert)", () => {
  let cert: TestCert;
  let server: TestSmtpServer;
  beforeAll(async () => {
    cert = makeTestCert();
    server = await startSmtpServer({ cert, auth: { user: "clinic", pass: "s3cret" } });
  });
  afterAll(async () => {
    await server.stop();
  });

  const channelsFor = (url: string, extra: Record<string, unknown> = {}) =>
    resolveNotifyChannels({ email: ["intl@hospital.example", "coord@hospital.example"], smtp: url, smtpCa: cert.caFile, smtpPassword: "s3cret", senderEmail: sender.email, ...extra });

  it("delivers one message to each coordinator over TLS, with the checksum and without the patient name", async () => {
    server.messages.length = 0;
    const receipt = writeReceipt();
    const events: StageEvent[] = [];
    const res = await notifyReceipt(receipt, channelsFor(server.url), { includePatientName: false, sender, ...fast }, (e) => events.push(e));
    expect(res.pending).toEqual([]);
    expect(res.sent.map((s) => s.target).sort()).toEqual(["coord@hospital.example", "intl@hospital.example"]);
    expect(server.messages).toHaveLength(2);
    expect(server.messages.flatMap((m) => m.envelopeTo).sort()).toEqual(["coord@hospital.example", "intl@hospital.example"]);
    for (const m of server.messages) {
      expect(m.secure).toBe(true);
      expect(m.user).toBe("clinic");
      expect(m.envelopeFrom).toBe("admin@clinica.example");
      expect(m.subject).toBe("[scanbridge] New imaging package 3f2a9c1b0d4e (412 files, 1.2 GB)");
      expect(m.headers.to).toContain("intl@hospital.example");
      expect(m.headers.to).toContain("coord@hospital.example");
      expect(m.headers["reply-to"]).toBeUndefined();
      expect(m.text).toContain(SHA);
      expect(m.html).toContain(SHA);
      expect(m.text).toContain("Clínica Sol");
      // Nowhere in the raw message, headers included, in any encoding nodemailer might pick.
      for (const needle of ["Álvarez", "Alvarez", "=C3=81lvarez", Buffer.from(PATIENT).toString("base64").slice(0, 12)]) {
        expect(m.raw).not.toContain(needle);
      }
      expect(m.text + m.html + m.subject).not.toContain("Álvarez");
    }
    // Both copies are the same message (one Message-ID), so mail systems can de-duplicate.
    expect(new Set(server.messages.map((m) => m.headers["message-id"])).size).toBe(1);
    expect(events.filter((e) => e.type === "step-done" && e.ok)).toHaveLength(2);
  });

  it("names the patient when includePatientName is set", async () => {
    server.messages.length = 0;
    const res = await notifyReceipt(writeReceipt(), channelsFor(server.url, { email: ["intl@hospital.example"] }), { includePatientName: true, sender, ...fast }, () => {});
    expect(res.sent).toHaveLength(1);
    expect(server.messages).toHaveLength(1);
    expect(server.messages[0]!.subject).toContain(PATIENT);
    expect(server.messages[0]!.text).toContain(`${PATIENT}.zip`);
    expect(server.messages[0]!.html).toContain("Álvarez");
    expect(server.messages[0]!.headers["reply-to"]).toBeUndefined();
  });

  it("sets Reply-To to the sender when e-mail goes out from another (no-reply) address", async () => {
    server.messages.length = 0;
    await notifyReceipt(writeReceipt(), channelsFor(server.url, { email: ["intl@hospital.example"], from: "no-reply@clinica.example" }), { includePatientName: false, sender, ...fast }, () => {});
    expect(server.messages[0]!.envelopeFrom).toBe("no-reply@clinica.example");
    expect(server.messages[0]!.headers["reply-to"]).toContain("admin@clinica.example");
  });

  it("keeps the message in the outbox when the server is down (exit 7), and a re-run delivers it exactly once", async () => {
    server.messages.length = 0;
    const receipt = writeReceipt();
    const down = `smtp://clinic@127.0.0.1:${await closedPort()}`;
    const res1 = await notifyReceipt(receipt, channelsFor(down), { includePatientName: false, sender, ...fast }, () => {});
    expect(res1.sent).toEqual([]);
    expect(res1.pending).toHaveLength(2);
    expect(res1.pending[0]!.error).toMatch(/Cannot reach SMTP server/);
    expect(res1.pending[0]!.attempts).toBe(2);
    // The second recipient is not tried against a server already found down in this run.
    expect(res1.pending[1]!.attempts).toBe(0);
    expect(pendingError(res1).exitCode).toBe(ExitCode.notifyFailed);
    expect(statSync(res1.outboxPath).mode & 0o777).toBe(0o600);
    const box = await readOutbox(res1.outboxPath);
    expect(box!.items.map((i) => i.status)).toEqual(["pending", "pending"]);
    expect(readFileSync(res1.outboxPath, "utf8")).not.toContain("s3cret");
    // The receipt is untouched.
    expect(JSON.parse(readFileSync(receipt, "utf8")).sha256).toBe(SHA);

    const res2 = await notifyReceipt(receipt, channelsFor(server.url), { includePatientName: false, sender, retryOnly: true, ...fast }, () => {});
    expect(res2.sent).toHaveLength(2);
    expect(res2.pending).toEqual([]);
    expect(server.messages).toHaveLength(2);

    const res3 = await notifyReceipt(receipt, channelsFor(server.url), { includePatientName: false, sender, ...fast }, () => {});
    expect(res3.sent).toEqual([]);
    expect(res3.alreadySent).toHaveLength(2);
    expect(server.messages).toHaveLength(2);
  });

  it("sends only to a coordinator added later, not again to the others", async () => {
    server.messages.length = 0;
    const receipt = writeReceipt();
    await notifyReceipt(receipt, channelsFor(server.url, { email: ["intl@hospital.example"] }), { includePatientName: false, sender, ...fast }, () => {});
    const res = await notifyReceipt(receipt, channelsFor(server.url), { includePatientName: false, sender, ...fast }, () => {});
    expect(res.sent.map((s) => s.target)).toEqual(["coord@hospital.example"]);
    expect(server.messages.flatMap((m) => m.envelopeTo)).toEqual(["intl@hospital.example", "coord@hospital.example"]);
  });

  it("refuses a wrong password without retrying, and keeps the message", async () => {
    const res = await notifyReceipt(writeReceipt(), channelsFor(server.url, { smtpPassword: "wrong" }), { includePatientName: false, sender, ...fast }, () => {});
    expect(res.pending).toHaveLength(2);
    expect(res.pending[0]!.error).toMatch(/authentication failed/i);
    expect(res.pending[0]!.attempts).toBe(1);
  });

  it("refuses a server certificate it cannot verify (no --smtp-ca)", async () => {
    const ch = resolveNotifyChannels({ email: ["intl@hospital.example"], smtp: server.url, smtpPassword: "s3cret", from: "a@b.example" });
    const res = await notifyReceipt(writeReceipt(), ch, { includePatientName: false, sender, ...fast }, () => {});
    expect(res.pending).toHaveLength(1);
    expect(res.pending[0]!.error).toMatch(/TLS|certificate/i);
    expect(res.pending[0]!.hint).toMatch(/--smtp-ca/);
  });

  it("works over implicit TLS (smtps://)", async () => {
    const tls = await startSmtpServer({ cert, mode: "tls" });
    try {
      const ch = resolveNotifyChannels({ email: ["intl@hospital.example"], smtp: tls.url, smtpCa: cert.caFile, from: "a@b.example" });
      const res = await notifyReceipt(writeReceipt(), ch, { includePatientName: false, sender, ...fast }, () => {});
      expect(res.sent).toHaveLength(1);
      expect(tls.messages[0]!.secure).toBe(true);
    } finally {
      await tls.stop();
    }
  });

  it("refuses a server without STARTTLS unless smtpInsecure is set", async () => {
    const plain = await startSmtpServer({ cert, mode: "plain" });
    try {
      const opts = { includePatientName: false, sender, ...fast };
      const base = { email: ["intl@hospital.example"], smtp: plain.url, from: "a@b.example" };
      const refused = await notifyReceipt(writeReceipt(), resolveNotifyChannels(base), opts, () => {});
      expect(refused.pending).toHaveLength(1);
      expect(refused.pending[0]!.error).toMatch(/STARTTLS/);
      expect(refused.pending[0]!.attempts).toBe(1);
      expect(plain.messages).toHaveLength(0);
      const allowed = await notifyReceipt(writeReceipt(), resolveNotifyChannels({ ...base, smtpInsecure: true }), opts, () => {});
      expect(allowed.sent).toHaveLength(1);
      expect(plain.messages).toHaveLength(1);
      expect(plain.messages[0]!.secure).toBe(false);
    } finally {
      await plain.stop();
    }
  });
});

describe("channel validation (fails before any work)", () => {
  const bad = (values: NotifySettings, sources: Record<string, string> = {}) => {
    try {
      resolveNotifyChannels(values, sources);
    } catch (err) {
      expect(err).toBeInstanceOf(UsageError);
      return (err as UsageError).message;
    }
    throw new Error("expected a UsageError");
  };
  it("names the key and the source", () => {
    expect(bad({ email: ["not-an-address"], smtp: "smtp://h", from: "a@b.example" }, { email: "flag" })).toMatch(/email \(from flag\)/);
    expect(bad({ email: ["a@b.example"] })).toMatch(/no SMTP server/);
    expect(bad({ email: ["a@b.example"], smtp: "smtp://u:pw@h", from: "a@b.example" })).toMatch(/password/);
    expect(bad({ email: ["a@b.example"], smtp: "smtp://u@h", from: "a@b.example" })).toMatch(/no password/);
    expect(bad({ email: ["a@b.example"], smtp: "http://h", from: "a@b.example" })).toMatch(/smtp:\/\//);
    expect(bad({ email: ["a@b.example"], smtp: "smtp://h" })).toMatch(/sender address/);
    expect(bad({ webhook: ["http://hooks.example.org/x"] })).toMatch(/plain http/);
    expect(bad({ webhook: ["ftp://hooks.example.org/x"] })).toMatch(/https/);
  });
  it("keeps SMTP settings for retries without recipients, and reports a bad one there instead of failing", () => {
    expect(resolveNotifyChannels({ smtp: "smtp://mail.example.org", from: "x@y.example" }).smtp!.host).toBe("mail.example.org");
    const c = resolveNotifyChannels({ smtp: "smtp://u@mail.example.org", from: "x@y.example" });
    expect(c.smtp).toBeUndefined();
    expect(c.smtpProblem?.message).toMatch(/no password/);
    expect(c.smtpProblem?.hint).toMatch(/SCANBRIDGE_SMTP_PASSWORD/);
  });
  it("accepts comma lists, de-duplicates, and defaults the port by scheme", () => {
    const c = resolveNotifyChannels({ email: ["A@b.example, c@d.example", "a@b.example"], smtp: "smtps://mail.example.org", from: "x@y.example" });
    expect(c.emails).toEqual(["a@b.example", "c@d.example"]);
    expect(c.smtp!.port).toBe(465);
    expect(c.smtp!.secure).toBe(true);
    expect(resolveNotifyChannels({ email: ["a@b.example"], smtp: "smtp://mail.example.org", from: "x@y.example" }).smtp!.port).toBe(587);
  });
});
