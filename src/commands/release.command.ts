import type { OptionDef, OptionsOf } from "../config/options.js";
import type { CommandSpec } from "./types.js";
import { stateOption } from "./watch.command.js";

/** The option table of `release`. */
export const releaseOptionTable = [
    stateOption,
    { key: "ready", flags: "--ready <dir>", description: "the watcher's ready folder (only to find the default state folder beside it)", type: "string", env: "SCANBRIDGE_WATCH_READY" },
    { key: "quarantine", flags: "--quarantine <dir>", description: "quarantine folder, as given to watch (default <state>/quarantine)", type: "string", env: "SCANBRIDGE_WATCH_QUARANTINE" },
    { key: "audit", flags: "--audit <file>", description: "audit log to record the release in, as given to watch (default <state>/audit.jsonl)", type: "string", env: "SCANBRIDGE_WATCH_AUDIT" },
  ] as const satisfies readonly OptionDef[];
/** The typed options `release` receives. */
export type ReleaseCommandOptions = OptionsOf<typeof releaseOptionTable>;

/** `scanbridge release <id> <dropdir>`: give a quarantined package another try. */
export const releaseSpec: CommandSpec<typeof releaseOptionTable> = {
  name: "release",
  args: "<id> <dropdir>",
  summary: "move a quarantined package (by its id, the first 12+ hex digits of its SHA-256) back into the drop folder for another try, clearing its reason",
  options: releaseOptionTable,
  examples: ["scanbridge release 3f2a9c01b7e4 /srv/drop --state /srv/scanbridge-state", "scanbridge release 3f2a9c01b7e4 /srv/drop --ready /srv/ready --json"],
  load: async () => (await import("./release.js")).runReleaseCommand,
};
