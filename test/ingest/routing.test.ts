/** Routing rules: validation, which rule matches which package (and no other), and watch filing by route. */
import { OWNER_ONLY, openStateDir } from "../../src/ingest/state.js";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildDicom, type ExtraElement } from "../../fixtures/dicom-builder.js";
import { sha256Of, writeSealedPackage, writeSmallPackage, type FixtureFile } from "../../fixtures/package-builder.js";
import { MAX_ROUTING_FIELD_CHARS, decideRoute, evaluateRule, parseRouting, readRoutingFacts, readRoutingFactsFromZip, routePackage } from "../../src/ingest/routing.js";
import { claimPackage, commitToReady, ensureDirs, ingestDirs, writeCommitState } from "../../src/ingest/store.js";
import { runWatch, type PackageOutcome } from "../../src/ingest/watcher.js";
import { ls, tmp } from "./helpers.js";

/** The routing configuration under test, as an administrator writes it in config.json. */
const ROUTES = [
  { name: "neuro", folder: "neuro", match: { modality: ["MR", "CT"], bodyPart: ["HEAD", "BRAIN"] } },
  { name: "cardio", folder: "cardiology", match: { modality: ["CT", "MR"], studyDescription: "card|coronar" } },
  { name: "partner", folder: "klinik-nord", match: { referringClinic: "klinik nord" } },
  { name: "reports", folder: "reports", match: { kinds: ["document"] } },
];

interface Pkg {
  modality: string;
  bodyPart?: string;
  description: string;
  institution?: string;
  referring?: string;
  series?: number;
  report?: boolean;
}

/** Synthetic packages, each meant for one rule (or none). */
const PACKAGES: Record<string, Pkg> = {
  mrBrain: { modality: "MR", bodyPart: "HEAD", description: "MRI brain without contrast" },
  ctCoronary: { modality: "CT", bodyPart: "CHEST", description: "CT Coronary angiography", series: 2 },
  ctHeadNord: { modality: "CT", bodyPart: "HEAD", description: "CT head", institution: "Klinik Nord Hamburg" },
  referredNord: { modality: "US", bodyPart: "ABDOMEN", description: "Abdomen US", referring: "Schmidt^Anna^^Dr. (Klinik Nord)" },
  xrWithReport: { modality: "CR", bodyPart: "CHEST", description: "Chest X-ray", institution: "St Mary", report: true },
  usAbdomen: { modality: "US", bodyPart: "ABDOMEN", description: "Abdomen ultrasound" },
  mrKnee: { modality: "MR", bodyPart: "KNEE", description: "MR knee" },
  mrCardiacLower: { modality: "mr", bodyPart: "heart", description: "cardiac MRI" },
  usCardiacEcho: { modality: "US", bodyPart: "HEART", description: "Cardiac echo" },
};

/** Each rule evaluated on its own: exactly these packages, and no other. */
const EXPECTED_MATCHES: Record<string, string[]> = {
  neuro: ["mrBrain", "ctHeadNord"],
  cardio: ["ctCoronary", "mrCardiacLower"],
  partner: ["ctHeadNord", "referredNord"],
  reports: ["xrWithReport"],
};

/** The decision (first matching rule wins; order of ROUTES). */
const EXPECTED_ROUTE: Record<string, string> = {
  mrBrain: "neuro",
  ctCoronary: "cardio",
  ctHeadNord: "neuro",
  referredNord: "partner",
  xrWithReport: "reports",
  usAbdomen: "default",
  mrKnee: "default",
  mrCardiacLower: "cardio",
  usCardiacEcho: "default",
};

const extra = (p: Pkg): ExtraElement[] => [
  ...(p.bodyPart ? [{ tag: 0x00180015, vr: "CS", value: p.bodyPart }] : []),
  ...(p.referring ? [{ tag: 0x00080090, vr: "PN", value: p.referring }] : []),
];

/** The files of a package: DICOM (two images per series) and an optional PDF report. */
function packageFiles(id: string, p: Pkg): Array<{ path: string; data: Buffer; kind: FixtureFile["kind"]; studyInstanceUid?: string; seriesInstanceUid?: string }> {
  const study = `1.2.826.0.1.3680043.9.7433.77.${Object.keys(PACKAGES).indexOf(id) + 1}`;
  const files: ReturnType<typeof packageFiles> = [];
  for (let s = 1; s <= (p.series ?? 1); s++) {
    const series = `${study}.${s}`;
    for (let i = 1; i <= 2; i++) {
      const data = buildDicom({
        patientName: "Test^Routing",
        patientId: "R1",
        studyInstanceUid: study,
        seriesInstanceUid: series,
        sopInstanceUid: `${series}.${i}`,
        modality: p.modality,
        studyDescription: p.description,
        institutionName: p.institution,
        extraElements: extra(p),
        pixelDataBytes: 64,
      });
      files.push({ path: `DICOM/S${s}/IM${i}`, data, kind: "dicom", studyInstanceUid: study, seriesInstanceUid: series });
    }
  }
  if (p.report) files.push({ path: "REPORT/report.pdf", data: Buffer.from("%PDF-1.4\n% synthetic\n"), kind: "document" });
  return files;
}

function dicomSummary(id: string, p: Pkg) {
  const files = packageFiles(id, p).filter((f) => f.kind === "dicom");
  return { patients: [{ id: "R1", files: files.length }], studies: [{ studyInstanceUid: files[0]!.studyInstanceUid!, description: p.description, modalities: [p.modality], series: p.series ?? 1, images: files.length }] };
}

/** An extracted package folder, as watch files it in ready/. */
function writePackageFolder(parent: string, id: string, p: Pkg): string {
  const root = join(parent, id);
  const files = packageFiles(id, p);
  for (const f of files) {
    mkdirSync(dirname(join(root, f.path)), { recursive: true });
    writeFileSync(join(root, f.path), f.data);
  }
  const manifest = {
    format: "scanbridge-package",
    formatVersion: 1,
    tool: { name: "scanbridge", version: "0.0.0-fixture" },
    createdAt: "2026-01-02T03:04:05.000Z",
    root: id,
    patient: { name: id },
    files: files.map((f) => ({ path: f.path, size: f.data.length, sha256: sha256Of(f.data), kind: f.kind, ...(f.seriesInstanceUid ? { studyInstanceUid: f.studyInstanceUid, seriesInstanceUid: f.seriesInstanceUid } : {}) })),
    totals: { files: files.length, bytes: files.reduce((s, f) => s + f.data.length, 0), byKind: {} },
    excluded: [],
    dicom: dicomSummary(id, p),
  };
  writeFileSync(join(root, "manifest.json"), JSON.stringify(manifest, null, 2));
  return root;
}

describe("parseRouting", () => {
  it("accepts the documented shape; no routes means no routing", () => {
    expect(parseRouting(undefined, undefined)).toBeUndefined();
    const cfg = parseRouting(ROUTES, "general")!;
    expect(cfg.defaultFolder).toBe("general");
    expect(cfg.rules.map((r) => r.name)).toEqual(["neuro", "cardio", "partner", "reports"]);
    expect(parseRouting([{ name: "x", folder: "x", match: { modality: "mr" } }], undefined)).toEqual({ rules: [{ name: "x", folder: "x", match: { modality: ["MR"] } }], defaultFolder: "unrouted" });
  });

  it.each([
    ["not an array", { neuro: {} }, /JSON array/],
    ["an unknown match key (a typo must not match everything)", [{ name: "n", folder: "n", match: { modalty: ["MR"] } }], /unknown match key "modalty"/],
    ["an empty match", [{ name: "n", folder: "n", match: {} }], /empty match/],
    ["a bad regular expression", [{ name: "n", folder: "n", match: { studyDescription: "(" } }], /not a valid regular expression/],
    ["an unknown file kind", [{ name: "n", folder: "n", match: { kinds: ["pdf"] } }], /unknown file kind pdf/],
    ["a folder with a separator", [{ name: "n", folder: "a/b", match: { modality: ["MR"] } }], /not a plain folder name/],
    ["a parent folder", [{ name: "n", folder: "..", match: { modality: ["MR"] } }], /not a plain folder name/],
    ["a hidden folder (ready/.scanbridge-staging is ours)", [{ name: "n", folder: ".scanbridge-staging", match: { modality: ["MR"] } }], /not a plain folder name/],
    ["a duplicate name", [ROUTES[0], ROUTES[0]], /defined twice/],
    ["the reserved name default", [{ name: "default", folder: "d", match: { modality: ["MR"] } }], /reserved/],
    ["an empty list", [{ name: "n", folder: "n", match: { modality: [] } }], /non-empty list/],
    ["an unknown rule key", [{ name: "n", folder: "n", match: { modality: ["MR"] }, priority: 1 }], /unknown key "priority"/],
  ])("rejects %s", (_what, routes, message) => {
    expect(() => parseRouting(routes, undefined)).toThrow(message);
    try {
      parseRouting(routes, undefined);
    } catch (err) {
      expect((err as { code: string; exitCode: number }).code).toBe("ROUTES_INVALID");
      expect((err as { exitCode: number }).exitCode).toBe(2);
    }
  });

  it("rejects an unsafe default route folder", () => {
    expect(() => parseRouting(ROUTES, "../outside")).toThrow(/defaultRoute/);
  });
});

describe("routing decisions on real DICOM headers", () => {
  const base = tmp("sb-routing-");
  const folders = Object.fromEntries(Object.entries(PACKAGES).map(([id, p]) => [id, writePackageFolder(base, id, p)]));
  const cfg = parseRouting(ROUTES, undefined)!;

  for (const rule of cfg.rules) {
    it(`rule "${rule.name}" matches exactly its packages`, async () => {
      const matched: string[] = [];
      for (const [id, folder] of Object.entries(folders)) {
        if (evaluateRule(rule, await readRoutingFacts(folder)).matched) matched.push(id);
      }
      expect(matched.sort()).toEqual([...EXPECTED_MATCHES[rule.name]!].sort());
    });
  }

  it("first matching rule wins, the rest go to the default route, with reasons", async () => {
    for (const [id, folder] of Object.entries(folders)) {
      const d = await routePackage(folder, cfg);
      expect([id, d.route]).toEqual([id, EXPECTED_ROUTE[id]]);
      if (d.isDefault) {
        expect(d.folder).toBe("unrouted");
        expect(d.reason).toBe("no rule matched: default route");
      } else {
        expect(d.folder).toBe(ROUTES.find((r) => r.name === d.route)!.folder);
      }
    }
    const neuro = await routePackage(folders.mrBrain!, cfg);
    expect(neuro.reason).toBe('rule "neuro": modality MR|CT matched, bodyPart HEAD|BRAIN matched');
    const knee = (await routePackage(folders.mrKnee!, cfg)).evaluations.find((e) => e.name === "neuro")!;
    expect(knee.checks).toEqual([
      { field: "modality", want: ["MR", "CT"], got: ["MR"], ok: true },
      { field: "bodyPart", want: ["HEAD", "BRAIN"], got: ["KNEE"], ok: false },
    ]);
  });

  it("reads body part and referring physician from the headers, study descriptions from manifest and headers", async () => {
    const f = await readRoutingFacts(folders.referredNord!);
    expect(f).toMatchObject({ sealed: true, modalities: ["US"], bodyParts: ["ABDOMEN"], studyDescriptions: ["Abdomen US"], referringPhysicians: ["Schmidt^Anna^^Dr. (Klinik Nord)"], kinds: ["dicom"], unreadable: 0 });
  });

  it("reads one header per series, and the next file when one is unreadable", async () => {
    const folder = writePackageFolder(tmp("sb-routing-broken-"), "ctCoronary", PACKAGES.ctCoronary!);
    writeFileSync(join(folder, "DICOM/S1/IM1"), Buffer.from("DICM but not really"));
    const f = await readRoutingFacts(folder);
    expect(f.unreadable).toBe(1);
    expect(f.bodyParts).toEqual(["CHEST"]);
  });

  it("an unsealed folder (no manifest) goes to the default route", async () => {
    const d = await routePackage(tmp("sb-routing-empty-"), cfg);
    expect(d).toMatchObject({ route: "default", folder: "unrouted", isDefault: true, reason: "no manifest (unsealed package): default route", evaluations: [] });
  });

  it("reads the same facts from the zip as from the extracted folder", async () => {
    const dir = tmp("sb-routing-zip-");
    const files = packageFiles("referredNord", PACKAGES.referredNord!).map((f) => ({ path: f.path, data: f.data, kind: f.kind }));
    const pkg = await writeSealedPackage(dir, "Zip Patient", files);
    const fromZip = await readRoutingFactsFromZip(pkg.zipPath);
    expect(fromZip).toMatchObject({ sealed: true, modalities: ["US"], bodyParts: ["ABDOMEN"], referringPhysicians: ["Schmidt^Anna^^Dr. (Klinik Nord)"], unreadable: 0 });
    expect(decideRoute(cfg, fromZip).route).toBe("partner");
    // The temporary header copies are gone.
    expect(ls(dir)).toEqual(["Zip Patient.zip", "Zip Patient.zip.sha256"]);
  });
});

describe("watch with routing rules", () => {
  const opts = (drop: string, ready: string) => ({ drop, ready, settleSeconds: 0, concurrency: 2, once: true, allowUnsealed: false, limits: {}, auditNames: false, rescanSeconds: 30, giveUpSeconds: 3600, staleClaimSeconds: 120 });

  it("files packages under ready/<route folder>/<Name>/, records the route, never overwrites an earlier delivery", async () => {
    const home = tmp();
    const drop = join(home, "drop");
    const ready = join(home, "ready");
    const brain = packageFiles("mrBrain", PACKAGES.mrBrain!).map((f) => ({ path: f.path, data: f.data, kind: f.kind }));
    await writeSealedPackage(drop, "Brain Patient", brain);
    await writeSealedPackage(drop, "Other Patient", packageFiles("usAbdomen", PACKAGES.usAbdomen!).map((f) => ({ path: f.path, data: f.data, kind: f.kind })));
    // An earlier delivery with the same name in the route folder stays as it is.
    mkdirSync(join(ready, "neuro", "Brain Patient"), { recursive: true });
    writeFileSync(join(ready, "neuro", "Brain Patient", "earlier.txt"), "earlier");
    const outcomes: PackageOutcome[] = [];
    const s = await runWatch({ ...opts(drop, ready), routing: parseRouting(ROUTES, "general") }, { signal: new AbortController().signal, onPackage: (o) => void outcomes.push(o) });
    expect(s).toMatchObject({ ready: 2, quarantined: 0, errors: 0 });
    expect(ls(ready)).toEqual([".scanbridge-staging", "general", "neuro"]);
    expect(ls(join(ready, "general"))).toEqual(["Other Patient"]);
    const neuro = ls(join(ready, "neuro"));
    expect(neuro).toHaveLength(2);
    expect(readFileSync(join(ready, "neuro", "Brain Patient", "earlier.txt"), "utf8")).toBe("earlier");
    const brainOutcome = outcomes.find((o) => o.file === "Brain Patient.zip")!;
    expect(brainOutcome.route).toMatchObject({ name: "neuro", folder: "neuro" });
    expect(brainOutcome.readyPath!.startsWith(join(ready, "neuro", "Brain Patient ("))).toBe(true);
    expect(existsSync(join(brainOutcome.readyPath!, "DICOM/S1/IM1"))).toBe(true);
    expect(outcomes.find((o) => o.file === "Other Patient.zip")!.route).toMatchObject({ name: "default", folder: "general" });
    const audit = readFileSync(join(home, "scanbridge-state", "audit.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    const readyRecords = audit.filter((r) => r.event === "ready");
    expect(readyRecords.map((r) => [r.route, r.routeFolder]).sort()).toEqual([["default", "general"], ["neuro", "neuro"]]);
  });

  it("without routes, the ready folder layout is unchanged", async () => {
    const home = tmp();
    const drop = join(home, "drop");
    const ready = join(home, "ready");
    await writeSmallPackage(drop, "Plain Patient");
    const outcomes: PackageOutcome[] = [];
    await runWatch(opts(drop, ready), { signal: new AbortController().signal, onPackage: (o) => void outcomes.push(o) });
    expect(ls(ready)).toEqual([".scanbridge-staging", "Plain Patient"]);
    expect(outcomes[0]!.route).toBeUndefined();
  });
});

describe("commitToReady in a route folder", () => {
  it("a name taken meanwhile picks the next free name in the same route folder (and records it for recovery)", async () => {
    const home = tmp();
    const drop = join(home, "drop");
    const ready = join(home, "ready");
    await writeSmallPackage(drop, "Race Patient");
    const dirs = ingestDirs(drop, ready, await openStateDir(join(home, "scanbridge-state"), OWNER_ONLY), OWNER_ONLY);
    await ensureDirs(dirs);
    const taken = await claimPackage(dirs, "Race Patient.zip", "test-instance");
    if (taken.kind !== "claimed") throw new Error(taken.kind);
    const claim = taken.claim;
    const from = join(claim.staging, "Race Patient");
    mkdirSync(from, { recursive: true });
    writeFileSync(join(from, "a.txt"), "new");
    const target = join(ready, "neuro", "Race Patient");
    mkdirSync(target, { recursive: true });
    writeFileSync(join(target, "a.txt"), "earlier");
    await writeCommitState(claim, { phase: "committing", from, target });
    const got = await commitToReady(dirs, claim, { phase: "committing", from, target });
    expect(dirname(got)).toBe(join(ready, "neuro"));
    expect(got).not.toBe(target);
    expect(readFileSync(join(got, "a.txt"), "utf8")).toBe("new");
    expect(readFileSync(join(target, "a.txt"), "utf8")).toBe("earlier");
    expect(JSON.parse(readFileSync(join(claim.dir, "state.json"), "utf8")).target).toBe(got);
  });
});

describe("routing regexes run on bounded fields (issue 10)", () => {
  it("a 1,000,000-character Study Description is cut to MAX_ROUTING_FIELD_CHARS before the rule's regex sees it", () => {
    const rule = parseRouting([{ name: "cardio", folder: "cardiology", match: { studyDescription: "coronar" } }], "general")!.rules[0]!;
    const facts = { sealed: true, modalities: [], bodyParts: [], studyDescriptions: ["A" + " ".repeat(1_000_000) + "coronary"], institutions: [], referringPhysicians: [], kinds: [], unreadable: 0 };
    const e = evaluateRule(rule, facts);
    expect(e.checks[0]!.got[0]!.length).toBe(MAX_ROUTING_FIELD_CHARS);
    // What lies beyond the bound is not matched: the decision depends only on the bounded field.
    expect(e.matched).toBe(false);
    expect(evaluateRule(rule, { ...facts, studyDescriptions: ["CT coronary angiography"] }).matched).toBe(true);
  });
});
