import { stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { InputError, UsageError } from "../errors.js";
import { auditLogIn, verifyAuditLog } from "../ingest/ledger.js";
import type { AuditVerifyCommandOptions } from "./audit.command.js";
import type { CommandContext, CommandOutput } from "./types.js";

/** `scanbridge audit` alone: point to the sub-command. */
export async function runAuditCommand(_ctx: CommandContext<unknown>): Promise<CommandOutput> {
  throw new UsageError("MISSING_SUBCOMMAND", "Say what to do with the audit log", { hint: "Run: scanbridge audit verify <file>" });
}

/** Run `scanbridge audit verify [file]`: exit 0 when the chain holds, 3 listing every broken line otherwise. */
export async function runAuditVerifyCommand(ctx: CommandContext<AuditVerifyCommandOptions>): Promise<CommandOutput> {
  const file = resolve(ctx.cwd, ctx.args[0] ?? "audit.jsonl");
  try {
    await stat(file);
  } catch {
    throw new InputError("AUDIT_NOT_FOUND", `No audit log at ${file}`, { hint: "Give the path of the watch audit log (default <state>/audit.jsonl)." });
  }
  // The key and the head checkpoint live in the state folder (the log's own folder unless --state says otherwise).
  const state = ctx.options.state ? resolve(ctx.cwd, ctx.options.state) : dirname(file);
  const r = await verifyAuditLog(auditLogIn(state, file));
  if (!r.ok) {
    throw new InputError("AUDIT_CHAIN_BROKEN", `Audit log chain broken at ${r.broken.length} line(s):\n${r.broken.map((b) => `  - line ${b.line}: ${b.reason}`).join("\n")}`, {
      hint: "The log was edited after it was written. Keep the original and investigate.",
      details: { file, records: r.records, broken: r.broken },
    });
  }
  return {
    data: { file, records: r.records, head: r.head, keyed: r.keyed, checkpoint: r.checkpoint },
    human: [
      r.keyed ? `Audit log OK: ${r.records} records, every line's HMAC valid, head checkpoint ${r.checkpoint === "match" ? "matches" : "absent"}` : `Audit log chain intact (${r.records} records) but NOT keyed: no audit.key in the state folder, so a rewritten log cannot be told apart`,
      `Head hash: ${r.head}`,
    ],
  };
}
