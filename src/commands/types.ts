import type { OptionDef } from "../config/options.js";
import type { Reporter } from "../ui/reporter.js";
import type { Prompter } from "../ui/prompter.js";

/** What every command receives: resolved options, I/O seams and the abort signal. No process.* inside commands. */
export interface CommandContext {
  /** Positional arguments (variadic ones flattened). */
  args: string[];
  /** Resolved and validated options (defaults < config file < env < flags). */
  options: Record<string, unknown>;
  /** Environment, for secrets such as SCANBRIDGE_SFTP_PASSWORD (read only by commands that need them). */
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** True when a person is at a terminal (stdin and stderr are TTYs and not --json). */
  interactive: boolean;
  reporter: Reporter;
  prompter: Prompter;
  signal: AbortSignal;
  /** Path of the config file in use (read or to be written). */
  configPath: string;
}

/** What a command returns: data for --json and lines for a person. */
export interface CommandOutput {
  data: Record<string, unknown>;
  human: string[];
  /** Non-zero when the command finished but must report failure (e.g. some notifications pending). */
  exitCode?: number;
}

/** A command's declaration: drives commander, config resolution, --help and the README. */
export interface CommandSpec {
  name: string;
  /** Positional arguments in commander syntax, e.g. "<input...>". */
  args?: string;
  summary: string;
  options: readonly OptionDef[];
  examples: readonly string[];
  /** Lazily imports the implementation. */
  load: () => Promise<(ctx: CommandContext) => Promise<CommandOutput>>;
  /** Sub-commands (e.g. `config show`). */
  subcommands?: readonly CommandSpec[];
}
