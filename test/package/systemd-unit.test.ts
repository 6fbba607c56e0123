import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, posix } from "node:path";
import { describe, expect, it } from "vitest";
import { BIN, ROOT, runCli, tempDirs } from "../helpers/cli.js";

const UNIT = join(ROOT, "packaging", "scanbridge-watch@.service");
const mk = tempDirs();

describe("the systemd unit for scanbridge watch", () => {
  it("passes systemd-analyze verify as an instance (ExecStart pointed at this clone's bin)", () => {
    const dir = mk();
    const text = readFileSync(UNIT, "utf8");
    expect(text).toMatch(/^ExecStart=\/usr\/local\/bin\/scanbridge watch /m);
    // verify checks that ExecStart exists and is executable; a template is verified through an instance.
    const instance = join(dir, "scanbridge-watch@intl.service");
    writeFileSync(instance, text.replaceAll("/usr/local/bin/scanbridge", BIN));
    const r = spawnSync("systemd-analyze", ["verify", instance], { encoding: "utf8" });
    expect(r.error).toBeUndefined();
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("runs watch with flags the CLI has, as an unprivileged user with a private umask and config", async () => {
    const text = readFileSync(UNIT, "utf8");
    const exec = /^ExecStart=\S+ (.*)$/m.exec(text)![1]!.split(" ");
    expect(exec[0]).toBe("watch");
    const help = await runCli(["watch", "--help"]);
    for (const flag of exec.filter((a) => a.startsWith("--"))) expect(help.stdout).toContain(flag);
    expect(text).toMatch(/^User=scanbridge$/m);
    expect(text).toMatch(/^UMask=0077$/m);
    expect(text).toMatch(/^Environment=SCANBRIDGE_CONFIG=\/etc\/scanbridge\/%i\.json$/m);
    expect(text).toMatch(/^StateDirectoryMode=0700$/m);
  });

  it("keeps the watcher's state where it may write, outside the drop and on its file system", () => {
    const text = readFileSync(UNIT, "utf8");
    const exec = /^ExecStart=\S+ (.*)$/m.exec(text)![1]!.split(" ");
    const drop = exec[1]!;
    const flag = (name: string) => exec[exec.indexOf(name) + 1]!;
    const writable = /^ReadWritePaths=(\S+)$/m.exec(text)![1]!;
    const within = (p: string, dir: string) => p.startsWith(dir + "/");
    // The claim is a rename from the drop into the state folder: same writable tree, not inside the drop.
    for (const p of [drop, flag("--ready"), flag("--state")]) expect(within(p, writable), p).toBe(true);
    expect(within(flag("--state"), drop)).toBe(false);
    // The default beside --ready, spelled out so staff pass the same --state to release, reconcile and audit verify.
    expect(flag("--state")).toBe(`${posix.dirname(flag("--ready"))}/scanbridge-state`);
  });
});
