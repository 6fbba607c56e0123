import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { InputError } from "../errors.js";
import { verifyPackage, type PackageProblem, type VerifyLimits, type VerifyResult } from "../ingest/verify.js";
import { formatBytes } from "../ui/format.js";
import type { CommandContext, CommandOutput } from "./types.js";

/** Limits from the resolved options shared by verify and watch. */
export function limitsFromOptions(o: Record<string, unknown>): Partial<VerifyLimits> {
  const l: Partial<VerifyLimits> = {};
  if (typeof o.maxEntries === "number") l.maxEntries = o.maxEntries;
  if (typeof o.maxUnpacked === "number") l.maxUnpackedBytes = o.maxUnpacked;
  if (typeof o.maxRatio === "number") l.maxRatio = o.maxRatio;
  return l;
}

/** One line per problem, without patient names (the root folder is shown as <root>). */
export function formatProblem(p: PackageProblem): string {
  return `[${p.code}] ${p.entry ? `${p.entry}: ` : ""}${p.message}`;
}

/** Human summary lines of a verified package; these are the only lines that carry the patient name. */
export function summaryLines(r: VerifyResult): string[] {
  const s = r.summary;
  const lines = [`${r.sealed ? "sealed" : "unsealed"} package, ${s.files} files, ${formatBytes(s.bytes)} (id ${r.id})`];
  const patient = s.patientName ?? s.root;
  if (patient) lines.push(`Patient: ${patient}`);
  for (const p of s.dicom?.patients ?? []) {
    const n = p.name?.alphabetic;
    if (n && n !== patient) lines.push(`  DICOM patient: ${n}${p.id ? ` (ID ${p.id})` : ""}, ${p.files} files`);
  }
  for (const st of s.dicom?.studies ?? []) {
    lines.push(`Study ${st.date ?? "(no date)"} ${st.description ?? ""}`.trimEnd() + ` (${st.modalities.join("/") || "?"}, ${st.series} series, ${st.images} images)`);
  }
  lines.push(`Marker (.sha256): ${r.sidecar}`);
  return lines;
}

/** Run `scanbridge verify <package>`: exit 0 when the package is sound, 3 with every problem listed otherwise. */
export async function runVerifyCommand(ctx: CommandContext): Promise<CommandOutput> {
  const path = resolve(ctx.cwd, ctx.args[0]!);
  try {
    await stat(path);
  } catch {
    throw new InputError("PACKAGE_NOT_FOUND", `No such package: ${ctx.args[0]}`, { hint: "Give the path of a .zip package." });
  }
  const r = await verifyPackage(path, {
    allowUnsealed: ctx.options.allowUnsealed === true,
    limits: limitsFromOptions(ctx.options),
    emit: (e) => ctx.reporter.emit(e),
    signal: ctx.signal,
  });
  if (!r.ok) {
    const lines = r.problems.map(formatProblem);
    throw new InputError("PACKAGE_INVALID", `Package rejected, ${r.problems.length} problem(s):\n${lines.map((l) => `  - ${l}`).join("\n")}`, {
      hint: r.problems.some((p) => p.code === "UNSEALED") && r.problems.length === 1 ? "Packages made by other tools are accepted with --allow-unsealed." : "Ask the sender to pack and send the package again.",
      details: { id: r.id, sha256: r.sha256, sealed: r.sealed, sidecar: r.sidecar, problems: r.problems },
    });
  }
  const data: Record<string, unknown> = {
    id: r.id,
    sha256: r.sha256,
    sealed: r.sealed,
    sidecar: r.sidecar,
    files: r.summary.files,
    bytes: r.summary.bytes,
    patient: r.summary.patientName ?? r.summary.root,
    studies: r.summary.dicom?.studies ?? [],
    packageWarnings: r.warnings,
  };
  const warned = r.warnings.length > 0 ? [`WARNINGS (${r.warnings.length}) for staff to review:`, ...r.warnings.map((w) => `  - ${formatProblem(w)}`)] : [];
  return { data, human: [`Package OK${r.warnings.length ? `, with ${r.warnings.length} warning(s)` : ""}: ${summaryLines(r)[0]}`, ...summaryLines(r).slice(1), ...warned] };
}
