import { existsSync } from "node:fs";
import { readConfigFile, redactConfig, resolveConfig, unknownConfigKeys, type ValueSource } from "../config/load.js";
import type { OptionDef } from "../config/options.js";
import type { AnyCommandSpec, CommandContext, CommandOutput } from "./types.js";
import { t } from "../i18n/index.js";

/** Every option definition of every command and sub-command, in order (a shared option once per command). */
export function everyOptionDef(specs: readonly AnyCommandSpec[]): OptionDef[] {
  const out: OptionDef[] = [];
  const walk = (list: readonly AnyCommandSpec[]) => {
    for (const s of list) {
      out.push(...s.options);
      if (s.subcommands) walk(s.subcommands);
    }
  };
  walk(specs);
  return out;
}

/** Every configurable option of every command, once per key (flag-only switches left out). */
export function configurableOptions(specs: readonly AnyCommandSpec[]): OptionDef[] {
  const seen = new Map<string, OptionDef>();
  for (const d of everyOptionDef(specs)) if (!d.flagOnly && !seen.has(d.key)) seen.set(d.key, d);
  return [...seen.values()].sort((a, b) => a.key.localeCompare(b.key));
}

function show(v: unknown): string {
  if (v === undefined) return "";
  if (Array.isArray(v)) return v.length ? (v.some((x) => typeof x === "object" && x !== null) ? JSON.stringify(v) : v.join(", ")) : "(none)";
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** Run `scanbridge config show`: resolve every command's options from defaults, file and environment; redact secrets. */
export async function runConfigShowCommand(ctx: CommandContext<unknown>): Promise<CommandOutput> {
  // Imported here, not at the top: the registry lists this command's spec, so a static import would be a cycle.
  const { commandSpecs } = await import("./registry.js");
  const defs = configurableOptions(commandSpecs);
  const fileExists = existsSync(ctx.configPath);
  const file = readConfigFile(ctx.configPath, false, defs);
  const resolved = resolveConfig(defs, { flags: {}, env: ctx.env, file, filePath: ctx.configPath });
  const redacted = redactConfig(defs, resolved);
  const unknown = unknownConfigKeys(file ?? {}, ctx.configPath, everyOptionDef(commandSpecs));
  const unknownKeys = unknown.map((u) => u.key);
  for (const u of unknown) ctx.reporter.emit({ type: "warn", code: "CONFIG_UNKNOWN_KEY", message: u.message, text: u.text });
  const values: Record<string, { value: unknown; source: ValueSource; env?: string }> = {};
  for (const [k, v] of Object.entries(redacted)) values[k] = v;
  const width = Math.max(10, ...Object.keys(values).map((k) => k.length)) + 2;
  const human = [t(fileExists ? "config.show.file" : "config.show.fileMissing", { path: ctx.configPath }), ""];
  for (const [k, { value, source }] of Object.entries(values)) human.push(`${k.padEnd(width)}${show(value).padEnd(28)} ${source}`);
  const unset = defs.filter((d) => !(d.key in values)).map((d) => d.key);
  if (unset.length) human.push("", t("config.show.unset", { keys: unset.join(", ") }));
  return {
    data: { configFile: ctx.configPath, configFileFound: fileExists, values, unset, unknownKeys },
    human,
  };
}
