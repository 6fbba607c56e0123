import { readFile, readdir, rm, stat } from "node:fs/promises";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { InputError, UsageError } from "../errors.js";
import { appendAudit, auditLogIn } from "../ingest/ledger.js";
import { stateDirs } from "../ingest/state.js";
import { stateFolderFor } from "./watch.js";
import { moveNoClobber, syncPath } from "../ingest/store.js";
import type { ReleaseCommandOptions } from "./release.command.js";
import type { CommandContext, CommandOutput } from "./types.js";

/** A quarantined package: its reason file, the package beside it, and why it was refused. */
interface Quarantined {
  reasonPath: string;
  file: string;
  id: string;
  problems: string[];
}

/** Every quarantined package in a folder (reason files that parse), newest name order. */
export async function listQuarantine(dir: string): Promise<Quarantined[]> {
  const out: Quarantined[] = [];
  for (const n of await readdir(dir).catch(() => [] as string[])) {
    if (!n.endsWith(".reason.json")) continue;
    try {
      const r = JSON.parse(await readFile(join(dir, n), "utf8")) as { id?: string; quarantinedFile?: string; problems?: Array<{ code?: string }> };
      if (typeof r.id !== "string" || typeof r.quarantinedFile !== "string" || r.quarantinedFile.includes("/")) continue;
      out.push({ reasonPath: join(dir, n), file: r.quarantinedFile, id: r.id, problems: (r.problems ?? []).map((p) => String(p.code)) });
    } catch {
      continue; // a torn or foreign file: not ours to release
    }
  }
  return out;
}

/**
 * `scanbridge release <id> <dropdir>`: move the quarantined package (and its .sha256 marker) back into the drop
 * folder under its own name (never overwriting), remove its reason file, and record it in the audit log. The
 * watcher then takes it again: for a package refused for a fixable reason (--sealed-only lifted, limits raised,
 * the code page given with --zip-encodings) or to retry after a fix in scanbridge.
 */
export async function runReleaseCommand(ctx: CommandContext<ReleaseCommandOptions>): Promise<CommandOutput> {
  const [idArg, dropArg] = ctx.args;
  if (!idArg || !/^[0-9a-f]{6,64}$/i.test(idArg)) throw new UsageError("BAD_ID", "Give the package id: the hex digits shown in the quarantine notification or event (at least 6)", { hint: "Example: scanbridge release 3f2a9c01b7e4 /srv/drop" });
  if (!dropArg) throw new UsageError("MISSING_DROP", "Give the drop folder the package goes back to", { hint: "Example: scanbridge release 3f2a9c01b7e4 /srv/drop" });
  const drop = resolve(ctx.cwd, dropArg);
  const state = stateFolderFor(ctx);
  const quarantine = ctx.options.quarantine ? resolve(ctx.cwd, ctx.options.quarantine) : stateDirs(state).quarantine;
  const want = idArg.toLowerCase();
  const matches = (await listQuarantine(quarantine)).filter((q) => q.id.toLowerCase().startsWith(want));
  if (matches.length === 0) throw new InputError("NOT_QUARANTINED", `No quarantined package with id ${want}`, { hint: `Look in ${quarantine} for <name>.reason.json files; their "id" field is the package id.` });
  if (matches.length > 1) throw new UsageError("AMBIGUOUS_ID", `${matches.length} quarantined packages start with ${want}: give more digits`);
  const q = matches[0]!;
  const zip = join(quarantine, q.file);
  try {
    await stat(zip);
  } catch {
    throw new InputError("PACKAGE_GONE", `The quarantined package ${q.id} is no longer in the quarantine folder (its reason file is)`, { hint: "Remove the reason file by hand once you have found the package." });
  }
  const back = await moveNoClobber(zip, drop, q.file);
  await moveNoClobber(`${zip}.sha256`, drop, `${q.file}.sha256`).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== "ENOENT") throw e;
  });
  await rm(q.reasonPath, { force: true });
  await syncPath(drop);
  await syncPath(quarantine);
  const auditFile = ctx.options.audit ? resolve(ctx.cwd, ctx.options.audit) : undefined;
  await appendAudit(auditLogIn(state, auditFile), { event: "released", id: q.id, previousProblems: q.problems, host: hostname() });
  const verbose = ctx.verbose;
  return {
    data: { id: q.id, released: true, previousProblems: q.problems, ...(verbose ? { file: back } : {}) },
    human: [`released package ${q.id} back to the drop folder for another try (it was quarantined for ${q.problems.join(", ") || "no recorded reason"})`],
  };
}
