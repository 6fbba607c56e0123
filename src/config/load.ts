import { readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { UsageError } from "../errors.js";
import { envNameOf, parseOptionValue, type OptionDef } from "./options.js";

/** Where a resolved value came from. */
export type ValueSource = "default" | "config file" | "environment" | "flag";

/** The resolved, validated configuration for one command. */
export interface ResolvedConfig {
  values: Record<string, unknown>;
  sources: Record<string, ValueSource>;
  /** The config file that was read, if any. */
  file: string | undefined;
}

/** Default config file location: $XDG_CONFIG_HOME/scanbridge/config.json or ~/.config/scanbridge/config.json. */
export function defaultConfigPath(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.length > 0 ? env.XDG_CONFIG_HOME : join(env.HOME || homedir(), ".config");
  return join(base, "scanbridge", "config.json");
}

/** Read and parse the config file; a missing default file is fine, a missing explicit one is a usage error. */
export function readConfigFile(path: string, explicit: boolean, defs: readonly OptionDef[]): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" && !explicit) return undefined;
    throw new UsageError("CONFIG_UNREADABLE", `Cannot read config file ${path}: ${(err as Error).message}`, {
      hint: "Check the path given with --config or SCANBRIDGE_CONFIG, or run `scanbridge init`.",
    });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new UsageError("CONFIG_INVALID", `Config file ${path} is not valid JSON: ${(err as Error).message}`, {
      hint: "Fix the file or write it anew with `scanbridge init`.",
    });
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new UsageError("CONFIG_INVALID", `Config file ${path} must hold a JSON object`);
  }
  const obj = data as Record<string, unknown>;
  const secretKeys = defs.filter((d) => d.secret && obj[d.key] !== undefined).map((d) => d.key);
  if (secretKeys.length > 0 && process.platform !== "win32") {
    const mode = statSync(path).mode & 0o777;
    if (mode & 0o077) {
      throw new UsageError("CONFIG_PERMISSIONS", `Config file ${path} holds secrets (${secretKeys.join(", ")}) but others can read it (mode ${mode.toString(8)})`, {
        hint: `Run: chmod 600 ${path}`,
      });
    }
  }
  return obj;
}

/**
 * Resolve options from defaults, config file, SCANBRIDGE_* environment and flags (later wins) into one
 * validated object. A bad value fails here, naming the key and where it came from.
 */
export function resolveConfig(
  defs: readonly OptionDef[],
  input: { flags: Record<string, unknown>; env: NodeJS.ProcessEnv; file?: Record<string, unknown>; filePath?: string },
): ResolvedConfig {
  const values: Record<string, unknown> = {};
  const sources: Record<string, ValueSource> = {};
  for (const def of defs) {
    if (def.default !== undefined) {
      values[def.key] = parseOptionValue(def, def.default, "default");
      sources[def.key] = "default";
    }
    const fromFile = input.file?.[def.key];
    if (fromFile !== undefined && !def.flagOnly) {
      values[def.key] = parseOptionValue(def, fromFile, `config file ${input.filePath ?? ""}`.trim());
      sources[def.key] = "config file";
    }
    const envName = envNameOf(def);
    const fromEnv = envName ? input.env[envName] : undefined;
    if (fromEnv !== undefined && fromEnv !== "") {
      values[def.key] = parseOptionValue(def, fromEnv, `environment variable ${envName}`);
      sources[def.key] = "environment";
    }
    const fromFlag = input.flags[def.key];
    if (fromFlag !== undefined && !def.secret) {
      values[def.key] = parseOptionValue(def, fromFlag, `flag ${def.flags?.split(/[ ,]/)[0] ?? def.key}`);
      sources[def.key] = "flag";
    }
  }
  return { values, sources, file: input.file ? input.filePath : undefined };
}

/** The configuration with secrets replaced by "***", for `config show`. */
export function redactConfig(defs: readonly OptionDef[], cfg: ResolvedConfig): Record<string, { value: unknown; source: ValueSource }> {
  const out: Record<string, { value: unknown; source: ValueSource }> = {};
  for (const def of defs) {
    if (!(def.key in cfg.values)) continue;
    out[def.key] = { value: def.secret ? "***" : cfg.values[def.key], source: cfg.sources[def.key]! };
  }
  return out;
}
