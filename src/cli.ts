import { Command, CommanderError, Option } from "commander";
import { commandSpecs } from "./commands/registry.js";
import type { AnyCommandSpec, CommandContext } from "./commands/types.js";
import { defaultConfigPath, readConfigFile, resolveConfig, unknownConfigKeys } from "./config/load.js";
import { everyOptionDef } from "./commands/config.js";
import { envNameOf, type OptionDef } from "./config/options.js";
import { ExitCode, InterruptedError, UsageError, exitCodeOf } from "./errors.js";
import { createInquirerPrompter, type Prompter } from "./ui/prompter.js";
import { createReporter, type ReporterMode } from "./ui/reporter.js";
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
}

function describeOption(def: OptionDef): string {
  const extra: string[] = [];
  if (def.default !== undefined && def.default !== false) extra.push(`default: ${JSON.stringify(def.default)}`);
  const env = envNameOf(def);
  if (env) extra.push(`env ${env}`);
  return extra.length ? `${def.description} (${extra.join("; ")})` : def.description;
}

function addOptions(cmd: Command, defs: readonly OptionDef[]): void {
  for (const def of defs) {
    if (!def.flags || def.secret) continue;
    const opt = new Option(def.flags, describeOption(def));
    if (def.choices) opt.choices(def.choices as string[]);
    if (def.repeatable) opt.argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]);
    cmd.addOption(opt);
  }
}

/** Run the CLI; returns the exit code. Only this module and bin/ touch process.*. */
export async function main(argv: string[], deps: MainDeps = {}): Promise<number> {
  const env = deps.env ?? process.env;
  const stdout = deps.stdout ?? process.stdout;
  const stderr = deps.stderr ?? process.stderr;
  // A terminal that reports no width (e.g. `script` without a size) makes spinners redraw forever: plain lines there.
  const stderrIsTTY = Boolean((stderr as NodeJS.WriteStream).isTTY) && ((stderr as NodeJS.WriteStream).columns ?? 0) > 0;
  const stdinIsTTY = deps.stdinIsTTY ?? Boolean(process.stdin.isTTY);
  const handleSignals = deps.handleSignals ?? deps.stdout === undefined;
  let exitCode: number = ExitCode.ok;

  const program = new Command("scanbridge")
    .description("Send medical imaging to a hospital's international office: pack, upload, notify, verify, watch.")
    .version(VERSION, "-V, --version")
    .option("--json", "print one JSON result object on stdout (JSON Lines for watch)")
    .option("-q, --quiet", "print nothing but errors")
    .option("-v, --verbose", "show details, including patient names in messages")
    .option("--debug", "show stack traces for unexpected errors")
    .option("--no-color", "disable colours (NO_COLOR is honoured too)")
    .option("--config <file>", "config file (env SCANBRIDGE_CONFIG; default $XDG_CONFIG_HOME/scanbridge/config.json)")
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ writeOut: (s) => stdout.write(s), writeErr: (s) => stderr.write(s) })
    .exitOverride();
  program.addHelpText(
    "after",
    `
Examples:
  $ scanbridge send ./cd-scans ./reports.pdf --patient "José Álvarez Núñez" --to sftp://jose@upload.example.org/incoming
  $ scanbridge pack /media/cdrom --patient "王小明" --out ~/Desktop
  $ scanbridge verify "José Álvarez Núñez.zip"
  $ scanbridge watch /srv/drop --ready /srv/ready

Exit codes: 0 ok, 1 unexpected, 2 usage, 3 input rejected, 4 size limit, 5 network/auth/host key,
            6 remote verification, 7 notification pending, 130 interrupted.`,
  );

  const register = (parent: Command, spec: AnyCommandSpec) => {
    const cmd = parent.command(spec.name).description(spec.summary);
    if (spec.args) cmd.arguments(spec.args);
    addOptions(cmd, spec.options);
    if (spec.examples.length) cmd.addHelpText("after", `\nExamples:\n${spec.examples.map((e) => `  $ ${e}`).join("\n")}\n`);
    cmd.exitOverride();
    cmd.configureOutput({ writeOut: (s) => stdout.write(s), writeErr: (s) => stderr.write(s) });
    for (const sub of spec.subcommands ?? []) register(cmd, sub);
    cmd.action(async (...actionArgs: unknown[]) => {
      const command = actionArgs[actionArgs.length - 1] as Command;
      const globals = program.opts<GlobalFlags>();
      const positional = command.processedArgs.flatMap((a: string | string[] | undefined) => (Array.isArray(a) ? a.map(String) : a === undefined ? [] : [String(a)]));
      const color = globals.color !== false && env.NO_COLOR === undefined && stderrIsTTY;
      const mode: ReporterMode = globals.json ? "json" : globals.quiet ? "quiet" : stderrIsTTY ? "tty" : "plain";
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
      try {
        const explicitConfig = globals.config ?? env.SCANBRIDGE_CONFIG;
        const configPath = explicitConfig ?? defaultConfigPath(env);
        const file = readConfigFile(configPath, explicitConfig !== undefined, spec.options);
        // A typo in a hospital's config must not silently do nothing: every key no command reads is named.
        // (`config show` reports them itself.)
        if (file && spec.name !== "config" && spec.name !== "show") {
          for (const u of unknownConfigKeys(file, configPath, allOptions)) reporter.emit({ type: "warn", code: "CONFIG_UNKNOWN_KEY", message: u.message });
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
        const run = await spec.load();
        const out = await run(ctx);
        reporter.result(out.data, out.human);
        exitCode = out.exitCode ?? ExitCode.ok;
      } catch (err) {
        const e = controller.signal.aborted && !(err instanceof InterruptedError) && exitCodeOf(err) === ExitCode.unexpected ? new InterruptedError() : err;
        reporter.fail(e, Boolean(globals.debug));
        exitCode = exitCodeOf(e);
      } finally {
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
