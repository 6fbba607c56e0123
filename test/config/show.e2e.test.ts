import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, ensureBuilt, runCli } from "../notify/run-cli.js";
import { testdir } from "../helpers/cli.js";

describe("scanbridge config show (built CLI)", () => {
  let home: string;
  let cfgPath: string;
  beforeAll(async () => {
    await ensureBuilt();
    home = testdir({}, "sb-show-");
    mkdirSync(join(home, ".config", "scanbridge"), { recursive: true });
    cfgPath = join(home, ".config", "scanbridge", "config.json");
    writeFileSync(cfgPath, JSON.stringify({ email: ["intl@hospital.example"], smtp: "smtp://clinic@mail.example.org", smtpPassword: "file-secret-pw", senderName: "Clínica Sol", emial: "typo@x" }));
    chmodSync(cfgPath, 0o600);
  });

  it("prints every command's options with their source, secrets redacted (JSON)", async () => {
    const r = await runCli(["config", "show", "--json"], { env: cleanEnv(home, { SCANBRIDGE_WEBHOOK_SECRET: "env-hook-secret", SCANBRIDGE_SENDER_NAME: "From Env" }) });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.configFile).toBe(cfgPath);
    expect(out.values.email).toEqual({ value: ["intl@hospital.example"], source: "config file" });
    expect(out.values.smtpPassword).toEqual({ value: "***", source: "config file" });
    expect(out.values.webhookSecret).toEqual({ value: "***", source: "environment" });
    expect(out.values.senderName).toEqual({ value: "From Env", source: "environment" });
    expect(out.values.includePatientName).toEqual({ value: false, source: "default" });
    // Options of other commands are there too (pack's level), flag-only switches are not.
    expect(out.values.level.source).toBe("default");
    expect(out.values.receipt).toBeUndefined();
    expect(out.values.force).toBeUndefined();
    expect(out.unknownKeys).toEqual(["emial"]);
    expect(r.stdout + r.stderr).not.toContain("file-secret-pw");
    expect(r.stdout + r.stderr).not.toContain("env-hook-secret");
  });

  it("prints a readable table, the same redaction, and warns about unknown keys", async () => {
    const r = await runCli(["config", "show"], { env: cleanEnv(home, { SCANBRIDGE_WEBHOOK_SECRET: "env-hook-secret" }) });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/smtpPassword\s+\*\*\*\s+config file/);
    expect(r.stdout).toMatch(/webhookSecret\s+\*\*\*\s+environment/);
    expect(r.stdout).toMatch(/email\s+intl@hospital\.example\s+config file/);
    expect(r.stderr).toMatch(/Unknown key "emial"/);
    expect(r.stdout + r.stderr).not.toMatch(/file-secret-pw|env-hook-secret/);
    // `config` alone is `config show`.
    const alone = await runCli(["config"], { env: cleanEnv(home) });
    expect(alone.code).toBe(0);
    expect(alone.stdout).toMatch(/smtpPassword\s+\*\*\*/);
  });

  it("the table's own lines are in the reader's language", async () => {
    const es = await runCli(["config", "show"], { env: cleanEnv(home, { SCANBRIDGE_LANG: "es" }) });
    expect(es.code).toBe(0);
    expect(es.stdout).toContain(`Archivo de configuración: ${cfgPath}\n`);
    expect(es.stdout).toMatch(/^Sin valor: /m);
    expect(es.stdout).not.toMatch(/Config file|Not set/);
    // No config file at the default place.
    const bare = testdir({}, "sb-show-bare-");
    const zh = await runCli(["config", "show"], { env: cleanEnv(bare, { SCANBRIDGE_LANG: "zh-CN" }) });
    expect(zh.code).toBe(0);
    expect(zh.stdout).toContain(`配置文件：${join(bare, ".config", "scanbridge", "config.json")}（不存在；请运行 \`scanbridge init\`）`);
  });

  it("every command warns about a config key that does nothing, naming the file and the nearest key", async () => {
    const r = await runCli(["notify", "--retry"], { env: cleanEnv(home), cwd: home });
    expect(r.stderr).toContain(`Unknown key "emial" in ${cfgPath} (ignored); did you mean "email"?`);
  });

  it("refuses a config file holding secrets that others can read (exit 2)", async () => {
    const other = join(home, "loose.json");
    writeFileSync(other, JSON.stringify({ smtpPassword: "x" }));
    chmodSync(other, 0o644);
    const r = await runCli(["--config", other, "config", "show"], { env: cleanEnv(home) });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/chmod 600/);
  });

  it("names the key and the source of a bad value (exit 2)", async () => {
    const r = await runCli(["config", "show"], { env: cleanEnv(home, { SCANBRIDGE_LEVEL: "eleven" }) });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/level \(from environment variable SCANBRIDGE_LEVEL\)/);
  });
});
