import { createWriteStream } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type yauzl from "yauzl";
import { InputError, UsageError } from "../errors.js";
import { readDicomHeader } from "../dicom/read.js";
import type { DicomHeader } from "../dicom/types.js";
import { MANIFEST_NAME, type FileKind, type Manifest } from "../pack/manifest.js";

/** What a routing rule looks at. List fields match when any value of the package is listed (case-insensitive). */
export interface RouteMatch {
  /** Modality (0008,0060), e.g. ["MR", "CT"]. */
  modality?: string[];
  /** Body Part Examined (0018,0015), e.g. ["HEAD", "BRAIN"]. */
  bodyPart?: string[];
  /** Regular expression (case-insensitive) tested against every Study Description (0008,1030). */
  studyDescription?: string;
  /** Regular expression (case-insensitive) tested against Institution Name (0008,0080) and Referring Physician's Name (0008,0090). */
  referringClinic?: string;
  /** File kinds in the manifest, e.g. ["document"]: matches when the package holds a file of any listed kind. */
  kinds?: FileKind[];
}

/** One routing rule: packages matching every field of `match` are filed under `ready/<folder>/`. */
export interface RouteRule {
  name: string;
  folder: string;
  match: RouteMatch;
}

/** The validated routing configuration: rules tried in order, first match wins, else the default folder. */
export interface RoutingConfig {
  rules: RouteRule[];
  defaultFolder: string;
}

/** What routing reads from one package: the manifest's statement and a few header fields per series. */
export interface RoutingFacts {
  sealed: boolean;
  modalities: string[];
  bodyParts: string[];
  studyDescriptions: string[];
  institutions: string[];
  referringPhysicians: string[];
  kinds: FileKind[];
  /** DICOM files whose header could not be read (their series' body part etc. is unknown). */
  unreadable: number;
}

/** One field of one rule, checked: what the rule wants, what the package has, and whether it matched. */
export interface RouteCheck {
  field: keyof RouteMatch;
  want: string | string[];
  got: string[];
  ok: boolean;
}

/** One rule evaluated against a package. */
export interface RuleEvaluation {
  name: string;
  folder: string;
  matched: boolean;
  checks: RouteCheck[];
}

/** The routing decision for one package, with the reasons. */
export interface RouteDecision {
  /** Name of the matching rule, or "default". */
  route: string;
  folder: string;
  isDefault: boolean;
  /** Why: the matching rule's checks, or why nothing matched. */
  reason: string;
  evaluations: RuleEvaluation[];
}

const MATCH_KEYS: ReadonlyArray<keyof RouteMatch> = ["modality", "bodyPart", "studyDescription", "referringClinic", "kinds"];
const KINDS: readonly FileKind[] = ["dicom", "dicomdir", "dicom-unreadable", "document", "image", "other"];
/** Route folders are one plain path segment: no separators, no leading dot (ready/.scanbridge-staging is ours). */
const FOLDER_RE = /^[A-Za-z0-9_][A-Za-z0-9 _.-]{0,63}$/;
/** The folder used when routes are configured but no `defaultRoute` is given. */
export const DEFAULT_ROUTE_FOLDER = "unrouted";

/**
 * Validate the `routes` and `defaultRoute` configuration values into a RoutingConfig; undefined when no routes
 * are configured. A typo (unknown key, bad regex, empty match, unsafe folder) fails here, before any package is taken.
 */
export function parseRouting(routes: unknown, defaultRoute: unknown): RoutingConfig | undefined {
  if (routes === undefined || routes === null) return undefined;
  const bad = (why: string) => new UsageError("ROUTES_INVALID", `Invalid routes configuration: ${why}`, { hint: "See README: routing rules (routes, defaultRoute)." });
  if (!Array.isArray(routes)) throw bad("routes must be a JSON array of rules");
  const defaultFolder = defaultRoute === undefined || defaultRoute === "" ? DEFAULT_ROUTE_FOLDER : defaultRoute;
  if (typeof defaultFolder !== "string" || !isSafeFolder(defaultFolder)) throw bad(`defaultRoute "${String(defaultRoute)}" is not a plain folder name (letters, digits, space, _ . -; no leading dot)`);
  const names = new Set<string>();
  const rules: RouteRule[] = routes.map((raw: unknown, i) => {
    const where = `rule ${i + 1}`;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw bad(`${where} is not an object`);
    const r = raw as Record<string, unknown>;
    for (const k of Object.keys(r)) if (!["name", "folder", "match"].includes(k)) throw bad(`${where} has an unknown key "${k}"`);
    if (typeof r.name !== "string" || r.name.trim() === "") throw bad(`${where} has no name`);
    const label = `rule "${r.name}"`;
    if (r.name === "default") throw bad(`${label}: "default" is reserved for the default route`);
    if (names.has(r.name)) throw bad(`${label} is defined twice`);
    names.add(r.name);
    if (typeof r.folder !== "string" || !isSafeFolder(r.folder)) throw bad(`${label}: folder "${String(r.folder)}" is not a plain folder name (letters, digits, space, _ . -; no leading dot)`);
    if (typeof r.match !== "object" || r.match === null || Array.isArray(r.match)) throw bad(`${label} has no match object`);
    const m = r.match as Record<string, unknown>;
    const match: RouteMatch = {};
    for (const [k, v] of Object.entries(m)) {
      if (!MATCH_KEYS.includes(k as keyof RouteMatch)) throw bad(`${label}: unknown match key "${k}" (known: ${MATCH_KEYS.join(", ")})`);
      if (k === "studyDescription" || k === "referringClinic") {
        if (typeof v !== "string" || v === "") throw bad(`${label}: ${k} must be a regular expression (text)`);
        try {
          new RegExp(v, "i");
        } catch (err) {
          throw bad(`${label}: ${k} is not a valid regular expression: ${(err as Error).message}`);
        }
        match[k] = v;
      } else {
        const list = typeof v === "string" ? [v] : v;
        if (!Array.isArray(list) || list.length === 0 || !list.every((x) => typeof x === "string" && x.trim() !== "")) throw bad(`${label}: ${k} must be a text or a non-empty list of texts`);
        const values = (list as string[]).map((x) => x.trim());
        if (k === "kinds") {
          const unknown = values.filter((x) => !KINDS.includes(x as FileKind));
          if (unknown.length) throw bad(`${label}: unknown file kind ${unknown.join(", ")} (known: ${KINDS.join(", ")})`);
          match.kinds = values as FileKind[];
        } else {
          match[k as "modality" | "bodyPart"] = values.map((x) => x.toUpperCase());
        }
      }
    }
    // A rule without conditions would take every package: that is the default route's job.
    if (Object.keys(match).length === 0) throw bad(`${label} has an empty match (use defaultRoute for "everything else")`);
    return { name: r.name, folder: r.folder, match };
  });
  return { rules, defaultFolder };
}

function isSafeFolder(s: string): boolean {
  return FOLDER_RE.test(s) && !s.includes("..") && !s.endsWith(".") && !s.endsWith(" ");
}

const uniq = (xs: Array<string | undefined>): string[] => [...new Set(xs.map((x) => x?.trim()).filter((x): x is string => !!x))];

/** Read the routing facts of an extracted package folder (a ready/ folder or a staging folder). */
export async function readRoutingFacts(folder: string): Promise<RoutingFacts> {
  let manifest: Manifest | undefined;
  try {
    manifest = JSON.parse(await readFile(join(folder, MANIFEST_NAME), "utf8")) as Manifest;
    if (manifest.format !== "scanbridge-package" || !Array.isArray(manifest.files)) manifest = undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT" && !(err instanceof SyntaxError)) throw err;
    manifest = undefined;
  }
  // A hand-made package has scanbridge's own intake manifest (same files list, DICOM read at intake): routed alike.
  if (!manifest) {
    try {
      const m = JSON.parse(await readFile(join(folder, "scanbridge-intake.json"), "utf8")) as { format?: string; files?: unknown };
      if (m.format === "scanbridge-intake" && Array.isArray(m.files)) manifest = m as unknown as Manifest;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT" && !(err instanceof SyntaxError)) throw err;
    }
  }
  return factsFrom(manifest, (rel) => readDicomHeader(join(folder, ...rel.split("/"))));
}

/**
 * Routing facts from a manifest and a header reader. Headers are read for the first DICOM file of each series
 * (modality, body part, institution and referring physician are series- or study-level attributes).
 */
export async function factsFrom(manifest: Manifest | undefined, readHeader: (relPath: string) => Promise<DicomHeader>): Promise<RoutingFacts> {
  if (!manifest) return { sealed: false, modalities: [], bodyParts: [], studyDescriptions: [], institutions: [], referringPhysicians: [], kinds: [], unreadable: 0 };
  const studies = manifest.dicom?.studies ?? [];
  const headers: DicomHeader[] = [];
  let unreadable = 0;
  const seen = new Set<string>();
  for (const f of manifest.files) {
    if (f.kind !== "dicom" || typeof f.path !== "string" || f.path.split("/").some((p) => p === ".." || p === "" || p.includes(sep))) continue;
    const key = f.seriesInstanceUid ?? `file:${f.path}`;
    if (seen.has(key)) continue;
    seen.add(key);
    try {
      headers.push(await readHeader(f.path));
    } catch {
      unreadable++;
      seen.delete(key); // try the next file of this series
    }
  }
  return {
    sealed: true,
    modalities: uniq([...studies.flatMap((s) => s.modalities ?? []), ...headers.map((h) => h.modality)]).map((x) => x.toUpperCase()),
    bodyParts: uniq(headers.map((h) => h.bodyPartExamined)).map((x) => x.toUpperCase()),
    studyDescriptions: uniq([...studies.map((s) => s.description), ...headers.map((h) => h.studyDescription)]),
    institutions: uniq(headers.map((h) => h.institutionName)),
    referringPhysicians: uniq(headers.map((h) => h.referringPhysicianName?.alphabetic)),
    kinds: uniq(manifest.files.map((f) => f.kind)) as FileKind[],
    unreadable,
  };
}

/** Longest value a routing regex sees (DICOM ST, the longest text VR read, is 1024 characters) and most values. */
export const MAX_ROUTING_FIELD_CHARS = 1024;
const MAX_ROUTING_VALUES = 1000;

/** Values from a package, bounded before any regular expression runs on them (their time is then bounded too). */
function boundedValues(values: string[]): string[] {
  return values.slice(0, MAX_ROUTING_VALUES).map((v) => v.slice(0, MAX_ROUTING_FIELD_CHARS));
}

/** Check one rule against a package's facts: every field must match (AND); list fields match on any value (OR). */
export function evaluateRule(rule: RouteRule, facts: RoutingFacts): RuleEvaluation {
  const checks: RouteCheck[] = [];
  const m = rule.match;
  const anyOf = (field: keyof RouteMatch, want: string[], got: string[], norm: (s: string) => string) =>
    checks.push({ field, want, got, ok: got.some((g) => want.includes(norm(g))) });
  const regex = (field: keyof RouteMatch, want: string, values: string[]) => {
    const re = new RegExp(want, "i");
    const got = boundedValues(values);
    checks.push({ field, want, got, ok: got.some((g) => re.test(g)) });
  };
  if (m.modality) anyOf("modality", m.modality, facts.modalities, (s) => s.toUpperCase());
  if (m.bodyPart) anyOf("bodyPart", m.bodyPart, facts.bodyParts, (s) => s.toUpperCase());
  if (m.studyDescription !== undefined) regex("studyDescription", m.studyDescription, facts.studyDescriptions);
  if (m.referringClinic !== undefined) regex("referringClinic", m.referringClinic, [...facts.institutions, ...facts.referringPhysicians]);
  if (m.kinds) anyOf("kinds", m.kinds, facts.kinds, (s) => s);
  return { name: rule.name, folder: rule.folder, matched: checks.length > 0 && checks.every((c) => c.ok), checks };
}

/** Decide where a package goes: the first rule whose every condition matches, else the default route. */
export function decideRoute(cfg: RoutingConfig, facts: RoutingFacts): RouteDecision {
  // An unsealed package has no manifest to route on: it goes to the default folder for a person to look at.
  const evaluations = facts.sealed ? cfg.rules.map((r) => evaluateRule(r, facts)) : [];
  const hit = evaluations.find((e) => e.matched);
  if (hit) {
    const why = hit.checks.map((c) => `${c.field} ${Array.isArray(c.want) ? c.want.join("|") : `/${c.want}/i`} matched`).join(", ");
    return { route: hit.name, folder: hit.folder, isDefault: false, reason: `rule "${hit.name}": ${why}`, evaluations };
  }
  const reason = !facts.sealed ? "no manifest (unsealed package): default route" : cfg.rules.length === 0 ? "no rules configured: default route" : "no rule matched: default route";
  return { route: "default", folder: cfg.defaultFolder, isDefault: true, reason, evaluations };
}

/** Read an extracted package folder and decide its route. */
export async function routePackage(folder: string, cfg: RoutingConfig): Promise<RouteDecision> {
  return decideRoute(cfg, await readRoutingFacts(folder));
}

/**
 * Read the routing facts of a package zip without extracting it: its manifest, and the header of the first
 * DICOM file of each series, copied one at a time into a private temporary folder (removed afterwards).
 */
export async function readRoutingFactsFromZip(zipPath: string): Promise<RoutingFacts> {
  const zip = await openZip(zipPath);
  const tmp = await mkdtemp(join(tmpdir(), "scanbridge-route-"));
  try {
    const entries = new Map<string, yauzl.Entry>();
    await new Promise<void>((res, rej) => {
      zip.on("entry", (e: yauzl.Entry) => {
        entries.set(e.fileName, e);
        zip.readEntry();
      });
      zip.on("end", () => res());
      zip.on("error", rej);
      zip.readEntry();
    });
    const manifestEntry = [...entries.values()].find((e) => /^[^/]+\/manifest\.json$/.test(e.fileName));
    if (!manifestEntry) return factsFrom(undefined, async () => Promise.reject(new Error("unsealed")));
    if (manifestEntry.uncompressedSize > MAX_MANIFEST_BYTES) throw new InputError("PACKAGE_UNREADABLE", "manifest.json is too large");
    const root = manifestEntry.fileName.split("/")[0]!;
    let manifest: Manifest | undefined;
    try {
      manifest = JSON.parse((await readEntry(zip, manifestEntry)).toString("utf8")) as Manifest;
      if (manifest.format !== "scanbridge-package" || !Array.isArray(manifest.files)) manifest = undefined;
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
    }
    let n = 0;
    return await factsFrom(manifest, async (rel) => {
      const e = entries.get(`${root}/${rel}`);
      if (!e) throw new Error("listed in the manifest but not in the zip");
      // validateEntrySizes holds the stream to this size: an unverified zip cannot fill the disk through us.
      if (e.uncompressedSize > MAX_HEADER_ENTRY_BYTES) throw new Error("entry too large to copy for its header");
      const p = join(tmp, `h${n++}`);
      await pipeline(await openEntryStream(zip, e), createWriteStream(p, { mode: 0o600 }));
      try {
        return await readDicomHeader(p);
      } finally {
        await rm(p, { force: true });
      }
    });
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError("PACKAGE_UNREADABLE", `The package cannot be read: ${(err as Error).message}`, { privateLines: [zipPath] });
  } finally {
    zip.close();
    await rm(tmp, { recursive: true, force: true });
  }
}

const MAX_MANIFEST_BYTES = 64 << 20;
/** Largest DICOM entry copied out of a zip to read its header (a large CT frame set is a few hundred MB). */
const MAX_HEADER_ENTRY_BYTES = 1 << 30;

async function openZip(path: string): Promise<yauzl.ZipFile> {
  // yauzl is loaded only when a route test reads a zip, not by every `watch` start.
  const { open } = (await import("yauzl")).default;
  return new Promise((res, rej) =>
    open(path, { lazyEntries: true, autoClose: false, validateEntrySizes: true }, (err, zf) =>
      err || !zf ? rej(new InputError("PACKAGE_UNREADABLE", `The package cannot be read: ${err?.message ?? "not a zip"}`, { privateLines: [path] })) : res(zf),
    ),
  );
}

function openEntryStream(zip: yauzl.ZipFile, e: yauzl.Entry): Promise<Readable> {
  return new Promise((res, rej) => zip.openReadStream(e, (err, s) => (err || !s ? rej(err ?? new Error("unreadable entry")) : res(s))));
}

async function readEntry(zip: yauzl.ZipFile, e: yauzl.Entry): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await openEntryStream(zip, e)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
