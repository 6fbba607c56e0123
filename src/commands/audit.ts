import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { InputError, UsageError } from "../errors.js";
import { verifyAuditLog } from "../ingest/ledger.js";
import type { CommandContext, CommandOutput } from "./types.js";

/** `scanbridge audit` alone: point to the sub-command. */
export async function runAuditCommand(_ctx: CommandContext): Promise<CommandOutput> {
  throw new UsageError("MISSING_SUBCOMMAND", "Say what to do with the audit log", { hint: "Run: scanbridge audit verify <file>" });
}

/** Run `scanbridge audit verify [file]`: exit 0 when the chain holds, 3 listing every broken line otherwise. */
export async function runAuditVerifyCommand(ctx: CommandContext): Promise<CommandOutput> {
  const file = resolve(ctx.cwd, ctx.args[0] ?? "audit.jsonl");
  try {
    await stat(file);
  } catch {
    throw new InputError("AUDIT_NOT_FOUND", `No audit log at ${file}`, { hint: "Give the path of the watch audit log (default <dropdir>/audit.jsonl)." });
  }
  const r = await verifyAuditLog(file);
  if (!r.ok) {
    throw new InputError("AUDIT_CHAIN_BROKEN", `Audit log chain broken at ${r.broken.length} line(s):\n${r.broken.map((b) => `  - line ${b.line}: ${b.reason}`).join("\n")}`, {
      hint: "The log was edited after it was written. Keep the original and investigate.",
      details: { file, records: r.records, broken: r.broken },
    });
  }
  return {
    data: { file, records: r.records, head: r.head },
    human: [`Audit log OK: ${r.records} records, chain intact`, `Head hash: ${r.head} (note it elsewhere to detect a later rewrite of the tail)`],
  };
}
