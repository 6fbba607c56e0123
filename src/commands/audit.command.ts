import type { CommandSpec } from "./types.js";

/** `scanbridge audit verify [file]`. */
export const auditVerifySpec: CommandSpec = {
  name: "verify",
  args: "[file]",
  summary: "check the hash chain of a watch audit log (exit 3 when a line was changed, removed or inserted)",
  options: [],
  examples: ["scanbridge audit verify /srv/drop/audit.jsonl"],
  load: async () => (await import("./audit.js")).runAuditVerifyCommand,
};

/** `scanbridge audit`: parent of `audit verify`. */
export const auditSpec: CommandSpec = {
  name: "audit",
  summary: "work with the watch audit log",
  options: [],
  examples: ["scanbridge audit verify /srv/drop/audit.jsonl"],
  subcommands: [auditVerifySpec],
  load: async () => (await import("./audit.js")).runAuditCommand,
};
