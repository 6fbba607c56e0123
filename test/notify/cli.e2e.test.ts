import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closedPort, makeTestCert, startSmtpServer, type TestCert, type TestSmtpServer } from "../helpers/smtp.js";
import { startWebhookServer } from "../helpers/webhook.js";
import { PATIENT, SHA, writeReceipt } from "./receipt-fixture.js";
import { cleanEnv, ensureBuilt, runCli } from "./run-cli.js";
import { testdir } from "../helpers/cli.js";

describe("scanbridge notify (built CLI, real SMTP server on loopback)", () => {
  let cert: TestCert;
  let smtp: TestSmtpServer;
  let home: string;
  beforeAll(async () => {
    await ensureBuilt();
    cert = makeTestCert();
    smtp = await startSmtpServer({ cert, auth: { user: "clinic", pass: "pw-from-env" } });
    home = testdir({}, "sb-home-");
  });
  afterAll(async () => {
    await smtp.stop();
  });
  const env = () => cleanEnv(home, { SCANBRIDGE_SMTP_PASSWORD: "pw-from-env" });
  const flags = (url: string) => ["--email", "intl@hospital.example,coord@hospital.example", "--smtp", url, "--smtp-ca", cert.caFile, "--from", "admin@clinica.example", "--sender-name", "Clínica Sol"];

  it("delivers to every coordinator and reports JSON; exit 0", async () => {
    smtp.messages.length = 0;
    const receipt = writeReceipt();
    const r = await runCli(["--json", "notify", "--receipt", receipt, ...flags(smtp.url)], { env: env() });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ ok: true, sent: 2, pending: 0 });
    expect(smtp.messages.map((m) => m.envelopeTo[0]).sort()).toEqual(["coord@hospital.example", "intl@hospital.example"]);
    expect(smtp.messages[0]!.text).toContain(SHA);
    expect(smtp.messages[0]!.raw).not.toContain("Álvarez");
    // The outbox and receipt are named after the patient: no path in the JSON without --verbose.
    expect(r.stdout).not.toContain("Álvarez");
    expect(r.stdout).not.toContain("pw-from-env");
  });

  it("server down: exit 7 and the outbox kept; a re-run delivers exactly once; --retry then has nothing to do", async () => {
    smtp.messages.length = 0;
    const receipt = writeReceipt();
    const downUrl = `smtp://clinic@127.0.0.1:${await closedPort()}`;
    const down = await runCli(["notify", "--receipt", receipt, ...flags(downUrl)], { env: env() });
    expect(down.code).toBe(7);
    expect(down.stdout).toContain("PENDING");
    expect(down.stdout).toContain("notify --retry");
    const outbox = receipt.replace(/\.receipt\.json$/, ".outbox.json");
    const box = JSON.parse(readFileSync(outbox, "utf8"));
    expect(box.items.map((i: { status: string }) => i.status)).toEqual(["pending", "pending"]);
    expect(smtp.messages).toHaveLength(0);

    const again = await runCli(["notify", "--receipt", receipt, ...flags(smtp.url)], { env: env() });
    expect(again.code).toBe(0);
    expect(smtp.messages).toHaveLength(2);

    const retry = await runCli(["--json", "notify", "--retry", ...flags(smtp.url)], { env: env(), cwd: dirname(receipt) });
    expect(retry.code).toBe(0);
    expect(JSON.parse(retry.stdout)).toMatchObject({ sent: 0, pending: 0, alreadySent: 2 });
    expect(smtp.messages).toHaveLength(2);
  });

  it("`notify --retry` in the folder sends what is pending, using the config file for the server", async () => {
    smtp.messages.length = 0;
    const receipt = writeReceipt();
    const downUrl = `smtp://clinic@127.0.0.1:${await closedPort()}`;
    expect((await runCli(["notify", "--receipt", receipt, ...flags(downUrl)], { env: env() })).code).toBe(7);
    const cfg = join(home, "retry-config.json");
    writeFileSync(cfg, JSON.stringify({ smtp: smtp.url, smtpCa: cert.caFile, from: "admin@clinica.example" }));
    const r = await runCli(["--config", cfg, "notify", "--retry"], { env: env(), cwd: dirname(receipt) });
    expect(r.code).toBe(0);
    expect(smtp.messages).toHaveLength(2);
  });

  it("refuses a server without STARTTLS (exit 7) unless --smtp-insecure", async () => {
    const plain = await startSmtpServer({ cert, mode: "plain" });
    try {
      const receipt = writeReceipt();
      const base = ["notify", "--receipt", receipt, "--email", "intl@hospital.example", "--smtp", plain.url, "--from", "a@clinica.example"];
      const refused = await runCli(base, { env: cleanEnv(home) });
      expect(refused.code).toBe(7);
      expect(refused.stdout + refused.stderr).toMatch(/STARTTLS/);
      expect(plain.messages).toHaveLength(0);
      const ok = await runCli([...base, "--smtp-insecure"], { env: cleanEnv(home) });
      expect(ok.code).toBe(0);
      expect(ok.stderr).toMatch(/without TLS/);
      expect(plain.messages).toHaveLength(1);
    } finally {
      await plain.stop();
    }
  });

  it("a webhook gets a signed request; its secret comes from the environment only", async () => {
    const hook = await startWebhookServer();
    try {
      const r = await runCli(["notify", "--receipt", writeReceipt(), "--webhook", hook.url], { env: cleanEnv(home, { SCANBRIDGE_WEBHOOK_SECRET: "s" }) });
      expect(r.code).toBe(0);
      expect(hook.requests[0]!.headers["x-scanbridge-signature"]).toMatch(/^sha256=/);
      const noFlag = await runCli(["notify", "--receipt", writeReceipt(), "--webhook", hook.url, "--webhook-secret", "s"], { env: cleanEnv(home) });
      expect(noFlag.code).toBe(2);
    } finally {
      await hook.stop();
    }
  });

  it("usage errors exit 2 before anything is written: password in the URL, no channel, missing receipt", async () => {
    const receipt = writeReceipt();
    const pw = await runCli(["notify", "--receipt", receipt, "--email", "a@b.example", "--smtp", "smtp://u:secret@127.0.0.1", "--from", "a@b.example"], { env: cleanEnv(home) });
    expect(pw.code).toBe(2);
    expect(pw.stderr).toMatch(/password/);
    expect(pw.stderr).not.toContain("secret@");
    expect((await runCli(["notify", "--receipt", receipt], { env: cleanEnv(home) })).code).toBe(2);
    const missing = await runCli(["notify", "--receipt", join(home, "nope.receipt.json"), "--webhook", "http://127.0.0.1:9/x"], { env: cleanEnv(home) });
    expect(missing.code).toBe(2);
    expect(readFileSync(receipt, "utf8")).toContain(SHA);
  });

  it("includes the patient's name only with --include-patient-name", async () => {
    smtp.messages.length = 0;
    const r = await runCli(["notify", "--receipt", writeReceipt(), ...flags(smtp.url), "--include-patient-name", "--email", "intl@hospital.example"], { env: env() });
    expect(r.code).toBe(0);
    expect(smtp.messages).toHaveLength(1);
    expect(smtp.messages[0]!.subject).toContain(PATIENT);
  });

  it("a config file holding the SMTP password must be 0600", async () => {
    const dir = join(home, "cfg-perm");
    mkdirSync(dir, { recursive: true });
    const cfg = join(dir, "config.json");
    writeFileSync(cfg, JSON.stringify({ smtpPassword: "pw-from-env" }));
    chmodSync(cfg, 0o644);
    const r = await runCli(["--config", cfg, "notify", "--receipt", writeReceipt(), ...flags(smtp.url)], { env: cleanEnv(home) });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/chmod 600/);
  });
});
