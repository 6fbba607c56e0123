import { Command, CommanderError, Option } from "commander";
import { commandSpecs } from "./commands/registry.js";
import type { AnyCommandSpec, CommandContext } from "./commands/types.js";
import { defaultConfigPath, readConfigFile, resolveConfig, unknownConfigKeys } from "./config/load.js";
import { everyOptionDef } from "./commands/config.js";
import { envNameOf, type OptionDef } from "./config/options.js";
import { ExitCode, InterruptedError, UsageError, exitCodeOf } from "./errors.js";
import { helpText, LANGUAGES, msg, resolveLanguage, setLanguage, t, type MessageId } from "./i18n/index.js";
import { translateUsageError } from "./i18n/usage.js";
import { createInquirerPrompter, type Prompter } from "./ui/prompter.js";
import { createReporter, loadSpinner, type ReporterMode } from "./ui/reporter.js";
import { VERSION } from "./version.js";
import { removeTrackedTemps } from "./util/tempfiles.js";

/** Seams for running the CLI in-process (tests) or for real (bin/). */
export interface MainDeps {
  env?: NodeJS.ProcessEnv;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  stdinIsTTY?: boolean;
  cwd?: string;
  prompter?: Prompter;
  /** Install SIGINT/SIGTERM handlers (the real binary does; in-process tests do not). */
  handleSignals?: boolean;
}

interface GlobalFlags {
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  debug?: boolean;
  color?: boolean;
  config?: string;
  lang?: string;
}

const HELP_TITLES: Record<string, MessageId> = {
  "Usage:": "help.usage", "Options:": "help.options", "Commands:": "help.commands", "Arguments:": "help.arguments", "Global Options:": "help.globalOptions",
};

/** The value of --lang (or --lang=xx) before commander parses, so that --help itself is in that language. */
function langFlag(argv: string[]): string | undefined {
  for (const [i, a] of argv.entries()) {
    if (a === "--") break;
    if (a === "--lang") return argv[i + 1];
    if (a.startsWith("--lang=")) return a.slice("--lang=".length);
  }
  return undefined;
}

function describeOption(def: OptionDef, command: string): string {
  const extra: string[] = [];
  if (def.default !== undefined && def.default !== false) extra.push(t("help.default", { value: JSON.stringify(def.default) }));
  const env = envNameOf(def);
  if (env) extra.push(t("help.env", { name: env }));
  const description = helpText("options", def.key, def.description, command);
  return extra.length ? `${description} (${extra.join("; ")})` : description;
}

function addOptions(cmd: Command, defs: readonly OptionDef[], command: string): void {
  for (const def of defs) {
    if (!def.flags || def.secret) continue;
    const opt = new Option(def.flags, describeOption(def, command));
    if (def.choices) opt.choices(def.choices as string[]);
    if (def.repeatable) opt.argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]);
    cmd.addOption(opt);
  }
}

/** Run the CLI; returns the exit code. Only this module and the entry (src/start.ts, bin/) touch process.*. */
export async function main(argv: string[], deps: MainDeps = {}): Promise<number> {
  const env = deps.env ?? process.env;
  const stdout = deps.stdout ?? process.stdout;
  const stderr = deps.stderr ?? process.stderr;
  // A terminal that reports no width (e.g. `script` without a size) makes spinners redraw forever: plain lines there.
  const stderrIsTTY = Boolean((stderr as NodeJS.WriteStream).isTTY) && ((stderr as NodeJS.WriteStream).columns ?? 0) > 0;
  const stdinIsTTY = deps.stdinIsTTY ?? Boolean(process.stdin.isTTY);
  const handleSignals = deps.handleSignals ?? deps.stdout === undefined;
  let exitCode: number = ExitCode.ok;
  // Human messages in the reader's language; --json, error codes and logs stay English.
  const language = resolveLanguage(langFlag(argv), env, () => new Intl.DateTimeFormat().resolvedOptions().locale);
  setLanguage(language.lang);

  // commander's own usage errors are English; they are shown in the reader's language like ours.
  const output = { writeOut: (s: string) => stdout.write(s), writeErr: (s: string) => stderr.write(s), outputError: (s: string, write: (s: string) => void) => write(translateUsageError(s)) };
  const program = new Command("scanbridge")
    .description(t("cli.description"))
    .version(VERSION, "-V, --version", t("cli.opt.version"))
    .helpOption("-h, --help", t("cli.opt.help"))
    .helpCommand("help [command]", t("cli.opt.help"))
    .option("--json", t("cli.opt.json"))
    .option("-q, --quiet", t("cli.opt.quiet"))
    .option("-v, --verbose", t("cli.opt.verbose"))
    .option("--debug", t("cli.opt.debug"))
    .option("--no-color", t("cli.opt.noColor"))
    .option("--config <file>", t("cli.opt.config"))
    .option("--lang <language>", t("cli.opt.lang"))
    .showHelpAfterError(t("cli.helpAfterError"))
    .configureHelp({ styleTitle: (title: string) => (HELP_TITLES[title] ? t(HELP_TITLES[title]) : title) })
    .configureOutput(output)
    .exitOverride();
  program.addHelpText(
    "after",
    `
${t("help.examples")}
  $ scanbridge send ./cd-scans ./reports.pdf --patient "José Álvarez Núñez" --to sftp://jose@upload.example.org/incoming
  $ scanbridge pack /media/cdrom --patient "王小明" --out ~/Desktop
  $ scanbridge verify "José Álvarez Núñez.zip"
  $ scanbridge watch /srv/drop --ready /srv/ready

${t("cli.exitCodes")}`,
  );

  const register = (parent: Command, spec: AnyCommandSpec) => {
    const path = parent === program ? spec.name : `${parent.name()} ${spec.name}`;
    const cmd = parent.command(spec.name).description(helpText("commands", path, spec.summary)).helpOption("-h, --help", t("cli.opt.help"));
    if (spec.args) cmd.arguments(spec.args);
    addOptions(cmd, spec.options, path);
    if (spec.examples.length) cmd.addHelpText("after", `\n${t("help.examples")}\n${spec.examples.map((e) => `  $ ${e}`).join("\n")}\n`);
    cmd.exitOverride();
    cmd.configureOutput(output);
    for (const sub of spec.subcommands ?? []) register(cmd, sub);
    cmd.action(async (...actionArgs: unknown[]) => {
      const command = actionArgs[actionArgs.length - 1] as Command;
      const globals = program.opts<GlobalFlags>();
      const positional = command.processedArgs.flatMap((a: string | string[] | undefined) => (Array.isArray(a) ? a.map(String) : a === undefined ? [] : [String(a)]));
      const color = globals.color !== false && env.NO_COLOR === undefined && stderrIsTTY;
      const mode: ReporterMode = globals.json ? "json" : globals.quiet ? "quiet" : stderrIsTTY ? "tty" : "plain";
      if (mode === "tty") await loadSpinner();
      const reporter = createReporter({ mode, color, verbose: Boolean(globals.verbose), stdout, stderr });
      const controller = new AbortController();
      let interrupts = 0;
      const onSignal = () => {
        interrupts++;
        controller.abort(new InterruptedError());
        if (interrupts > 1) {
          // Second Ctrl-C: leave now, but still remove temporary files (a half-written zip is never left behind).
          removeTrackedTemps();
          process.exit(ExitCode.interrupted);
        }
      };
      if (handleSignals) {
        process.on("SIGINT", onSignal);
        process.on("SIGTERM", onSignal);
      }
      let cleanup: (() => void) | undefined;
      try {
        if (language.unsupported !== undefined) {
          throw new UsageError("LANGUAGE_UNSUPPORTED", msg("cli.langUnsupported", { lang: language.unsupported }), { hint: msg("cli.langHint", { list: LANGUAGES.join(", ") }) });
        }
        const explicitConfig = globals.config ?? env.SCANBRIDGE_CONFIG;
        const configPath = explicitConfig ?? defaultConfigPath(env);
        const file = readConfigFile(configPath, explicitConfig !== undefined, spec.options);
        // A typo in a hospital's config must not silently do nothing: every key no command reads is named.
        // (`config show` reports them itself.)
        if (file && spec.name !== "config" && spec.name !== "show") {
          for (const u of unknownConfigKeys(file, configPath, allOptions)) reporter.emit({ type: "warn", code: "CONFIG_UNKNOWN_KEY", message: u.message, text: u.text });
        }
        const resolved = resolveConfig(spec.options, { flags: command.opts(), env, file, filePath: configPath });
        // The one place options are typed by assertion: resolveConfig parsed every value by this command's own
        // table, which is what the implementation's options type is inferred from.
        const ctx: CommandContext<never> = {
          args: positional,
          options: resolved.values as never,
          sources: resolved.sources,
          verbose: Boolean(globals.verbose),
          env,
          cwd: deps.cwd ?? process.cwd(),
          interactive: stdinIsTTY && stderrIsTTY && !globals.json,
          reporter,
          prompter: deps.prompter ?? createInquirerPrompter(stderr),
          signal: controller.signal,
          configPath,
        };
        cleanup = spec.warmUp?.(ctx);
        const run = await spec.load();
        const out = await run(ctx);
        reporter.result(out.data, out.human);
        exitCode = out.exitCode ?? ExitCode.ok;
      } catch (err) {
        const e = controller.signal.aborted && !(err instanceof InterruptedError) && exitCodeOf(err) === ExitCode.unexpected ? new InterruptedError() : err;
        reporter.fail(e, Boolean(globals.debug));
        exitCode = exitCodeOf(e);
      } finally {
        cleanup?.();
        reporter.close();
        if (handleSignals) {
          process.off("SIGINT", onSignal);
          process.off("SIGTERM", onSignal);
        }
      }
    });
  };
  const allOptions = everyOptionDef(commandSpecs);
  for (const spec of commandSpecs) register(program, spec);

  // No command at all: the usage goes to stderr and the exit code says "usage error" (as git, curl and tar do), so
  // a script that lost its arguments fails instead of silently succeeding.
  if (argv.slice(2).length === 0) {
    stderr.write(program.helpInformation());
    return ExitCode.usage;
  }

  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help") return ExitCode.ok;
      return ExitCode.usage;
    }
    if (err instanceof UsageError) return ExitCode.usage;
    throw err;
  }
  return exitCode;
}
