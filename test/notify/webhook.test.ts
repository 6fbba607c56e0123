import { afterEach, describe, expect, it } from "vitest";
import { notifyReceipt, resolveNotifyChannels } from "../../src/notify/stage.js";
import { postWebhook, signWebhook, verifyWebhookSignature } from "../../src/notify/webhook.js";
import { makeTestCert, type TestCert } from "../helpers/smtp.js";
import { startWebhookServer, type TestWebhookServer } from "../helpers/webhook.js";
import { PATIENT, SHA, writeReceipt } from "./receipt-fixture.js";

const SECRET = "hook-secret-123";
const fast = { webhookRetry: { attempts: 3, baseDelayMs: 10 }, timeoutMs: 5000 };
const opts = { includePatientName: false, sender: { name: "Clínica Sol" }, ...fast };

let servers: TestWebhookServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  servers = [];
});
const start = async (o: Parameters<typeof startWebhookServer>[0] = {}) => {
  const s = await startWebhookServer(o);
  servers.push(s);
  return s;
};
const header = (h: Record<string, string | string[] | undefined>, k: string) => h[k.toLowerCase()] as string | undefined;

describe("webhook notifications", () => {
  it("POSTs a signed JSON body whose signature verifies, without the patient name", async () => {
    const hook = await start();
    const res = await notifyReceipt(writeReceipt(), resolveNotifyChannels({ webhook: [hook.url], webhookSecret: SECRET }), opts, () => {});
    expect(res.sent).toHaveLength(1);
    expect(hook.requests).toHaveLength(1);
    const r = hook.requests[0]!;
    expect(r.method).toBe("POST");
    expect(header(r.headers, "content-type")).toMatch(/^application\/json/);
    const sig = { timestamp: header(r.headers, "X-Scanbridge-Timestamp"), signature: header(r.headers, "X-Scanbridge-Signature") };
    expect(sig.signature).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(verifyWebhookSignature(SECRET, sig, r.body)).toBe(true);
    expect(verifyWebhookSignature("other-secret", sig, r.body)).toBe(false);
    // A tampered body or a replayed old timestamp fails.
    expect(verifyWebhookSignature(SECRET, sig, Buffer.concat([r.body, Buffer.from(" ")]))).toBe(false);
    expect(verifyWebhookSignature(SECRET, sig, r.body, { now: new Date(Date.now() + 3600_000) })).toBe(false);
    const body = JSON.parse(r.body.toString("utf8"));
    expect(body.event).toBe("package.uploaded");
    expect(body.sha256).toBe(SHA);
    expect(body.packageId).toBe(SHA.slice(0, 12));
    expect(body.byKind.dicom).toBe(409);
    expect(r.body.toString("utf8")).not.toContain("Álvarez");
    expect(header(r.headers, "X-Scanbridge-Delivery")).toBe(body.id);
    // The outbox never holds the webhook URL (it may carry a token) or the secret.
    const { readFileSync } = await import("node:fs");
    const box = readFileSync(res.outboxPath, "utf8");
    expect(box).not.toContain(hook.url);
    expect(box).not.toContain(SECRET);
  });

  it("retries a 500 and succeeds, with the same delivery ID and a fresh signature", async () => {
    const hook = await start({ statuses: [500, 503] });
    const res = await notifyReceipt(writeReceipt(), resolveNotifyChannels({ webhook: [hook.url], webhookSecret: SECRET }), opts, () => {});
    expect(res.sent).toHaveLength(1);
    expect(res.sent[0]!.attempts).toBe(3);
    expect(hook.requests.map((r) => r.status)).toEqual([500, 503, 200]);
    expect(new Set(hook.requests.map((r) => header(r.headers, "X-Scanbridge-Delivery"))).size).toBe(1);
    for (const r of hook.requests) {
      expect(verifyWebhookSignature(SECRET, { timestamp: header(r.headers, "X-Scanbridge-Timestamp"), signature: header(r.headers, "X-Scanbridge-Signature") }, r.body)).toBe(true);
    }
  });

  it("does not retry a 4xx; the notification stays pending and a later run sends it once", async () => {
    const hook = await start({ statuses: [401] });
    const receipt = writeReceipt();
    const channels = resolveNotifyChannels({ webhook: [hook.url], webhookSecret: SECRET });
    const res = await notifyReceipt(receipt, channels, opts, () => {});
    expect(hook.requests).toHaveLength(1);
    expect(res.pending).toHaveLength(1);
    expect(res.pending[0]!.error).toMatch(/HTTP 401; not retried/);
    const again = await notifyReceipt(receipt, channels, { ...opts, retryOnly: true }, () => {});
    expect(again.sent).toHaveLength(1);
    expect(hook.requests.map((r) => r.status)).toEqual([401, 200]);
    const third = await notifyReceipt(receipt, channels, opts, () => {});
    expect(third.sent).toHaveLength(0);
    expect(hook.requests).toHaveLength(2);
  });

  it("gives up after the retry budget on persistent 5xx and keeps the notification", async () => {
    const hook = await start({ fallback: 502 });
    const res = await notifyReceipt(writeReceipt(), resolveNotifyChannels({ webhook: [hook.url] }), opts, () => {});
    expect(hook.requests).toHaveLength(3);
    expect(res.pending[0]!.error).toMatch(/failed after 3 attempts: HTTP 502/);
  });

  it("retries network errors (nothing listening)", async () => {
    const { closedPort } = await import("../helpers/smtp.js");
    const url = `http://127.0.0.1:${await closedPort()}/x`;
    await expect(postWebhook({ url }, "{}", { deliveryId: "d", event: "e", retry: { attempts: 2, baseDelayMs: 5 } })).rejects.toMatchObject({ retryable: true, attempts: 2 });
  });

  it("talks HTTPS, trusting a private CA only when given", async () => {
    const cert: TestCert = makeTestCert();
    const hook = await start({ cert });
    const untrusted = await notifyReceipt(writeReceipt(), resolveNotifyChannels({ webhook: [hook.url] }), opts, () => {});
    expect(untrusted.pending).toHaveLength(1);
    expect(hook.requests).toHaveLength(0);
    const trusted = await notifyReceipt(writeReceipt(), resolveNotifyChannels({ webhook: [hook.url], webhookCa: cert.caFile }), opts, () => {});
    expect(trusted.sent).toHaveLength(1);
    expect(hook.requests).toHaveLength(1);
  });

  it("includes the patient name only when asked", async () => {
    const hook = await start();
    await notifyReceipt(writeReceipt(), resolveNotifyChannels({ webhook: [hook.url] }), { ...opts, includePatientName: true }, () => {});
    expect(JSON.parse(hook.requests[0]!.body.toString("utf8")).patientName).toBe(PATIENT);
  });

  it("signs timestamp and body together", () => {
    expect(signWebhook("k", "1700000000", "{}")).toBe(signWebhook("k", "1700000000", Buffer.from("{}")));
    expect(signWebhook("k", "1700000000", "{}")).not.toBe(signWebhook("k", "1700000001", "{}"));
  });
});
