import { stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { InputError, UsageError } from "../errors.js";
import { MANIFEST_NAME } from "../pack/manifest.js";
import { forwardDirs, type ForwardEntry } from "../forward/queue.js";
import { readReconcileFile, reconcileFileFor, validateReconciliation, writeReconcileFile } from "../forward/reconcile.js";
import { checkPrivateDir, defaultStateDir, mkdirPrivate, OWNER_ONLY, stateDirs } from "../ingest/state.js";
import { readJsonFile } from "../util/atomic-write.js";
import { readdir } from "node:fs/promises";
import type { ReconcileCommandOptions } from "./reconcile.command.js";
import type { CommandContext, CommandOutput } from "./types.js";

/**
 * The state folder of the watch that filed `folder`: --state, else the default (`scanbridge-state` beside the
 * ready folder) of the nearest ancestor that has one.
 */
async function stateFor(ctx: CommandContext<ReconcileCommandOptions>, folder: string): Promise<string | undefined> {
  if (ctx.options.state) return resolve(ctx.cwd, ctx.options.state);
  for (let ready = dirname(folder); dirname(ready) !== ready; ready = dirname(ready)) {
    const candidate = defaultStateDir(ready);
    if (await stat(join(candidate, "forward-queue")).then((s) => s.isDirectory(), () => false)) return candidate;
  }
  return undefined;
}

/** The package id of a ready folder, from the watch's own forward queue (queued or delivered). */
async function packageIdOf(state: string, folder: string): Promise<string | undefined> {
  const d = forwardDirs(state);
  for (const dir of [d.queue, d.done]) {
    for (const n of (await readdir(dir).catch(() => [] as string[])).filter((x) => /^[0-9a-f]{12}\.json$/.test(x))) {
      const e = await readJsonFile<ForwardEntry>(join(dir, n), n).catch(() => undefined);
      if (e && resolve(e.readyPath) === folder) return e.id;
    }
  }
  return undefined;
}

/** Run `scanbridge reconcile <ready folder> --patient-id ID --issuer ISSUER [--patient-name NAME] [--accession-number NEW]`. */
export async function runReconcileCommand(ctx: CommandContext<ReconcileCommandOptions>): Promise<CommandOutput> {
  const arg = ctx.args[0];
  if (!arg) throw new UsageError("MISSING_FOLDER", "reconcile needs a package folder in ready/");
  const folder = resolve(ctx.cwd, arg);
  const st = await stat(folder).catch(() => undefined);
  if (!st?.isDirectory()) throw new InputError("PACKAGE_NOT_FOUND", "Package folder not found", { privateLines: [folder], hint: "Give the extracted package folder in ready/." });
  if (!(await stat(join(folder, MANIFEST_NAME)).then(() => true, () => false))) {
    throw new InputError("NOT_A_PACKAGE", `No ${MANIFEST_NAME} in the folder: not a package filed by watch`, { privateLines: [folder] });
  }
  const o = ctx.options;
  const r = validateReconciliation({ patientId: o.patientId, issuer: o.issuer, patientName: o.patientName, accessionNumber: o.accessionNumber }, "reconcile");
  const state = await stateFor(ctx, folder);
  if (!state) throw new UsageError("STATE_NOT_FOUND", "Cannot find the watch's state folder for this package", { hint: "Pass --state <dir> (the folder watch --state uses)." });
  await checkPrivateDir(state, "state folder");
  const id = await packageIdOf(state, folder);
  if (!id) {
    throw new InputError("NOT_QUEUED", "This folder is not a package queued for forwarding by watch --forward (no entry in the state folder's forward queue)", { privateLines: [folder] });
  }
  const file = reconcileFileFor(state, id);
  await mkdirPrivate(stateDirs(state).reconcile, OWNER_ONLY);
  const before = await readReconcileFile(file).catch(() => undefined);
  await writeReconcileFile(file, r);
  const replaced = before !== undefined;
  return {
    data: { folder, id, patientId: r.patientId, issuer: r.issuer, ...(r.patientName ? { patientName: r.patientName } : {}), ...(r.accessionNumber ? { accessionNumber: r.accessionNumber } : {}), replaced },
    human: [`${replaced ? "reconciliation replaced" : "reconciled"}: package ${id}, local Patient ID ${r.patientId} (issuer ${r.issuer})${r.patientName ? `, name ${r.patientName}` : ""}, accession number ${r.accessionNumber ?? "emptied"}; watch --forward sends the package with it`],
  };
}
