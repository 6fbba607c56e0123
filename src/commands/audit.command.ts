import type { OptionsOf } from "../config/options.js";
import type { CommandSpec } from "./types.js";
import { stateOption } from "./watch.command.js";

/** The option table of `audit verify`. */
export const auditVerifyOptionTable = [stateOption] as const;
/** The typed options `audit verify` receives. */
export type AuditVerifyCommandOptions = OptionsOf<typeof auditVerifyOptionTable>;

/** `scanbridge audit verify [file]`. */
export const auditVerifySpec: CommandSpec<typeof auditVerifyOptionTable> = {
  name: "verify",
  args: "[file]",
  summary: "check a watch audit log: hash chain, each line's HMAC (key in the state folder) and the head checkpoint (exit 3 when a line was changed, removed or inserted, or the tail cut)",
  options: auditVerifyOptionTable,
  examples: ["scanbridge audit verify /srv/scanbridge-state/audit.jsonl", "scanbridge audit verify /archive/audit-2026.jsonl --state /srv/scanbridge-state"],
  load: async () => (await import("./audit.js")).runAuditVerifyCommand,
};

/** `scanbridge audit`: parent of `audit verify`. */
export const auditSpec: CommandSpec<readonly []> = {
  name: "audit",
  summary: "work with the watch audit log",
  options: [],
  examples: ["scanbridge audit verify /srv/scanbridge-state/audit.jsonl"],
  subcommands: [auditVerifySpec],
  load: async () => (await import("./audit.js")).runAuditCommand,
};
