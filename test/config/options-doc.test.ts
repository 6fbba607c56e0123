/** The README's option table is generated from the commands' option tables: this fails when they drift apart. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { renderOptionTable, withOptionTable } from "../../src/commands/options-doc.js";
import { commandSpecs } from "../../src/commands/registry.js";
import { ROOT } from "../helpers/cli.js";

describe("README option table", () => {
  it("is exactly what the option tables generate (run `npm run docs:options` after changing an option)", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    expect(withOptionTable(readme, renderOptionTable(commandSpecs))).toBe(readme);
  });

  it("has a row for every flag of every command, secrets without a flag", () => {
    const table = renderOptionTable(commandSpecs);
    expect(table).toContain("| `--ready <dir>` | `ready` | `SCANBRIDGE_WATCH_READY` |  | watch |");
    expect(table).toMatch(/\| \(never a flag\) \| `sftpPassword` \| `SCANBRIDGE_SFTP_PASSWORD` \|/);
    expect(table).toMatch(/\| `-f, --force` \| \(flag only\) \|/);
    // A shared option is one row naming every command that takes it.
    expect(table).toContain("| `--email <addr,...>` | `email` | `SCANBRIDGE_EMAIL` |  | send, notify, init, watch |");
  });
});
