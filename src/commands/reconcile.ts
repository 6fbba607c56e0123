import { stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { InputError, UsageError } from "../errors.js";
import { MANIFEST_NAME } from "../pack/manifest.js";
import { readReconcileFile, validateReconciliation, writeReconcileFile } from "../forward/reconcile.js";
import type { CommandContext, CommandOutput } from "./types.js";

/** Run `scanbridge reconcile <ready folder> --patient-id ID --issuer ISSUER [--patient-name NAME] [--accession-number NEW]`. */
export async function runReconcileCommand(ctx: CommandContext): Promise<CommandOutput> {
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
  const before = await readReconcileFile(folder).catch(() => undefined);
  await writeReconcileFile(folder, r);
  const replaced = before !== undefined;
  return {
    data: { folder, patientId: r.patientId, issuer: r.issuer, ...(r.patientName ? { patientName: r.patientName } : {}), ...(r.accessionNumber ? { accessionNumber: r.accessionNumber } : {}), replaced },
    human: [`${replaced ? "reconciliation replaced" : "reconciled"}: local Patient ID ${r.patientId} (issuer ${r.issuer})${r.patientName ? `, name ${r.patientName}` : ""}, accession number ${r.accessionNumber ?? "emptied"}; watch --forward sends the package with it`],
  };
}
