/**
 * End to end: `scanbridge route test` and `watch` with routing rules, on packages made by the built CLI's `pack`.
 * Build first (`npx tsc -p tsconfig.json`).
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDicom } from "../../fixtures/dicom-builder.js";
import { cleanEnv, removeDir, runCli, testdir } from "../helpers/cli.js";
import { ls } from "./helpers.js";

const ROUTES = {
  routes: [
    { name: "neuro", folder: "neuro", match: { modality: ["MR", "CT"], bodyPart: ["HEAD", "BRAIN"] } },
    { name: "cardio", folder: "cardiology", match: { studyDescription: "card|coronar" } },
  ],
  defaultRoute: "general",
};

/** A CD-like input folder of one series. */
function inputFiles(modality: string, bodyPart: string, description: string, uid: string): Record<string, Buffer> {
  const files: Record<string, Buffer> = {};
  for (let i = 1; i <= 3; i++) {
    files[`DICOM/ST1/SE1/IM${i}`] = buildDicom({
      patientName: "Route^Test",
      patientId: "RT1",
      studyInstanceUid: uid,
      seriesInstanceUid: `${uid}.1`,
      sopInstanceUid: `${uid}.1.${i}`,
      modality,
      studyDescription: description,
      extraElements: [{ tag: 0x00180015, vr: "CS", value: bodyPart }],
      pixelDataBytes: 128,
    });
  }
  return files;
}

describe("route test (e2e)", () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  let config: string;
  let brainZip: string;
  let kneeZip: string;

  beforeAll(async () => {
    home = testdir({
      ...Object.fromEntries(Object.entries(inputFiles("MR", "HEAD", "MRI brain", "1.2.826.0.1.3680043.9.7433.88.1")).map(([k, v]) => [`brain/${k}`, v])),
      ...Object.fromEntries(Object.entries(inputFiles("MR", "KNEE", "MR knee", "1.2.826.0.1.3680043.9.7433.88.2")).map(([k, v]) => [`knee/${k}`, v])),
    }, "sb-route-e2e-");
    env = cleanEnv(home);
    config = join(home, "config.json");
    writeFileSync(config, JSON.stringify(ROUTES));
    const out = join(home, "out");
    for (const [input, patient] of [["brain", "Route Brain"], ["knee", "Route Knee"]] as const) {
      const r = await runCli(["pack", join(home, input), "--patient", patient, "--out", out, "--allow-patient-mismatch"], { env });
      expect(r.code, r.stderr).toBe(0);
    }
    brainZip = join(out, "Route Brain.zip");
    kneeZip = join(out, "Route Knee.zip");
  });
  afterAll(() => removeDir(home));

  it("shows the matching rule and why, for a person", async () => {
    const r = await runCli(["--config", config, "route", "test", brainZip], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('route: neuro → ready/neuro/ (rule "neuro": modality MR|CT matched, bodyPart HEAD|BRAIN matched)');
    expect(r.stdout).toContain("✓ bodyPart: wants HEAD | BRAIN; package has HEAD");
    expect(r.stdout).toContain("✗ studyDescription: wants /card|coronar/i; package has MRI brain");
    // No patient identity in the explanation.
    expect(r.stdout + r.stderr).not.toMatch(/Route\^Test|RT1/);
  });

  it("--json: the decision, every rule's checks and the facts read", async () => {
    const r = await runCli(["--config", config, "--json", "route", "test", kneeZip], { env });
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as Record<string, unknown> & { rules: Array<{ name: string; matched: boolean; checks: unknown[] }> };
    expect(j).toMatchObject({ ok: true, route: "default", folder: "general", default: true, reason: "no rule matched: default route" });
    expect(j.rules.map((x) => [x.name, x.matched])).toEqual([["neuro", false], ["cardio", false]]);
    expect(j.rules[0]!.checks).toEqual([
      { field: "modality", want: ["MR", "CT"], got: ["MR"], ok: true },
      { field: "bodyPart", want: ["HEAD", "BRAIN"], got: ["KNEE"], ok: false },
    ]);
    expect(j.facts).toMatchObject({ sealed: true, modalities: ["MR"], bodyParts: ["KNEE"], studyDescriptions: ["MR knee"], kinds: ["dicom"] });
  });

  it("watch files by route; route test on the ready folder agrees", async () => {
    const drop = join(home, "drop");
    const ready = join(home, "ready");
    for (const z of [brainZip, kneeZip]) {
      const r = await runCli(["upload", z, "--to", drop], { env });
      expect(r.code, r.stderr).toBe(0);
    }
    const w = await runCli(["--config", config, "--json", "watch", drop, "--ready", ready, "--once", "--settle", "0"], { env });
    expect(w.code, w.stderr).toBe(0);
    const events = w.stdout.split("\n").filter((l) => l.includes('"event":"ready"')).map((l) => JSON.parse(l) as { route?: string });
    expect(events.map((e) => e.route).sort()).toEqual(["default", "neuro"]);
    expect(ls(ready)).toEqual([".scanbridge-staging", "general", "neuro"]);
    expect(ls(join(ready, "neuro"))).toEqual(["Route Brain"]);
    expect(ls(join(ready, "general"))).toEqual(["Route Knee"]);
    expect(existsSync(join(ready, "neuro", "Route Brain", "manifest.json"))).toBe(true);
    const r = await runCli(["--config", config, "--json", "route", "test", join(ready, "neuro", "Route Brain")], { env });
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, route: "neuro", folder: "neuro" });
  });

  it("bad routing configuration fails at once with exit 2, before any package is taken", async () => {
    const bad = join(home, "bad.json");
    writeFileSync(bad, JSON.stringify({ routes: [{ name: "n", folder: "n", match: { modalty: ["MR"] } }] }));
    const drop = testdir({}, "sb-route-bad-");
    for (const args of [["route", "test", brainZip], ["watch", drop, "--ready", join(drop, "ready"), "--once"]]) {
      const r = await runCli(["--config", bad, ...args], { env });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('unknown match key "modalty"');
      expect(r.stderr).toContain("[ROUTES_INVALID]");
    }
    expect(existsSync(join(drop, "ready"))).toBe(false);
    removeDir(drop);
  });

  it("without routes, route test says so (exit 2); a missing package is exit 3", async () => {
    const none = await runCli(["route", "test", brainZip], { env });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("[NO_ROUTES]");
    const missing = await runCli(["--config", config, "route", "test", join(home, "nope.zip")], { env });
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain("[PACKAGE_NOT_FOUND]");
  });
});
