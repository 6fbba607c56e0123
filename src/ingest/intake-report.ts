/**
 * What the audit log, the --json events and staff notifications say about a package's intake, without patient
 * names: sealed or not, how its names were decoded, what was left out, whether it needs review, and (only where
 * names are allowed) the ready folder relative to --ready.
 */
import { relative } from "node:path";
import type { IntakeResult, LeftOutReason, ReviewReason } from "./intake.js";
import type { NameEncoding } from "./names.js";
import type { VerifyResult } from "./verify.js";

/** Intake facts for records and events (no PHI, except `readyRel` which is only set where names are allowed). */
export interface IntakeFields {
  unsealed: boolean;
  nameEncoding: Pick<NameEncoding, "encoding" | "evidence" | "legacyNames">;
  leftOut: Partial<Record<LeftOutReason, number>>;
  expandedArchives: number;
  needsReview: ReviewReason[];
  patients: number;
  studies: number;
  nameSource: IntakeResult["nameSource"];
  readyRel: string;
}

/** The ready folder relative to --ready; undefined unless names may be shown. */
export function relativeReady(readyRoot: string, readyPath: string, namesAllowed: boolean): string | undefined {
  return namesAllowed ? relative(readyRoot, readyPath).split("\\").join("/") : undefined;
}

/** Fields for an audit record or event about this package. */
export function intakeRecord(r: Pick<VerifyResult, "sealed" | "nameEncoding">, intake: IntakeResult | undefined, readyRel: string | undefined): Partial<IntakeFields> {
  const out: Partial<IntakeFields> = {};
  if (!r.sealed) out.unsealed = true;
  const ne = r.nameEncoding;
  if (ne && ne.legacyNames > 0) out.nameEncoding = { encoding: ne.encoding, evidence: ne.evidence, legacyNames: ne.legacyNames };
  if (intake) {
    const left: Partial<Record<LeftOutReason, number>> = {};
    for (const l of intake.leftOut) left[l.reason] = (left[l.reason] ?? 0) + 1;
    out.leftOut = left;
    out.expandedArchives = intake.expanded;
    out.needsReview = intake.review;
    out.patients = intake.dicom?.patients.length ?? 0;
    out.studies = intake.dicom?.studies.length ?? 0;
    out.nameSource = intake.nameSource;
  }
  if (readyRel !== undefined) out.readyRel = readyRel;
  return out;
}
