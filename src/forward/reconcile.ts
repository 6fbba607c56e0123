/**
 * Identity reconciliation before forwarding (IHE Import Reconciliation Workflow): the forwarded copies of a
 * package's instances get the local Patient ID, Issuer of Patient ID and (optionally) Patient's Name; the original
 * values are kept in Original Attributes Sequence (0400,0561). The files in ready/ are never changed: rewritten
 * copies go to a private temporary folder that is removed after the forward.
 */
import { createRequire } from "node:module";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { readJsonFile, writeJsonAtomic } from "../util/atomic-write.js";
import { InputError, UsageError } from "../errors.js";
import { readDicomHeader } from "../dicom/read.js";
import type { InstanceRef } from "./dicomweb.js";

/** The reconciliation staff gave a package: `<state>/reconcile/<package id>.json` (never a file in the package). */
export function reconcileFileFor(stateDir: string, packageId: string): string {
  return join(stateDir, "reconcile", `${packageId}.json`);
}

/** The local identity a package is filed under. */
export interface Reconciliation {
  patientId: string;
  issuer: string;
  /** DICOM PN, e.g. "FAMILY^GIVEN". */
  patientName?: string;
  /** Local Accession Number (0008,0050, SH); when absent the outside one is emptied (never forwarded as received). */
  accessionNumber?: string;
}

/** Reconciliation settings of a forwarding watch. */
export interface ReconcileOptions {
  /** Unreconciled packages are not forwarded (also implied by a map file or a reconcile file in the package). */
  required: boolean;
  /** Forward packages without a reconciliation as received (never with `required`). */
  forwardUnreconciled: boolean;
  /** JSON mapping file: keys are package ids (12 hex) or source Patient IDs; read again at every attempt. */
  mapFile?: string;
}

/** A backslash (DICOM's value separator) or a control character: never in a reconciled LO, SH or PN value. */
// eslint-disable-next-line no-control-regex
const NOT_IN_DICOM_TEXT = /[\\\x00-\x1f\x7f]/;

/** Check the local values: DICOM LO (64 chars, no backslash or control characters) and PN. */
export function validateReconciliation(r: { patientId?: unknown; issuer?: unknown; patientName?: unknown; accessionNumber?: unknown }, where = "reconciliation"): Reconciliation {
  const lo = (v: unknown, what: string): string => {
    if (typeof v !== "string" || v.trim().length === 0) throw new UsageError("RECONCILE_INVALID", `${where}: ${what} is missing`);
    const s = v.trim();
    if (s.length > 64) throw new UsageError("RECONCILE_INVALID", `${where}: ${what} is longer than 64 characters (DICOM LO)`);
    if (NOT_IN_DICOM_TEXT.test(s)) throw new UsageError("RECONCILE_INVALID", `${where}: ${what} must not contain a backslash or control characters`);
    return s;
  };
  const out: Reconciliation = { patientId: lo(r.patientId, "the Patient ID"), issuer: lo(r.issuer, "the Issuer of Patient ID") };
  if (r.patientName !== undefined && r.patientName !== null && r.patientName !== "") {
    if (typeof r.patientName !== "string") throw new UsageError("RECONCILE_INVALID", `${where}: the patient name must be text`);
    const name = r.patientName.trim();
    if (NOT_IN_DICOM_TEXT.test(name)) throw new UsageError("RECONCILE_INVALID", `${where}: the patient name must not contain a backslash or control characters`);
    if (name.split("=").some((g) => g.length > 64) || name.split("^").length > 5) throw new UsageError("RECONCILE_INVALID", `${where}: the patient name is not a DICOM PN (FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX, 64 characters per group)`);
    out.patientName = name;
  }
  if (r.accessionNumber !== undefined && r.accessionNumber !== null && r.accessionNumber !== "") {
    if (typeof r.accessionNumber !== "string") throw new UsageError("RECONCILE_INVALID", `${where}: the accession number must be text`);
    const acc = r.accessionNumber.trim();
    if (acc.length > 16) throw new UsageError("RECONCILE_INVALID", `${where}: the accession number is longer than 16 characters (DICOM SH)`);
    if (NOT_IN_DICOM_TEXT.test(acc)) throw new UsageError("RECONCILE_INVALID", `${where}: the accession number must not contain a backslash or control characters`);
    if (acc) out.accessionNumber = acc;
  }
  return out;
}

/** Write a package's reconciliation into the state folder (the one atomic write, 0600). */
export async function writeReconcileFile(path: string, r: Reconciliation, now = new Date()): Promise<string> {
  await writeJsonAtomic(path, { format: "scanbridge-reconcile", formatVersion: 1, ...r, reconciledAt: now.toISOString() });
  return path;
}

/** A package's reconciliation from the state folder; undefined when there is none. A broken one is an error (never ignored). */
export async function readReconcileFile(path: string): Promise<Reconciliation | undefined> {
  let j: Record<string, unknown> | undefined;
  try {
    j = await readJsonFile<Record<string, unknown>>(path, "the reconciliation", 64 * 1024);
  } catch (err) {
    throw new InputError("RECONCILE_FILE_INVALID", `The reconciliation ${basename(path)} does not read: ${(err as Error).message}`);
  }
  return j === undefined ? undefined : validateReconciliation(j, basename(path));
}

/**
 * Parse the text of a mapping file: `{ "<package id or source Patient ID>": { patientId, issuer, patientName? } }`.
 * `where` names it in errors (the flag at start-up, "the reconcile map" at each attempt).
 */
export function parseReconcileMap(text: string, where: string): Map<string, Reconciliation> {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (err) {
    throw new UsageError("RECONCILE_MAP_UNREADABLE", `Cannot read ${where}: ${(err as Error).message}`);
  }
  if (!j || typeof j !== "object" || Array.isArray(j)) throw new UsageError("RECONCILE_MAP_INVALID", `${where} must be a JSON object keyed by package id or source Patient ID`);
  const out = new Map<string, Reconciliation>();
  for (const [k, v] of Object.entries(j as Record<string, unknown>)) {
    out.set(k, validateReconciliation((v ?? {}) as Record<string, unknown>, `${where} entry ${JSON.stringify(k)}`));
  }
  return out;
}

/** Read and parse a mapping file (again at every attempt, so staff can add entries while watch runs). */
export async function readReconcileMap(file: string): Promise<Map<string, Reconciliation>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new UsageError("RECONCILE_MAP_UNREADABLE", `Cannot read the reconcile map: ${(err as Error).message}`);
  }
  return parseReconcileMap(text, "the reconcile map");
}

/** The outcome of looking for a package's local identity. */
export type ReconcileDecision =
  | { kind: "reconcile"; with: Reconciliation; source: "file" | "map-package" | "map-patient" }
  | { kind: "as-received" }
  | { kind: "not-reconciled"; message: string };

/**
 * Find the local identity of a package: staff's reconciliation in the state folder first, then the map by package id, then the map by the
 * source Patient ID (every instance's source Patient ID must map, to one identity). Without any: forwarded as
 * received only when nothing requires reconciliation, or when `forwardUnreconciled` says so.
 */
export async function decideReconciliation(packageId: string, reconcileFile: string, instances: readonly InstanceRef[], opts: ReconcileOptions | undefined): Promise<ReconcileDecision> {
  const fromFile = await readReconcileFile(reconcileFile);
  if (fromFile) return { kind: "reconcile", with: fromFile, source: "file" };
  const map = opts?.mapFile ? await readReconcileMap(opts.mapFile) : undefined;
  if (map) {
    const byId = map.get(packageId);
    if (byId) return { kind: "reconcile", with: byId, source: "map-package" };
    const sources = new Set<string>();
    for (const i of instances) sources.add((await readDicomHeader(i.path)).patientId ?? "");
    const found = [...sources].map((s) => map.get(s));
    if (found.length > 0 && found.every((f) => f !== undefined)) {
      const keys = new Set(found.map((f) => JSON.stringify(f)));
      if (keys.size === 1) return { kind: "reconcile", with: found[0]!, source: "map-patient" };
      return notReconciled(opts, `the package's source Patient IDs map to ${keys.size} different local identities`);
    }
  }
  const required = Boolean(opts?.required || opts?.mapFile);
  if (!required) return { kind: "as-received" };
  return notReconciled(opts, "no local Patient ID given for this package: run `scanbridge reconcile <ready folder> --patient-id ID --issuer ISSUER`, or add it to the reconcile map");
}

function notReconciled(opts: ReconcileOptions | undefined, message: string): ReconcileDecision {
  return opts?.forwardUnreconciled ? { kind: "as-received" } : { kind: "not-reconciled", message };
}

// --- rewriting with dcmjs -------------------------------------------------------------------------------------

interface DcmElement {
  vr: string;
  Value?: unknown[];
  _rawValue?: unknown;
}
type DcmDataset = Record<string, DcmElement>;
interface DcmDict {
  meta: DcmDataset;
  dict: DcmDataset;
  write(opts?: Record<string, unknown>): ArrayBuffer;
}
interface Dcmjs {
  data: { DicomMessage: { readFile(buffer: ArrayBuffer, opts?: Record<string, unknown>): DcmDict } };
}

let dcmjsCache: Dcmjs | undefined;
function dcmjs(): Dcmjs {
  // dcmjs ships no type declarations; its CommonJS build is loaded through require.
  dcmjsCache ??= createRequire(import.meta.url)("dcmjs") as Dcmjs;
  return dcmjsCache;
}

/** DICOM DT "YYYYMMDDHHMMSS.FFFFFF+ZZZZ" in UTC. */
function dicomDateTime(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}.${p(d.getUTCMilliseconds() * 1000, 6)}+0000`;
}

const TAG = { accessionNumber: "00080050", patientName: "00100010", patientId: "00100020", issuer: "00100021", originalAttributes: "04000561", modifiedAttributes: "04000550", modifiedAt: "04000562", modifyingSystem: "04000563", sourceOfPrevious: "04000564", reason: "04000565" };

/**
 * One instance with the local identity: Patient ID, Issuer of Patient ID and (if given) Patient's Name replaced;
 * Accession Number set to the local one, or emptied when none is given (outside accession numbers never go on);
 * a new item appended to Original Attributes Sequence whose Modified Attributes Sequence holds the original
 * values (empty elements for ones that were absent). Every other element, pixel data included, is kept.
 */
export function reconcileDataset(input: Buffer, r: Reconciliation, now = new Date()): Buffer {
  const ab = input.buffer.slice(input.byteOffset, input.byteOffset + input.byteLength) as ArrayBuffer;
  const d = dcmjs().data.DicomMessage.readFile(ab, { ignoreErrors: false });
  const ds = d.dict;
  const changed: Array<[string, DcmElement]> = [
    [TAG.patientId, { vr: "LO", Value: [r.patientId] }],
    [TAG.issuer, { vr: "LO", Value: [r.issuer] }],
    ...(r.patientName !== undefined ? [[TAG.patientName, { vr: "PN", Value: [{ Alphabetic: r.patientName }] }] as [string, DcmElement]] : []),
    [TAG.accessionNumber, { vr: "SH", Value: r.accessionNumber !== undefined ? [r.accessionNumber] : [] }],
  ];
  const original: DcmDataset = {};
  for (const [tag, el] of changed) {
    const before = ds[tag];
    original[tag] = before ? { vr: before.vr, Value: before.Value ?? [] } : { vr: el.vr, Value: [] };
    ds[tag] = el;
  }
  const item: DcmDataset = {
    [TAG.modifiedAttributes]: { vr: "SQ", Value: [original] },
    [TAG.modifiedAt]: { vr: "DT", Value: [dicomDateTime(now)] },
    [TAG.modifyingSystem]: { vr: "LO", Value: ["scanbridge"] },
    [TAG.reason]: { vr: "CS", Value: ["COERCE"] },
  };
  const prior = ds[TAG.originalAttributes]?.Value ?? [];
  ds[TAG.originalAttributes] = { vr: "SQ", Value: [...prior, item] };
  return Buffer.from(d.write());
}

/** Rewritten copies of a package's instances, in a private temporary folder; `dispose` removes it. */
export async function reconciledCopies(instances: readonly InstanceRef[], r: Reconciliation, now = new Date()): Promise<{ instances: InstanceRef[]; dispose: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "scanbridge-reconcile-"));
  const dispose = () => rm(dir, { recursive: true, force: true });
  try {
    const out: InstanceRef[] = [];
    let n = 0;
    for (const inst of instances) {
      let rewritten: Buffer;
      try {
        rewritten = reconcileDataset(await readFile(inst.path), r, now);
      } catch (err) {
        throw new InputError("RECONCILE_REWRITE_FAILED", `Cannot rewrite instance ${inst.sopInstanceUid} with the local identity: ${(err as Error).message}`, { cause: err, retryable: false });
      }
      const path = join(dir, `${n++}.dcm`);
      await writeFile(path, rewritten, { mode: 0o600 });
      out.push({ ...inst, path });
    }
    return { instances: out, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}
