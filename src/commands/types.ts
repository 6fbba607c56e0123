import type { ValueSource } from "../config/load.js";
import type { OptionDef, OptionsOf } from "../config/options.js";
import type { Reporter } from "../ui/reporter.js";
import type { Prompter } from "../ui/prompter.js";

/**
 * What every command receives: its resolved options, I/O seams and the abort signal. No process.* inside commands.
 * `O` is the command's typed options, inferred from its option table (OptionsOf<typeof table>).
 */
export interface CommandContext<O = unknown> {
  /** Positional arguments (variadic ones flattened). */
  args: string[];
  /** Resolved and validated options (defaults < config file < env < flags), typed by the command's option table. */
  options: O;
  /** Where each resolved option came from (for messages that name the file, variable or flag to fix). */
  sources: Readonly<Record<string, ValueSource>>;
  /** The global -v/--verbose: details, including patient names in messages. */
  verbose: boolean;
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

/**
 * What a command returns: data for --json and lines for a person. The lines may be given as a function: they are
 * then made only when shown (never with --json or --quiet; a count in them loads ICU's plural data, ~20 ms).
 */
export interface CommandOutput {
  data: Record<string, unknown>;
  human: string[] | (() => string[]);
  /** Non-zero when the command finished but must report failure (e.g. some notifications pending). */
  exitCode?: number;
}

/**
 * A command's declaration: drives commander, config resolution, --help and the README's option tables. `T` is its
 * option table; the implementation receives the options typed from it.
 */
export interface CommandSpec<T extends readonly OptionDef[] = readonly OptionDef[]> {
  name: string;
  /** Positional arguments in commander syntax, e.g. "<input...>". */
  args?: string;
  summary: string;
  options: T;
  examples: readonly string[];
  /** Lazily imports the implementation. */
  load: () => Promise<(ctx: CommandContext<OptionsOf<T>>) => Promise<CommandOutput>>;
  /**
   * Runs with the resolved options before `load`, for work that can overlap the import (upload opens its TCP
   * connection here). Must not throw or print; returns a cleanup run when the command ends.
   */
  warmUp?: (ctx: CommandContext<OptionsOf<T>>) => (() => void) | undefined;
  /** Sub-commands (e.g. `config show`). */
  subcommands?: readonly AnyCommandSpec[];
}

/**
 * A command of any option table, as the registry and cli.ts hold it. cli.ts resolves the options against the
 * command's own table and hands them over (the one place they are typed by assertion).
 */
export interface AnyCommandSpec extends Omit<CommandSpec, "load" | "warmUp"> {
  load: () => Promise<(ctx: CommandContext<never>) => Promise<CommandOutput>>;
  warmUp?: (ctx: CommandContext<never>) => (() => void) | undefined;
}
