import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runInit, type InitDeps } from "../../src/commands/init.js";
import { initSpec, type InitCommandOptions } from "../../src/commands/init.command.js";
import type { CommandContext } from "../../src/commands/types.js";
import { resolveConfig } from "../../src/config/load.js";
import { createRecordingReporter } from "../../src/ui/reporter.js";
import { createScriptedPrompter } from "../../src/ui/prompter.js";
import { testdir } from "../helpers/cli.js";

const FP = "SHA256:" + "x".repeat(43);

/** A context as cli.ts builds it: `options` resolved by init's table as config-file values (flag-only switches as
 * flags), `flags` as flags. */
function ctxFor(answers: Array<string | boolean>, options: Record<string, unknown> = {}, interactive = true, flags: Record<string, unknown> = {}) {
  const home = testdir({}, "sb-init-unit-");
  const reporter = createRecordingReporter();
  const prompter = createScriptedPrompter(answers);
  const flagOnly = new Set(initSpec.options.filter((d) => "flagOnly" in d && d.flagOnly).map((d) => d.key as string));
  const switches = Object.fromEntries(Object.entries(options).filter(([k]) => flagOnly.has(k)));
  const resolved = resolveConfig(initSpec.options, { flags: { ...switches, ...flags }, env: {}, file: options, filePath: "test" });
  const ctx: CommandContext<InitCommandOptions> = {
    args: [],
    options: resolved.values as InitCommandOptions,
    sources: resolved.sources,
    verbose: false,
    env: { HOME: home },
    cwd: home,
    interactive,
    reporter,
    prompter,
    signal: new AbortController().signal,
    configPath: join(home, ".config", "scanbridge", "config.json"),
  };
  return { ctx, reporter, home };
}

const deps = (over: Partial<InitDeps> = {}): InitDeps & { smtpChecked: number } => {
  const d = {
    smtpChecked: 0,
    fetchHostFingerprint: async () => FP,
    async verifySmtp() {
      d.smtpChecked++;
    },
    ...over,
  };
  return d;
};

describe("init wizard (scripted answers)", () => {
  it("asks, pins the confirmed key, stores the typed SMTP password only when the user insists", async () => {
    const { ctx } = ctxFor([
      "patient", "Ann Lee", "ann@example.org", "", "intl@hospital.example", "",
      "sftp://ann@upload.example.org/in", "agent",
      true, // fingerprint matches
      "smtp://ann@mail.example.org", "ann@example.org", "typed-pw", true /* store it */, false /* no patient name */,
    ]);
    const d = deps();
    const out = await runInit(ctx, d);
    expect(out.data).toMatchObject({ written: true, secretsStored: ["smtpPassword"], hostFingerprint: FP, smtpCheck: "ok" });
    expect(d.smtpChecked).toBe(1);
    const cfg = JSON.parse(readFileSync(ctx.configPath, "utf8"));
    expect(cfg).toMatchObject({ senderRole: "patient", senderName: "Ann Lee", to: "sftp://ann@upload.example.org/in", hostFingerprint: FP, smtpPassword: "typed-pw" });
    expect(cfg.senderPhone).toBeUndefined();
    expect(statSync(ctx.configPath).mode & 0o777).toBe(0o600);
  });

  it("writes nothing when the user does not recognise the host key", async () => {
    const { ctx } = ctxFor(["patient", "Ann Lee", "ann@example.org", "", "", "", "sftp://ann@upload.example.org/in", "agent", false]);
    await expect(runInit(ctx, deps())).rejects.toMatchObject({ code: "HOST_KEY_REJECTED", exitCode: 5 });
    expect(existsSync(ctx.configPath)).toBe(false);
  });

  it("keeps an existing config when the user declines to replace it", async () => {
    const { ctx } = ctxFor([false]);
    mkdirSync(join(ctx.configPath, ".."), { recursive: true });
    writeFileSync(ctx.configPath, '{"senderName":"Old"}');
    const out = await runInit(ctx, deps());
    expect(out.data.written).toBe(false);
    expect(readFileSync(ctx.configPath, "utf8")).toBe('{"senderName":"Old"}');
  });

  it("does not ask what a flag already answered, and a local folder needs no server check", async () => {
    const { ctx } = ctxFor(["Ann Lee", "ann@example.org", "", "", "", false], {}, true, { senderRole: "clinic", to: "./outbox" });
    const d = deps({ fetchHostFingerprint: async () => { throw new Error("must not connect"); } });
    const out = await runInit(ctx, d);
    expect(out.data.written).toBe(true);
    const cfg = JSON.parse(readFileSync(ctx.configPath, "utf8"));
    expect(cfg.senderRole).toBe("clinic");
    expect(cfg.to).toBe(join(ctx.cwd, "outbox"));
  });

  it("in a script without --accept-host-key, an unreachable server leaves the key unpinned but still writes", async () => {
    const { ctx, reporter } = ctxFor([], {
      nonInteractive: true, senderName: "Clinic", senderEmail: "c@example.org", to: "sftp://c@10.255.255.1/in", sftpAuth: "agent",
    }, false);
    const out = await runInit(ctx, deps({ fetchHostFingerprint: async () => { throw new Error("timed out"); } }));
    expect(out.data).toMatchObject({ written: true, hostKey: "not pinned (server not reachable)" });
    expect(reporter.events.some((e) => e.type === "warn" && e.code === "HOST_KEY_UNCHECKED")).toBe(true);
  });
});
