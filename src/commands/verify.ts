import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { InputError } from "../errors.js";
import { verifyPackage, type PackageProblem, type VerifyLimits, type VerifyResult } from "../ingest/verify.js";
import { formatBytes } from "../ui/format.js";
import type { CommandContext, CommandOutput } from "./types.js";
import type { VerifyCommandOptions } from "./verify.command.js";

/** Limits from the resolved options shared by verify and watch. */
export function limitsFromOptions(o: Record<string, unknown>): Partial<VerifyLimits> {
  const l: Partial<VerifyLimits> = {};
  if (typeof o.maxEntries === "number") l.maxEntries = o.maxEntries;
  if (typeof o.maxUnpacked === "number") l.maxUnpackedBytes = o.maxUnpacked;
  if (typeof o.maxRatio === "number") l.maxRatio = o.maxRatio;
  return l;
}

/** `--zip-encodings cp936,cp720`, as a list. */
export function zipEncodingsFrom(o: Record<string, unknown>): string[] | undefined {
  const v = o.zipEncodings;
  const list = Array.isArray(v) ? v.map(String) : typeof v === "string" ? v.split(",") : [];
  const out = list.map((s) => s.trim().toLowerCase()).filter(Boolean);
  return out.length > 0 ? out : undefined;
}

/** What a person can do about these problems (staff see this; senders of hand-made packages are not scanbridge users). */
export function problemHint(problems: PackageProblem[]): string {
  const codes = new Set(problems.map((p) => String(p.code)));
  if (codes.size === 1 && codes.has("UNSEALED")) return "Hand-made packages are refused only with --sealed-only; drop it to accept them (marked unsealed).";
  if (codes.has("ENCRYPTED_ENTRY")) return "The zip is password-protected: ask the sender for the password, unpack it yourself, or ask for a zip without a password.";
  if (codes.has("NOT_A_ZIP") || codes.has("UNKNOWN_ARCHIVE")) return "The upload is not a zip (or is cut short): ask the sender to zip the folder again (right-click > Send to > Compressed folder) and upload it again.";
  if (codes.has("CRC_MISMATCH") || codes.has("SIDECAR_MISMATCH") || codes.has("ENTRY_UNREADABLE")) return "The file was damaged on the way: ask the sender to upload it again.";
  if ([...codes].some((c) => c.startsWith("LOCAL_HEADER") || ["HIDDEN_ENTRY", "MULTIPLE_END_RECORDS", "OVERLAPPING_ENTRIES", "UNREFERENCED_DATA", "TRAILING_DATA"].includes(c))) {
    return "The zip's structure is inconsistent (different programs would unpack different files): do not open it; ask the sender to zip the folder again.";
  }
  if (codes.has("COMPRESSION_RATIO") || codes.has("TOO_LARGE") || codes.has("TOO_MANY_ENTRIES")) return "The package is larger than the limits allow (or is a zip bomb): check with the sender; raise --max-unpacked / --max-entries only for a known sender.";
  return "Ask the sender to zip the patient's folder again and upload it again; `scanbridge release <id>` retries a quarantined package.";
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
export async function runVerifyCommand(ctx: CommandContext<VerifyCommandOptions>): Promise<CommandOutput> {
  const path = resolve(ctx.cwd, ctx.args[0]!);
  try {
    await stat(path);
  } catch {
    throw new InputError("PACKAGE_NOT_FOUND", `No such package: ${ctx.args[0]}`, { hint: "Give the path of a .zip package." });
  }
  const r = await verifyPackage(path, {
    allowUnsealed: !ctx.options.sealedOnly,
    zipEncodings: zipEncodingsFrom(ctx.options),
    limits: limitsFromOptions(ctx.options),
    emit: (e) => ctx.reporter.emit(e),
    signal: ctx.signal,
  });
  if (!r.ok) {
    const lines = r.problems.map(formatProblem);
    throw new InputError("PACKAGE_INVALID", `Package rejected, ${r.problems.length} problem(s):\n${lines.map((l) => `  - ${l}`).join("\n")}`, {
      hint: problemHint(r.problems),
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
