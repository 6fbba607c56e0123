import { UsageError } from "../errors.js";
import { msg, type MessageId, type MessageValues } from "../i18n/index.js";

/** Value kinds an option can have; each has one parser shared by file, environment and flags. */
export type OptionType = "string" | "boolean" | "number" | "size" | "list" | "duration" | "json";

/**
 * One option, declared once: it drives commander, the config file, SCANBRIDGE_* variables and the README.
 * `key` is the camelCase name commander derives from the long flag, and the key in config.json.
 */
export interface OptionDef {
  key: string;
  /** commander flags, e.g. "--email-limit <size>"; omitted for secrets (never on the command line). */
  flags?: string;
  description: string;
  type: OptionType;
  default?: unknown;
  /** Environment variable; defaults to SCANBRIDGE_<KEY_IN_SNAKE_CASE>. false: not settable from env. */
  env?: string | false;
  /** Not settable in the config file (one-off switches such as --force). */
  flagOnly?: boolean;
  /** A secret: never accepted as a flag, redacted by `config show`, and the config file holding it must be 0600. */
  secret?: boolean;
  /** Allowed values for a string option. */
  choices?: readonly string[];
  /** Lower bound for number/size options. */
  min?: number;
  max?: number;
  /** Allow repeating the flag (collected into a list). */
  repeatable?: boolean;
}

/** The TypeScript type of one option's resolved value (what parseOptionValue returns for its type). */
export type OptionValue<D extends OptionDef> = D["type"] extends "boolean"
  ? boolean
  : D["type"] extends "number" | "size" | "duration"
    ? number
    : D["type"] extends "list"
      ? string[]
      : D["type"] extends "json"
        ? unknown
        : D extends { choices: readonly (infer C extends string)[] }
          ? C
          : string;

/** An option the resolved values always hold: it has a default. */
type Defaulted<D> = D extends { default: NonNullable<unknown> } ? true : false;

/**
 * The typed options a command receives, inferred from its option table (declared `as const satisfies readonly
 * OptionDef[]`): one property per key, of the option's value type; optional unless the option has a default.
 */
export type OptionsOf<T extends readonly OptionDef[]> = {
  readonly [D in T[number] as Defaulted<D> extends true ? D["key"] : never]: OptionValue<D>;
} & {
  readonly [D in T[number] as Defaulted<D> extends true ? never : D["key"]]?: OptionValue<D>;
};

/** The definitions of `keys` from a table, keeping their literal types (for options shared between commands). */
export function pickOptions<T extends readonly OptionDef[], K extends T[number]["key"]>(defs: T, keys: readonly K[]): Array<Extract<T[number], { key: K }>> {
  const wanted = new Set<string>(keys);
  return defs.filter((d): d is Extract<T[number], { key: K }> => wanted.has(d.key));
}

/** Environment variable name for an option. */
export function envNameOf(def: OptionDef): string | undefined {
  if (def.env === false || def.flagOnly) return undefined;
  return def.env ?? `SCANBRIDGE_${def.key.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase()}`;
}

const SIZE_UNITS: Record<string, number> = {
  "": 1, b: 1,
  k: 1e3, kb: 1e3, kib: 1024,
  m: 1e6, mb: 1e6, mib: 1024 ** 2,
  g: 1e9, gb: 1e9, gib: 1024 ** 3,
  t: 1e12, tb: 1e12, tib: 1024 ** 4,
};

/** Parse "5MB", "5 MiB", "1.5G", "1048576" into bytes (decimal units as the office's "5 MB" rule means). */
export function parseSize(input: string | number): number | undefined {
  if (typeof input === "number") return Number.isFinite(input) && input >= 0 ? Math.floor(input) : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(input);
  if (!m) return undefined;
  const mult = SIZE_UNITS[m[2]!.toLowerCase()];
  if (mult === undefined) return undefined;
  return Math.floor(Number(m[1]) * mult);
}

/** Parse "30", "30s", "5m", "2h", "500ms" into seconds. */
export function parseDuration(input: string | number): number | undefined {
  if (typeof input === "number") return Number.isFinite(input) && input >= 0 ? input : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(input);
  if (!m) return undefined;
  const n = Number(m[1]);
  switch (m[2]) {
    case "ms": return n / 1000;
    case "m": return n * 60;
    case "h": return n * 3600;
    default: return n;
  }
}

/** Parse one raw value for an option; throws UsageError naming the key and where the value came from. */
export function parseOptionValue(def: OptionDef, raw: unknown, source: string): unknown {
  const bad = (why: MessageId, values: MessageValues = {}) =>
    new UsageError("BAD_OPTION", msg("option.invalid", { key: def.key, source, why: msg(why, values) }), {
      hint: def.flags ? msg("option.invalid.hintFlag", { flag: def.flags.split(/[ ,]/)[0]! }) : msg("option.invalid.hintKey", { key: def.key, source }),
    });
  switch (def.type) {
    case "boolean": {
      if (typeof raw === "boolean") return raw;
      const s = String(raw).trim().toLowerCase();
      if (["1", "true", "yes", "on"].includes(s)) return true;
      if (["0", "false", "no", "off", ""].includes(s)) return false;
      throw bad("option.expectBoolean", { value: String(raw) });
    }
    case "number": {
      const n = typeof raw === "number" ? raw : Number(String(raw).trim());
      if (!Number.isFinite(n) || String(raw).trim() === "") throw bad("option.expectNumber", { value: String(raw) });
      if (def.min !== undefined && n < def.min) throw bad("option.atLeast", { min: def.min });
      if (def.max !== undefined && n > def.max) throw bad("option.atMost", { max: def.max });
      return n;
    }
    case "size": {
      const n = parseSize(raw as string | number);
      if (n === undefined) throw bad("option.expectSize", { value: String(raw) });
      if (def.min !== undefined && n < def.min) throw bad("option.atLeastBytes", { min: def.min });
      return n;
    }
    case "duration": {
      const n = parseDuration(raw as string | number);
      if (n === undefined) throw bad("option.expectDuration", { value: String(raw) });
      if (def.min !== undefined && n < def.min) throw bad("option.atLeastSeconds", { min: def.min });
      return n;
    }
    case "list": {
      const items = Array.isArray(raw) ? raw.map(String) : String(raw).split(",");
      return items.map((s) => s.trim()).filter((s) => s.length > 0);
    }
    case "json": {
      // Structured values (e.g. routing rules): as JSON in the config file, or JSON text from the environment.
      // The command that uses the value checks its shape.
      if (typeof raw !== "string") return raw;
      try {
        return JSON.parse(raw) as unknown;
      } catch (err) {
        throw bad("option.expectJson", { reason: (err as Error).message });
      }
    }
    case "string": {
      if (typeof raw !== "string" && typeof raw !== "number") throw bad("option.expectText");
      const s = String(raw);
      if (def.choices && !def.choices.includes(s)) throw bad("option.expectChoice", { list: def.choices.join(", "), value: s });
      return s;
    }
  }
}
