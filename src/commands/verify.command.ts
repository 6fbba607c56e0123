import type { OptionDef, OptionsOf } from "../config/options.js";
import type { CommandSpec } from "./types.js";

/** Options shared by verify and watch: what a package must satisfy. */
export const packageCheckOptions = [
  { key: "sealedOnly", flags: "--sealed-only", description: "refuse hand-made packages (no manifest.json); by default they are accepted and marked unsealed", type: "boolean", default: false },
  { key: "allowUnsealed", flags: "--allow-unsealed", description: "accept hand-made packages without manifest.json (the default now; kept for old scripts)", type: "boolean", default: false },
  { key: "zipEncodings", flags: "--zip-encodings <list>", description: "code pages to try first for zip names without the UTF-8 flag, e.g. cp936,cp720 (the choice is always recorded)", type: "list", env: "SCANBRIDGE_ZIP_ENCODINGS" },
  { key: "maxEntries", flags: "--max-entries <n>", description: "refuse packages with more entries than this", type: "number", default: 100000, min: 1 },
  { key: "maxUnpacked", flags: "--max-unpacked <size>", description: "refuse packages whose declared uncompressed size exceeds this", type: "size", default: "100GB", min: 1 },
  { key: "maxRatio", flags: "--max-ratio <n>", description: "refuse entries compressed more than this ratio (zip bombs)", type: "number", default: 100, min: 2 },
] as const satisfies readonly OptionDef[];

/** The option table of `verify`. */
export const verifyOptionTable = packageCheckOptions;
/** The typed options `verify` receives. */
export type VerifyCommandOptions = OptionsOf<typeof verifyOptionTable>;

/** `scanbridge verify`. */
export const verifySpec: CommandSpec<typeof verifyOptionTable> = {
  name: "verify",
  args: "<package>",
  summary: "check a received package: zip structure, safe names, limits, CRC and SHA-256 of every file, manifest and .sha256 marker",
  options: verifyOptionTable,
  examples: ['scanbridge verify "José Álvarez Núñez.zip"', "scanbridge verify incoming.zip --json", "scanbridge verify 王小明.zip --zip-encodings cp936", "scanbridge verify incoming.zip --sealed-only"],
  load: async () => (await import("./verify.js")).runVerifyCommand,
};
