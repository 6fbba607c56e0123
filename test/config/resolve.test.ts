import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { defaultConfigPath, readConfigFile, redactConfig, resolveConfig, unknownConfigKeys } from "../../src/config/load.js";
import { envNameOf, parseDuration, parseSize, type OptionDef } from "../../src/config/options.js";
import { UsageError } from "../../src/errors.js";
import { testdir } from "../helpers/cli.js";

const defs: OptionDef[] = [
  { key: "emailLimit", flags: "--email-limit <size>", description: "", type: "size", default: "5MB" },
  { key: "level", flags: "--level <n>", description: "", type: "number", default: 6, min: 1, max: 9 },
  { key: "email", flags: "--email <list>", description: "", type: "list" },
  { key: "force", flags: "--force", description: "", type: "boolean", default: false, flagOnly: true },
  { key: "sftpPassword", description: "", type: "string", secret: true, env: "SCANBRIDGE_SFTP_PASSWORD" },
];

describe("option parsing", () => {
  it("parses sizes in decimal and binary units", () => {
    expect(parseSize("5MB")).toBe(5_000_000);
    expect(parseSize("5 MiB")).toBe(5 * 1024 * 1024);
    expect(parseSize("1.5G")).toBe(1_500_000_000);
    expect(parseSize("100")).toBe(100);
    expect(parseSize("lots")).toBeUndefined();
    expect(parseSize("5 XB")).toBeUndefined();
  });
  it("parses durations", () => {
    expect(parseDuration("30")).toBe(30);
    expect(parseDuration("5m")).toBe(300);
    expect(parseDuration("500ms")).toBe(0.5);
    expect(parseDuration("soon")).toBeUndefined();
  });
  it("derives environment names, none for flag-only options", () => {
    expect(envNameOf(defs[0]!)).toBe("SCANBRIDGE_EMAIL_LIMIT");
    expect(envNameOf(defs[3]!)).toBeUndefined();
    expect(envNameOf(defs[4]!)).toBe("SCANBRIDGE_SFTP_PASSWORD");
  });
});

describe("resolveConfig", () => {
  it("applies default < file < env < flag and records the source", () => {
    const r = resolveConfig(defs, { flags: { level: "9" }, env: { SCANBRIDGE_LEVEL: "3", SCANBRIDGE_EMAIL_LIMIT: "2MB" }, file: { level: 2, emailLimit: "1MB", email: ["a@x.org"] }, filePath: "/c.json" });
    expect(r.values).toMatchObject({ level: 9, emailLimit: 2_000_000, email: ["a@x.org"], force: false });
    expect(r.sources).toMatchObject({ level: "flag", emailLimit: "environment", email: "config file", force: "default" });
  });
  it("never takes a secret from flags, and flag-only options never from the file", () => {
    const r = resolveConfig(defs, { flags: { sftpPassword: "oops" }, env: {}, file: { force: true } });
    expect(r.values.sftpPassword).toBeUndefined();
    expect(r.values.force).toBe(false);
  });
  it("fails naming the key and where the bad value came from", () => {
    expect(() => resolveConfig(defs, { flags: {}, env: { SCANBRIDGE_LEVEL: "12" } })).toThrow(/level \(from environment variable SCANBRIDGE_LEVEL\): must be at most 9/);
    expect(() => resolveConfig(defs, { flags: {}, env: {}, file: { emailLimit: "huge" }, filePath: "/etc/x.json" })).toThrow(/emailLimit \(from config file \/etc\/x.json\)/);
    expect(() => resolveConfig(defs, { flags: { level: "abc" }, env: {} })).toThrow(UsageError);
  });
  it("names every config key that does nothing: the file, the key, the nearest known key", () => {
    const u = unknownConfigKeys({ level: 3, emailLimt: "1MB", EMAIL: ["a@b.example"], force: true, somethingElse: 1, ["x".repeat(500)]: 1 }, "/etc/scanbridge/config.json", defs);
    expect(u.map((k) => k.message)).toEqual([
      'Unknown key "emailLimt" in /etc/scanbridge/config.json (ignored); did you mean "emailLimit"?',
      'Unknown key "EMAIL" in /etc/scanbridge/config.json (ignored); did you mean "email"?',
      '"force" in /etc/scanbridge/config.json is ignored: it can only be given as a flag (--force)',
      'Unknown key "somethingElse" in /etc/scanbridge/config.json (ignored)',
      `Unknown key "${"x".repeat(500)}" in /etc/scanbridge/config.json (ignored)`,
    ]);
    expect(unknownConfigKeys({ level: 3, email: [] }, "/c.json", defs)).toEqual([]);
  });

  it("redacts secrets", () => {
    const r = resolveConfig(defs, { flags: {}, env: { SCANBRIDGE_SFTP_PASSWORD: "hunter2" } });
    expect(redactConfig(defs, r).sftpPassword).toEqual({ value: "***", source: "environment" });
    expect(JSON.stringify(redactConfig(defs, r))).not.toContain("hunter2");
  });
});

describe("config file", () => {
  it("finds the XDG location", () => {
    expect(defaultConfigPath({ XDG_CONFIG_HOME: "/x", HOME: "/h" })).toBe("/x/scanbridge/config.json");
    expect(defaultConfigPath({ HOME: "/h" })).toBe("/h/.config/scanbridge/config.json");
  });
  it("is optional at the default place but required when named", () => {
    const dir = testdir({}, "sb-cfg-");
    expect(readConfigFile(join(dir, "none.json"), false, defs)).toBeUndefined();
    expect(() => readConfigFile(join(dir, "none.json"), true, defs)).toThrow(/Cannot read config file/);
    writeFileSync(join(dir, "bad.json"), "{ not json");
    expect(() => readConfigFile(join(dir, "bad.json"), true, defs)).toThrow(/not valid JSON/);
  });
  it("refuses a file holding secrets that others can read", () => {
    const dir = testdir({}, "sb-cfg-");
    const p = join(dir, "config.json");
    writeFileSync(p, JSON.stringify({ sftpPassword: "x" }));
    chmodSync(p, 0o644);
    expect(() => readConfigFile(p, true, defs)).toThrow(/chmod 600|others can read it/);
    chmodSync(p, 0o600);
    expect(readConfigFile(p, true, defs)).toEqual({ sftpPassword: "x" });
  });
});
