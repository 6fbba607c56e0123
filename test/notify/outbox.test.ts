import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NotifyError } from "../../src/errors.js";
import { outboxPathFor, readOutbox, withOutboxLock } from "../../src/notify/outbox.js";
import { notifyReceipt, resolveNotifyChannels } from "../../src/notify/stage.js";
import type { StageEvent } from "../../src/ui/events.js";
import { makeTestCert, startSmtpServer, type TestCert, type TestSmtpServer } from "../helpers/smtp.js";
import { writeReceipt } from "./receipt-fixture.js";

describe("the outbox beside the receipt", () => {
  let cert: TestCert;
  let server: TestSmtpServer;
  beforeAll(async () => {
    cert = makeTestCert();
    server = await startSmtpServer({ cert });
  });
  afterAll(async () => {
    await server.stop();
  });
  const channels = () => resolveNotifyChannels({ email: ["intl@hospital.example"], smtp: server.url, smtpCa: cert.caFile, from: "a@clinica.example" });
  const opts = { includePatientName: false, sender: {}, smtpRetry: { attempts: 1, baseDelayMs: 1 } };

  it("is written before sending, 0600, and records each delivery as sent", async () => {
    const receipt = writeReceipt();
    const outbox = outboxPathFor(receipt);
    expect(outbox).toBe(receipt.replace(/\.receipt\.json$/, ".outbox.json"));
    let seenDuringSend = false;
    const res = await notifyReceipt(receipt, channels(), opts, (e) => {
      if (e.type === "step") seenDuringSend = existsSync(outbox) && readFileSync(outbox, "utf8").includes('"status": "pending"');
    });
    expect(seenDuringSend).toBe(true);
    expect(res.sent).toHaveLength(1);
    expect(statSync(outbox).mode & 0o777).toBe(0o600);
    const box = await readOutbox(outbox);
    expect(box!.items[0]).toMatchObject({ id: "email:intl@hospital.example", status: "sent", attempts: 1 });
    expect(box!.items[0]!.sentAt).toBeTruthy();
    expect(existsSync(outbox + ".lock")).toBe(false);
  });

  it("lets only one of two concurrent runs deliver: the message arrives once", async () => {
    server.messages.length = 0;
    const receipt = writeReceipt();
    const results = await Promise.allSettled([notifyReceipt(receipt, channels(), opts, () => {}), notifyReceipt(receipt, channels(), opts, () => {})]);
    const rejected = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
    expect(rejected).toHaveLength(1);
    expect(rejected[0]!.reason).toBeInstanceOf(NotifyError);
    expect(rejected[0]!.reason.code).toBe("OUTBOX_LOCKED");
    expect(server.messages).toHaveLength(1);
  });

  it("takes over a lock left by a dead process", async () => {
    const receipt = writeReceipt();
    const outbox = outboxPathFor(receipt);
    writeFileSync(outbox + ".lock", `999999999@${hostname()}`);
    const res = await notifyReceipt(receipt, channels(), opts, () => {});
    expect(res.sent).toHaveLength(1);
    await expect(withOutboxLock(outbox, async () => withOutboxLock(outbox, async () => 1))).rejects.toMatchObject({ code: "OUTBOX_LOCKED", exitCode: 7 });
  });

  it("starts afresh (with a warning) when the receipt now describes another package", async () => {
    server.messages.length = 0;
    const receipt = writeReceipt();
    await notifyReceipt(receipt, channels(), opts, () => {});
    const r = JSON.parse(readFileSync(receipt, "utf8"));
    r.sha256 = "b".repeat(64);
    writeFileSync(receipt, JSON.stringify(r));
    const events: StageEvent[] = [];
    const res = await notifyReceipt(receipt, channels(), opts, (e) => events.push(e));
    expect(res.sent).toHaveLength(1);
    expect(server.messages).toHaveLength(2);
    expect(server.messages[1]!.subject).toContain("bbbbbbbbbbbb");
    expect(events.some((e) => e.type === "warn" && e.code === "OUTBOX_REPLACED")).toBe(true);
  });

  it("refuses a damaged outbox instead of sending everything again", async () => {
    const receipt = writeReceipt();
    writeFileSync(outboxPathFor(receipt), "{ not json");
    await expect(notifyReceipt(receipt, channels(), opts, () => {})).rejects.toMatchObject({ code: "OUTBOX_DAMAGED" });
  });

  it("with retryOnly and no outbox, does nothing", async () => {
    server.messages.length = 0;
    const res = await notifyReceipt(writeReceipt(), channels(), { ...opts, retryOnly: true }, () => {});
    expect(res).toMatchObject({ sent: [], pending: [], alreadySent: [] });
    expect(server.messages).toHaveLength(0);
  });

  it("stops at once when interrupted, keeping what is pending", async () => {
    const receipt = writeReceipt();
    const ac = new AbortController();
    ac.abort();
    await expect(notifyReceipt(receipt, channels(), { ...opts, signal: ac.signal }, () => {})).rejects.toMatchObject({ exitCode: 130 });
    const box = await readOutbox(outboxPathFor(receipt));
    expect(box!.items.map((i) => i.status)).toEqual(["pending"]);
  });
});
