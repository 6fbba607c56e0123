import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTestCert, startSmtpServer, type TestCert, type TestSmtpServer } from "../helpers/smtp.js";
import { cleanEnv, ensureBuilt, ROOT, runCli } from "../notify/run-cli.js";
import { startSshStub, type SshStub } from "./ssh-stub.js";
import { hasTmux, startTerminal, type Terminal } from "../helpers/tmux.js";
import { testdir } from "../helpers/cli.js";

const SMTP_PW = "smtp-pw-4711";

let cert: TestCert;
let smtp: TestSmtpServer;
let ssh: SshStub;
beforeAll(async () => {
  await ensureBuilt();
  cert = makeTestCert();
  smtp = await startSmtpServer({ cert, auth: { user: "clinic", pass: SMTP_PW } });
  ssh = await startSshStub();
});
afterAll(async () => {
  await smtp.stop();
  await ssh.stop();
});

const newHome = () => testdir({}, "sb-init-");
const configOf = (home: string) => join(home, ".config", "scanbridge", "config.json");

describe("scanbridge init --non-interactive (built CLI)", () => {
  const base = () => [
    "--json", "init", "--non-interactive",
    "--sender-role", "clinic", "--sender-name", "Clínica Sol", "--sender-email", "admin@clinica.example", "--sender-phone", "+34 600 000 000",
    "--email", "intl@hospital.example,coord@hospital.example",
    "--smtp", smtp.url, "--smtp-ca", cert.caFile,
    "--to", `sftp://clinic@127.0.0.1:${ssh.port}/incoming`, "--sftp-auth", "password",
  ];

  it("checks SMTP and the host key, writes a 0600 file with no secret", async () => {
    const home = newHome();
    const r = await runCli([...base(), "--host-fingerprint", ssh.fingerprint], { env: cleanEnv(home, { SCANBRIDGE_SMTP_PASSWORD: SMTP_PW, SCANBRIDGE_SFTP_PASSWORD: "sftp-pw" }) });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ written: true, smtpCheck: "ok", hostFingerprint: ssh.fingerprint });
    expect(out.secretsNotStored.sort()).toEqual(["sftpPassword", "smtpPassword"]);
    const path = configOf(home);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const text = readFileSync(path, "utf8");
    expect(text).not.toContain(SMTP_PW);
    expect(text).not.toContain("sftp-pw");
    const cfg = JSON.parse(text);
    expect(cfg).toMatchObject({
      senderRole: "clinic", senderName: "Clínica Sol", senderEmail: "admin@clinica.example", email: ["intl@hospital.example", "coord@hospital.example"],
      smtp: smtp.url, from: "admin@clinica.example", to: `sftp://clinic@127.0.0.1:${ssh.port}/incoming`, hostFingerprint: ssh.fingerprint, includePatientName: false,
    });
    expect(cfg.smtpPassword).toBeUndefined();
    expect(cfg.sftpAuth).toBeUndefined();
    // Nothing was sent while testing SMTP.
    expect(smtp.messages).toHaveLength(0);

    // The file is what the other commands read: config show sees it.
    const show = await runCli(["--json", "config", "show"], { env: cleanEnv(home) });
    expect(JSON.parse(show.stdout).values.hostFingerprint).toEqual({ value: ssh.fingerprint, source: "config file" });

    // A second init does not overwrite without --force.
    const again = await runCli([...base(), "--accept-host-key"], { env: cleanEnv(home, { SCANBRIDGE_SMTP_PASSWORD: SMTP_PW }) });
    expect(again.code).toBe(2);
    expect(JSON.parse(again.stdout).error.code).toBe("CONFIG_EXISTS");
    expect(readFileSync(path, "utf8")).toBe(text);
    const forced = await runCli([...base(), "--force", "--sender-phone", "+34 611 111 111"], { env: cleanEnv(home, { SCANBRIDGE_SMTP_PASSWORD: SMTP_PW }) });
    expect(forced.code, forced.stdout).toBe(0);
    expect(JSON.parse(readFileSync(path, "utf8")).senderPhone).toBe("+34 611 111 111");
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it("stores secrets only with --store-secrets, still 0600", async () => {
    const home = newHome();
    const r = await runCli([...base(), "--accept-host-key", "--store-secrets"], { env: cleanEnv(home, { SCANBRIDGE_SMTP_PASSWORD: SMTP_PW }) });
    expect(r.code, r.stdout).toBe(0);
    const cfg = JSON.parse(readFileSync(configOf(home), "utf8"));
    expect(cfg.smtpPassword).toBe(SMTP_PW);
    expect(cfg.hostFingerprint).toBe(ssh.fingerprint);
    expect(statSync(configOf(home)).mode & 0o777).toBe(0o600);
    // And notify can use the stored password (the file is 0600, so it is accepted).
    expect(JSON.parse((await runCli(["--json", "config", "show"], { env: cleanEnv(home) })).stdout).values.smtpPassword.value).toBe("***");
  });

  it("refuses a host key that differs from the fingerprint given (exit 5), writing nothing", async () => {
    const home = newHome();
    const wrong = "SHA256:" + "A".repeat(43);
    const r = await runCli([...base(), "--host-fingerprint", wrong], { env: cleanEnv(home, { SCANBRIDGE_SMTP_PASSWORD: SMTP_PW }) });
    expect(r.code).toBe(5);
    expect(JSON.parse(r.stdout).error.code).toBe("HOST_KEY_MISMATCH");
    expect(existsSync(configOf(home))).toBe(false);
  });

  it("does not pin an unconfirmed host key in a script (exit 2, fingerprint shown)", async () => {
    const home = newHome();
    const r = await runCli(base(), { env: cleanEnv(home, { SCANBRIDGE_SMTP_PASSWORD: SMTP_PW }) });
    expect(r.code).toBe(2);
    const err = JSON.parse(r.stdout).error;
    expect(err.code).toBe("HOST_KEY_UNCONFIRMED");
    expect(err.fingerprint).toBe(ssh.fingerprint);
    expect(existsSync(configOf(home))).toBe(false);
  });

  it("reports a failed SMTP test without writing secrets; a bad value names its flag", async () => {
    const home = newHome();
    const r = await runCli([...base(), "--accept-host-key"], { env: cleanEnv(home, { SCANBRIDGE_SMTP_PASSWORD: "wrong" }) });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).smtpCheck).toMatch(/^failed: SMTP authentication failed/);
    const bad = await runCli(["init", "--non-interactive", "--sender-name", "X", "--sender-email", "not-an-address"], { env: cleanEnv(newHome()) });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/senderEmail/);
    const noTty = await runCli(["init"], { env: cleanEnv(newHome()) });
    expect(noTty.code).toBe(2);
    expect(noTty.stderr).toMatch(/--non-interactive/);
  });
});

// Driven as a person would: a real terminal (tmux), keys typed one answer at a time.
describe.skipIf(!hasTmux)("scanbridge init at a real terminal (tmux send-keys)", () => {
  let term: Terminal | undefined;
  afterAll(() => term?.close());

  it("asks every question, shows and pins the host key, tests SMTP, writes 0600 without secrets", async () => {
    const home = newHome();
    const env = cleanEnv(home);
    term = startTerminal([process.execPath, join(ROOT, "bin/scanbridge.js"), "init", "--smtp-ca", cert.caFile], env);
    const { answer, waitFor } = term;
    await answer(/Who is sending/, undefined, "Down", "Enter");
    await answer(/Clinic name/, "Clinica Sol");
    await answer(/Your e-mail address/, "admin@clinica.example");
    await answer(/phone number/, "+34 600 000 000");
    await answer(/Coordinator e-mail/, "intl@hospital.example, coord@hospital.example");
    await answer(/Webhook URL/, undefined);
    await answer(/Where to upload/, `sftp://clinic@127.0.0.1:${ssh.port}/incoming`);
    // No key in the fresh HOME, so "With a password" is the default.
    await answer(/How do you log in/, undefined);
    await answer(/SFTP password/, "sftp-typed-pw");
    await answer(/Store the SFTP password/, "n");
    const s = await waitFor(/Is this the fingerprint/);
    expect(s).toContain(ssh.fingerprint);
    await answer(/Is this the fingerprint/, "y");
    await answer(/SMTP server for sending/, smtp.url);
    await answer(/Send notification e-mails from/, undefined);
    await answer(/SMTP password for clinic/, SMTP_PW);
    await answer(/Store the SMTP password/, "n");
    await answer(/patient's name in notifications/, undefined);
    const done = await waitFor(/EXIT=\d+/, 30_000);
    expect(done).toMatch(/SMTP server .* connected \(STARTTLS\), logged in/);
    expect(done).toContain("EXIT=0");
    expect(done).not.toContain(SMTP_PW);
    // Human labels, never internal option names (issue 12).
    expect(done).not.toMatch(/smtpPassword|sftpPassword/);

    const path = configOf(home);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const text = readFileSync(path, "utf8");
    expect(text).not.toContain(SMTP_PW);
    expect(text).not.toContain("sftp-typed-pw");
    expect(JSON.parse(text)).toMatchObject({
      senderRole: "clinic", senderName: "Clinica Sol", senderPhone: "+34 600 000 000", email: ["intl@hospital.example", "coord@hospital.example"],
      from: "admin@clinica.example", hostFingerprint: ssh.fingerprint, includePatientName: false, smtpCa: cert.caFile,
    });
  });
});
