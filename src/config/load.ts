import { readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { UsageError } from "../errors.js";
import { msg, warnText, type LocalText } from "../i18n/index.js";
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
    throw new UsageError("CONFIG_UNREADABLE", msg("config.unreadable", { path, reason: (err as NodeJS.ErrnoException).code ?? (err as Error).message }), {
      hint: msg("config.unreadable.hint"),
    });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new UsageError("CONFIG_INVALID", msg("config.badJson", { path, reason: (err as Error).message }), {
      hint: msg("config.badJson.hint"),
    });
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new UsageError("CONFIG_INVALID", msg("config.notObject", { path }));
  }
  const obj = data as Record<string, unknown>;
  const secretKeys = defs.filter((d) => d.secret && obj[d.key] !== undefined).map((d) => d.key);
  if (secretKeys.length > 0 && process.platform !== "win32") {
    const mode = statSync(path).mode & 0o777;
    if (mode & 0o077) {
      throw new UsageError("CONFIG_PERMISSIONS", msg("config.readableSecrets", { path, keys: secretKeys.join(", "), mode: mode.toString(8) }), {
        hint: msg("config.readableSecrets.hint", { path }),
      });
    }
  }
  return obj;
}

/** Edit distance of two short strings (keys), case-insensitive; for "did you mean". */
function distance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[y.length]!;
}

/** A key of the config file that no command reads. */
export interface UnknownConfigKey {
  key: string;
  /** The one-line warning: names the file and the key, and the nearest known key when one is close. */
  message: string;
  /** The same warning in the reader's language. */
  text: LocalText;
}

/**
 * Keys of a config file that do nothing: unknown to every command (a typo: the nearest known key is suggested,
 * as git and npm do) or a flag-only switch, which the file cannot set. Keys are bounded (a short JSON file), so the
 * quadratic distance is cheap; names longer than 64 characters get no suggestion.
 */
export function unknownConfigKeys(file: Record<string, unknown>, filePath: string, defs: readonly OptionDef[]): UnknownConfigKey[] {
  const settable = defs.filter((d) => !d.flagOnly).map((d) => d.key);
  const flagOnly = new Map(defs.filter((d) => d.flagOnly).map((d) => [d.key, d]));
  const out: UnknownConfigKey[] = [];
  for (const key of Object.keys(file)) {
    if (settable.includes(key)) continue;
    const only = flagOnly.get(key);
    if (only) {
      out.push({ key, ...warnText("config.flagOnlyKey", { key, path: filePath, flag: only.flags?.split(/[ ,]/).find((f) => f.startsWith("--")) ?? key }) });
      continue;
    }
    let best: string | undefined;
    let bestD = Infinity;
    if (key.length <= 64) {
      for (const k of settable) {
        const d = distance(key, k);
        if (d < bestD) [best, bestD] = [k, d];
      }
    }
    const close = best !== undefined && bestD <= Math.max(2, Math.floor(key.length / 3));
    out.push({ key, ...(close ? warnText("config.unknownKeyNear", { key, path: filePath, near: best! }) : warnText("config.unknownKey", { key, path: filePath })) });
  }
  return out;
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
