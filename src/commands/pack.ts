import { studyLabel } from "../dicom/summary.js";
import type { StudySummary } from "../dicom/types.js";
import { UsageError } from "../errors.js";
import { describePatient, type PatientListing } from "../pack/inspect.js";
import { listOf, msg, t, type MessageId } from "../i18n/index.js";
import { packPackage, type PackOptions, type PackResult } from "../pack/package.js";
import { formatBytes } from "../ui/format.js";
import type { InspectCommandOptions, PackCommandOptions } from "./pack.command.js";
import type { CommandContext, CommandOutput } from "./types.js";

/** The options packOptionsFrom reads: inspect has only the read options, send has no --dry-run. */
type PackStageOptions = InspectCommandOptions & Partial<PackCommandOptions>;

const KIND_LABEL: Record<string, MessageId> = {
  dicom: "pack.kind.dicom", dicomdir: "pack.kind.dicomdir", "dicom-unreadable": "pack.kind.dicomUnreadable",
  document: "pack.kind.document", image: "pack.kind.image", other: "pack.kind.other",
};
const REASON_LABEL: Record<string, MessageId> = {
  "os-junk": "pack.reason.osJunk", executable: "pack.reason.executable", "viewer-software": "pack.reason.viewerSoftware",
  "symlink-outside-inputs": "pack.reason.symlinkOutside", "symlink-loop": "pack.reason.symlinkLoop", "broken-symlink": "pack.reason.brokenSymlink",
  "symlinked-folder": "pack.reason.symlinkedFolder", "special-file": "pack.reason.specialFile", "archive-expanded": "pack.reason.archiveExpanded",
  "other-patient": "pack.reason.otherPatient", "dicomdir-other-patients": "pack.reason.dicomdirOtherPatients",
};

/** The studies in the reader's language, e.g. "2 studies · CT CHEST 2025-03-02 (3 series, 12 images)". */
function studyLine(studies: StudySummary[]): string {
  if (studies.length === 0) return t("pack.noStudies");
  const parts = studies.map((s) => t(s.date ? "pack.study" : "pack.studyUndated", { label: studyLabel(s), date: s.date ?? "", series: s.series, images: s.images }));
  return [t("pack.studies", { n: studies.length }), ...parts].join(" · ");
}

/** Ask for the patient's name on a TTY, or fail with a usage error when nobody can answer. */
export async function resolvePatient(ctx: CommandContext<{ patient?: string }>, optional = false): Promise<string> {
  const given = ctx.options.patient;
  if (given !== undefined && given.trim() !== "") return given;
  if (optional) return "";
  if (!ctx.interactive) {
    throw new UsageError("PATIENT_REQUIRED", msg("pack.patientRequired"), { hint: msg("pack.patientRequired.hint") });
  }
  return ctx.prompter.input(t("pack.askPatient"), { validate: (v) => (v.trim() ? true : t("pack.askPatient.empty")) });
}

/** Build PackOptions from a command context (shared by pack, inspect and send). */
export async function packOptionsFrom(ctx: CommandContext<PackStageOptions>, overrides: Partial<PackOptions> = {}): Promise<PackOptions> {
  const o = ctx.options;
  return {
    inputs: ctx.args,
    patient: await resolvePatient(ctx, overrides.dryRun === true),
    outDir: o.out ?? ".",
    cwd: ctx.cwd,
    ascii: o.asciiNames,
    store: o.store ?? false,
    level: o.level ?? 6,
    emailLimit: o.emailLimit ?? 5e6, // inspect has no --email-limit: the table's default, 5MB
    maxSize: o.maxSize,
    force: o.force ?? false,
    dryRun: o.dryRun ?? false,
    strict: o.strict,
    allowPatientMismatch: o.allowPatientMismatch ?? false,
    allowUnchecked: o.allowUnchecked ?? false,
    onlyPatient: o.onlyPatient?.trim() ? o.onlyPatient : undefined,
    expandArchives: o.expandArchives,
    skipInspect: ctx.env.SCANBRIDGE_BENCH_SKIP_INSPECT === "1",
    confirmMismatch: ctx.interactive
      ? async (lines) => {
          for (const l of lines) ctx.reporter.emit({ type: "info", message: l });
          return ctx.prompter.confirm(t("pack.confirmMismatch"), false);
        }
      : undefined,
    choosePatient: ctx.interactive ? async (patients) => choosePatientAtTerminal(ctx, patients) : undefined,
    signal: ctx.signal,
    emit: ctx.reporter.emit.bind(ctx.reporter),
    ...overrides,
  };
}

/** A disc with several patients, at a terminal: ask whose scans to pack (names are the sender's own to see). */
async function choosePatientAtTerminal(ctx: CommandContext, patients: PatientListing[]): Promise<number | "all" | "cancel"> {
  ctx.reporter.emit({ type: "info", message: t("pack.choose.intro", { n: patients.length }) });
  for (const p of patients) ctx.reporter.emit({ type: "info", message: `  ${describePatient(p.patient)}: ${p.studyLine}` });
  const choices: Array<{ name: string; value: string }> = patients.map((p, i) => ({ name: t("pack.choose.only", { patient: describePatient(p.patient), n: p.patient.files }), value: String(i) }));
  choices.push({ name: t("pack.choose.all"), value: "all" }, { name: t("pack.choose.cancel"), value: "cancel" });
  const answer = await ctx.prompter.select(t("pack.choose.question"), choices, "0");
  return answer === "all" || answer === "cancel" ? answer : Number(answer);
}

/** The JSON shape of a pack result (--json). */
export function packResultData(r: PackResult): Record<string, unknown> {
  return {
    package: r.dryRun ? null : r.package,
    sidecar: r.dryRun ? null : r.sidecar,
    sha256: r.sha256 ?? null,
    size: r.size ?? null,
    inputBytes: r.inputBytes,
    patient: r.patient,
    root: r.root,
    emailable: r.emailable ?? null,
    emailLimit: r.emailLimit,
    files: r.files,
    excluded: r.excludedSummary,
    dicom: r.dicom
      ? {
          ...r.dicom.summary, studyLine: r.dicom.studyLine, unreadable: r.dicom.unreadable, unchecked: r.dicom.unchecked.length, truncated: r.dicom.truncated.length,
          patientMismatchAllowed: r.dicom.mismatch, uncheckedAllowed: r.dicom.allowedUnchecked, onlyPatient: r.dicom.onlyPatient ?? null,
          patientsFound: r.dicom.patients.map((p) => ({ ...p.patient, studies: p.studies })), bytesRead: r.dicom.bytesRead,
        }
      : null,
    dryRun: r.dryRun,
    ...(r.timings ? { timings: r.timings } : {}),
  };
}

/** Lines a person reads after pack (their own patient's name and path are fine to show them). */
export function packHumanLines(r: PackResult): string[] {
  const kinds = Object.entries(r.files.byKind).map(([k, n]) => (KIND_LABEL[k] ? t(KIND_LABEL[k], { n }) : `${n} ${k}`));
  const n = r.files.total;
  const lines = [r.dryRun ? t("pack.wouldPackage", { n, kinds: listOf(kinds), size: formatBytes(r.inputBytes) }) : t("pack.packaged", { n, kinds: listOf(kinds) })];
  if (r.dicom) lines.push(t("pack.scans", { studies: studyLine(r.dicom.summary.studies) }));
  const left = r.excludedSummary.filter((e) => e.reason !== "symlinked-folder");
  const leftOut = (e: (typeof left)[number]) => t(REASON_LABEL[e.reason] ?? "pack.reason.other", { n: e.count, reason: e.reason }) + (e.viewer ? ` (${e.viewer})` : "");
  if (left.length) lines.push(t("pack.leftOut", { list: listOf(left.map(leftOut)) }));
  if (!r.dryRun && r.size !== undefined) {
    lines.push(t("pack.package", { path: r.package }));
    lines.push(r.emailable ? t("pack.sizeEmailable", { size: formatBytes(r.size) }) : t("pack.sizeTooLarge", { size: formatBytes(r.size), limit: formatBytes(r.emailLimit) }));
    lines.push(t("pack.sha256", { sha256: r.sha256 ?? "" }));
  }
  return lines;
}

/** Run `scanbridge pack`. */
export async function runPackCommand(ctx: CommandContext<PackCommandOptions>): Promise<CommandOutput> {
  const result = await packPackage(await packOptionsFrom(ctx));
  return { data: packResultData(result), human: () => packHumanLines(result) };
}

/**
 * Run `scanbridge inspect`: the pack report without writing anything (--patient optional). Lists the patients with
 * their studies so the sender can choose; names are shown at a terminal or with --verbose (their own screen), not
 * in redirected output.
 */
export async function runInspectCommand(ctx: CommandContext<InspectCommandOptions>): Promise<CommandOutput> {
  const result = await packPackage(await packOptionsFrom(ctx, { dryRun: true, reportOnly: true, choosePatient: undefined }));
  return { data: packResultData(result), human: () => [...patientLines(result, ctx.interactive || ctx.verbose), ...packHumanLines(result)] };
}

function patientLines(r: PackResult, showNames: boolean): string[] {
  const patients = r.dicom?.patients ?? [];
  if (patients.length === 0) return [];
  const label = (p: PatientListing): string => (showNames ? describePatient(p.patient) : t("inspect.patientNumber", { n: patients.indexOf(p) + 1 }));
  const lines = [patients.length === 1 ? t("inspect.scansOf", { patient: label(patients[0]!) }) : t("inspect.patients", { n: patients.length })];
  if (patients.length > 1) for (const p of patients) lines.push(`  ${label(p)}: ${p.studyLine}`);
  if (!showNames) lines.push(t("inspect.namesHidden"));
  return lines;
}
