import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, runCli } from "../helpers/cli.js";
import { tmp } from "./helpers.js";

describe("scanbridge release", () => {
  let dir: string;
  beforeAll(() => {
    dir = tmp("sb-release-");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("moves a quarantined package back into the drop, clears its reason, audits it; a second release finds nothing", async () => {
    const env = cleanEnv(dir);
    const drop = join(dir, "drop");
    const ready = join(dir, "ready");
    mkdirSync(drop);
    writeFileSync(join(drop, "Not An Archive.zip"), "plain text, not a zip ".repeat(20));
    const w = await runCli(["watch", drop, "--ready", ready, "--once", "--settle", "0", "--json"], { cwd: dir, env });
    expect(w.code, w.stderr).toBe(0);
    const quarantine = join(dir, "scanbridge-state", "quarantine");
    const reason = JSON.parse(readFileSync(join(quarantine, "Not An Archive.reason.json"), "utf8")) as { id: string; problems: Array<{ code: string }> };
    expect(reason.problems.map((p) => p.code)).toEqual(["UNKNOWN_ARCHIVE"]);

    const r = await runCli(["release", reason.id, drop, "--ready", ready, "--json"], { cwd: dir, env });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ id: reason.id, released: true, previousProblems: ["UNKNOWN_ARCHIVE"] });
    expect(readdirSync(drop)).toContain("Not An Archive.zip");
    expect(existsSync(join(quarantine, "Not An Archive.reason.json"))).toBe(false);
    expect(readFileSync(join(dir, "scanbridge-state", "audit.jsonl"), "utf8")).toContain('"event":"released"');

    const again = await runCli(["release", reason.id, drop, "--ready", ready, "--json"], { cwd: dir, env });
    expect(again.code).toBe(3);
    expect(again.stdout + again.stderr).toContain("NOT_QUARANTINED");
    const bad = await runCli(["release", "not-hex", drop], { cwd: dir, env });
    expect(bad.code).toBe(2);
  }, 120_000);
});
