import type { CommandSpec } from "./types.js";
import { packSpec } from "./pack.spec.js";

/** Every command, in the order --help lists them. Each spec lazily imports its implementation. */
export const commandSpecs: readonly CommandSpec[] = [packSpec];
