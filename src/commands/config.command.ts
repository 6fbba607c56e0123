import type { CommandSpec } from "./types.js";

const showExamples = ["scanbridge config show", "scanbridge config show --json", "scanbridge --config ./clinic.json config show"];

/** `scanbridge config show`. */
export const configShowSpec: CommandSpec<readonly []> = {
  name: "show",
  summary: "print the resolved configuration of every command (file < environment), each value with its source; secrets redacted",
  options: [],
  examples: showExamples,
  load: async () => (await import("./config.js")).runConfigShowCommand,
};

/** `scanbridge config` (alone: the same as `config show`). */
export const configSpec: CommandSpec<readonly []> = {
  name: "config",
  summary: "show the configuration scanbridge would use",
  options: [],
  examples: showExamples,
  load: async () => (await import("./config.js")).runConfigShowCommand,
  subcommands: [configShowSpec],
};
