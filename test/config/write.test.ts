import { readdirSync, readFileSync, statSync, writeFileSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeConfigFile, writeFileAtomic } from "../../src/config/write.js";
import { testdir } from "../helpers/cli.js";

describe("writing the config file", () => {
  it("creates the folder 0700 and the file 0600, whatever the umask", async () => {
    const dir = testdir({}, "sb-write-");
    const path = join(dir, "xdg", "scanbridge", "config.json");
    const old = process.umask(0o000);
    try {
      await writeConfigFile(path, { email: ["a@b.example"] });
    } finally {
      process.umask(old);
    }
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "xdg", "scanbridge")).mode & 0o777).toBe(0o700);
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual({ email: ["a@b.example"] });
  });

  it("replaces an existing world-readable file atomically, leaving 0600 and no temporary files", async () => {
    const dir = testdir({}, "sb-write-");
    const path = join(dir, "config.json");
    writeFileSync(path, "{}");
    chmodSync(path, 0o644);
    await writeConfigFile(path, { smtp: "smtp://h" });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(["config.json"]);
  });

  it("fails with a typed error and leaves no temporary file behind when the rename cannot happen", async () => {
    const dir = testdir({}, "sb-write-");
    const path = join(dir, "config.json");
    // A folder in the way: the rename fails (even as root), after the temporary file was written.
    const { mkdirSync } = await import("node:fs");
    mkdirSync(path);
    writeFileSync(join(path, "keep"), "x");
    await expect(writeFileAtomic(path, "{}")).rejects.toMatchObject({ exitCode: 1 });
    expect(readdirSync(dir)).toEqual(["config.json"]);
    expect(readFileSync(join(path, "keep"), "utf8")).toBe("x");
  });
});
