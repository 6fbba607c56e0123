import type { CommandSpec } from "./types.js";
import { stateOption } from "./watch.command.js";

/** `scanbridge audit verify [file]`. */
export const auditVerifySpec: CommandSpec = {
  name: "verify",
  args: "[file]",
  summary: "check a watch audit log: hash chain, each line's HMAC (key in the state folder) and the head checkpoint (exit 3 when a line was changed, removed or inserted, or the tail cut)",
  options: [stateOption],
  examples: ["scanbridge audit verify /srv/scanbridge-state/audit.jsonl", "scanbridge audit verify /archive/audit-2026.jsonl --state /srv/scanbridge-state"],
  load: async () => (await import("./audit.js")).runAuditVerifyCommand,
};

/** `scanbridge audit`: parent of `audit verify`. */
export const auditSpec: CommandSpec = {
  name: "audit",
  summary: "work with the watch audit log",
  options: [],
  examples: ["scanbridge audit verify /srv/scanbridge-state/audit.jsonl"],
  subcommands: [auditVerifySpec],
  load: async () => (await import("./audit.js")).runAuditCommand,
};
