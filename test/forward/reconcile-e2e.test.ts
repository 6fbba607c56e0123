/**
 * Identity reconciliation (IHE Import Reconciliation Workflow) before forwarding, against a real Orthanc: the
 * instances arrive with the local Patient ID, Issuer and name, the originals in Original Attributes Sequence,
 * pixel data byte-identical; unreconciled packages stay queued under --require-reconcile; ready/ is unchanged.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import dicomParser from "dicom-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDicom } from "../../fixtures/dicom-builder.js";
import { decideReconciliation, reconcileDataset, validateReconciliation } from "../../src/forward/reconcile.js";
import type { InstanceRef } from "../../src/forward/dicomweb.js";
import { cleanEnv, removeDir, runCli, testdir } from "../helpers/cli.js";
import { startOrthanc, type OrthancServer } from "../helpers/orthanc.js";
import { untilForwardDue } from "../helpers/forward.js";

const events = (out: string) => out.split("\n").filter((l) => l.startsWith("{") && l.includes('"event"')).map((l) => JSON.parse(l) as Record<string, unknown>);

/** SHA-256 of the Pixel Data (7FE0,0010) element value. */
function pixelHash(buf: Buffer): string {
  const ds = dicomParser.parseDicom(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
  const el = ds.elements.x7fe00010;
  if (!el) throw new Error("no pixel data");
  return createHash("sha256").update(buf.subarray(el.dataOffset, el.dataOffset + el.length)).digest("hex");
}

/** SHA-256 of every file under a folder, by relative path. */
function hashTree(dir: string, base = dir, out: Record<string, string> = {}): Record<string, string> {
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) hashTree(p, base, out);
    else out[relative(base, p)] = createHash("sha256").update(readFileSync(p)).digest("hex");
  }
  return out;
}

function cdFiles(patientId: string, uidBase: string): Record<string, Buffer> {
  const files: Record<string, Buffer> = {};
  for (const se of [1, 2]) {
    for (let i = 1; i <= 2; i++) {
      const pixels = Buffer.alloc(4096);
      for (let k = 0; k < pixels.length; k++) pixels[k] = (k * 7 + se * 13 + i) & 0xff;
      files[`DICOM/SE${se}/IM${i}`] = buildDicom({
        patientName: "Outside^Patient",
        patientId,
        accessionNumber: `ACC-${patientId}`,
        studyInstanceUid: `${uidBase}.1`,
        seriesInstanceUid: `${uidBase}.1.${se}`,
        sopInstanceUid: `${uidBase}.1.${se}.${i}`,
        modality: "MR",
        studyDate: "20260105",
        seriesNumber: se,
        instanceNumber: i,
        pixelDataBytes: 4096,
      });
    }
  }
  return files;
}

describe("reconcileDataset (dcmjs)", () => {
  it("sets the local identity, keeps the originals in Original Attributes Sequence, leaves pixel data byte-identical", () => {
    const src = buildDicom({ patientName: "Outside^Patient", patientId: "EXT-1", studyInstanceUid: "1.2.3", seriesInstanceUid: "1.2.3.4", sopInstanceUid: "1.2.3.4.5", modality: "CT", pixelDataBytes: 1000 });
    const out = reconcileDataset(src, { patientId: "LOC-1", issuer: "HOSP-A", patientName: "LOCAL^NAME" }, new Date("2026-11-23T10:00:00Z"));
    const ds = dicomParser.parseDicom(new Uint8Array(out));
    expect(ds.string("x00100020")).toBe("LOC-1");
    expect(ds.string("x00100021")).toBe("HOSP-A");
    expect(ds.string("x00100010")).toBe("LOCAL^NAME");
    expect(ds.string("x00080018")).toBe("1.2.3.4.5");
    const item = ds.elements.x04000561!.items![0]!.dataSet!;
    expect(item.string("x04000563")).toBe("scanbridge");
    expect(item.string("x04000565")).toBe("COERCE");
    expect(item.string("x04000562")).toMatch(/^20261123100000/);
    const orig = item.elements.x04000550!.items![0]!.dataSet!;
    expect(orig.string("x00100020")).toBe("EXT-1");
    expect(orig.string("x00100010")).toBe("Outside^Patient");
    expect(orig.elements.x00100021).toBeDefined(); // absent before: recorded as empty
    expect(pixelHash(out)).toBe(pixelHash(src));
  });

  it("outside accession numbers never go on: the local one when given, else emptied; the original kept in Modified Attributes Sequence", () => {
    const src = buildDicom({ patientId: "EXT-2", accessionNumber: "EXT-ACC-9", studyInstanceUid: "1.2.3", seriesInstanceUid: "1.2.3.4", sopInstanceUid: "1.2.3.4.6", modality: "CT", pixelDataBytes: 100 });
    expect(dicomParser.parseDicom(new Uint8Array(src)).string("x00080050")).toBe("EXT-ACC-9");
    const withLocal = dicomParser.parseDicom(new Uint8Array(reconcileDataset(src, { patientId: "LOC-2", issuer: "HOSP-A", accessionNumber: "LOC-ACC-1" })));
    expect(withLocal.string("x00080050")).toBe("LOC-ACC-1");
    const origA = withLocal.elements.x04000561!.items![0]!.dataSet!.elements.x04000550!.items![0]!.dataSet!;
    expect(origA.string("x00080050")).toBe("EXT-ACC-9");
    const emptied = dicomParser.parseDicom(new Uint8Array(reconcileDataset(src, { patientId: "LOC-2", issuer: "HOSP-A" })));
    expect(emptied.elements.x00080050).toBeDefined();
    expect(emptied.elements.x00080050!.length).toBe(0);
    expect(emptied.string("x00080050") ?? "").toBe("");
    const origB = emptied.elements.x04000561!.items![0]!.dataSet!.elements.x04000550!.items![0]!.dataSet!;
    expect(origB.string("x00080050")).toBe("EXT-ACC-9");
    expect(() => validateReconciliation({ patientId: "A", issuer: "B", accessionNumber: "X".repeat(17) })).toThrow(/16 characters/);
    expect(validateReconciliation({ patientId: "A", issuer: "B", accessionNumber: " N-1 " })).toEqual({ patientId: "A", issuer: "B", accessionNumber: "N-1" });
  });
});

describe("decideReconciliation", () => {
  it("reconcile file first, then the map by package id, then by source Patient ID; as received only when nothing requires it", async () => {
    const dir = testdir({}, "sb-reconcile-decide-");
    const inst = (n: number, pid: string): InstanceRef => {
      const path = join(dir, `i${n}.dcm`);
      writeFileSync(path, buildDicom({ patientId: pid, studyInstanceUid: "1.2", seriesInstanceUid: "1.2.3", sopInstanceUid: `1.2.3.${n}`, pixelDataBytes: 8 }));
      return { path, studyInstanceUid: "1.2", seriesInstanceUid: "1.2.3", sopInstanceUid: `1.2.3.${n}` };
    };
    const one = [inst(1, "EXT-A"), inst(2, "EXT-A")];
    const two = [inst(3, "EXT-A"), inst(4, "EXT-B")];
    const map = join(dir, "map.json");
    writeFileSync(map, JSON.stringify({ abcdef012345: { patientId: "BY-ID", issuer: "H" }, "EXT-A": { patientId: "BY-PID", issuer: "H" }, "EXT-B": { patientId: "OTHER", issuer: "H" } }));
    const m = { required: false, forwardUnreconciled: false, mapFile: map };
    expect(await decideReconciliation("abcdef012345", join(dir, "none.json"), one, m)).toMatchObject({ kind: "reconcile", source: "map-package", with: { patientId: "BY-ID" } });
    expect(await decideReconciliation("000000000000", join(dir, "none.json"), one, m)).toMatchObject({ kind: "reconcile", source: "map-patient", with: { patientId: "BY-PID" } });
    expect(await decideReconciliation("000000000000", join(dir, "none.json"), two, m)).toMatchObject({ kind: "not-reconciled" });
    expect(await decideReconciliation("000000000000", join(dir, "none.json"), [inst(5, "EXT-Z")], m)).toMatchObject({ kind: "not-reconciled" });
    expect(await decideReconciliation("000000000000", join(dir, "none.json"), [inst(6, "EXT-Z")], { ...m, forwardUnreconciled: true })).toEqual({ kind: "as-received" });
    expect(await decideReconciliation("000000000000", join(dir, "none.json"), one, undefined)).toEqual({ kind: "as-received" });
    expect(await decideReconciliation("000000000000", join(dir, "none.json"), one, { required: true, forwardUnreconciled: false })).toMatchObject({ kind: "not-reconciled" });
    writeFileSync(join(dir, "staff.json"), JSON.stringify({ patientId: "FROM-FILE", issuer: "H" }));
    expect(await decideReconciliation("abcdef012345", join(dir, "staff.json"), one, m)).toMatchObject({ kind: "reconcile", source: "file", with: { patientId: "FROM-FILE" } });
    removeDir(dir);
  });
});

describe("identity reconciliation before forwarding (real Orthanc)", () => {
  let pacs: OrthancServer;
  let home: string;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    pacs = await startOrthanc();
    home = testdir({}, "sb-reconcile-e2e-");
    env = cleanEnv(home);
  }, 60_000);
  afterAll(async () => {
    await pacs?.dispose();
    removeDir(home);
  });

  async function deliver(name: string, patientId: string, uidBase: string, drop: string): Promise<Record<string, Buffer>> {
    const files = cdFiles(patientId, uidBase);
    const input = testdir(files, "sb-reconcile-in-");
    const out = join(home, "out");
    const p = await runCli(["pack", input, "--patient", name, "--out", out, "--allow-patient-mismatch", "--force"], { env });
    expect(p.code, p.stderr).toBe(0);
    mkdirSync(drop, { recursive: true });
    const u = await runCli(["upload", join(out, `${name}.zip`), "--to", drop], { env });
    expect(u.code, u.stderr).toBe(0);
    removeDir(input);
    return files;
  }

  const watchArgs = (drop: string, ready: string, extra: string[] = []) => ["--json", "watch", drop, "--ready", ready, "--once", "--settle", "0", "--forward", pacs.dicomweb, "--forward-retry", "1s", ...extra];

  async function ours(prefix: string): Promise<Array<{ ID: string; MainDicomTags: { SOPInstanceUID: string } }>> {
    const all = await pacs.get<Array<{ ID: string; MainDicomTags: { SOPInstanceUID: string } }>>("/instances?expand");
    return all.filter((i) => i.MainDicomTags.SOPInstanceUID.startsWith(prefix));
  }

  it("--require-reconcile: queued as NOT_RECONCILED, then after `scanbridge reconcile` delivered with the local identity; originals in Original Attributes Sequence; pixel data and ready/ unchanged", async () => {
    const uid = "1.2.826.0.1.3680043.9.7433.71";
    const drop = join(home, "drop1");
    const ready = join(home, "ready1");
    const sent = await deliver("Recon One", "EXT-71", uid, drop);

    // No reconciliation option at all: held by default (outside IDs never enter the PACS as they are).
    const first = await runCli(watchArgs(drop, ready, []), { env });
    expect(first.code, first.stderr + first.stdout).toBe(5);
    expect(events(first.stdout).filter((e) => e.event === "forward-queued")).toEqual([expect.objectContaining({ code: "NOT_RECONCILED" })]);
    expect(events(first.stdout).filter((e) => e.event === "forwarded")).toEqual([]);
    expect(await ours(`${uid}.`)).toEqual([]);

    const pkg = join(ready, "Recon One");
    const before = hashTree(pkg);
    const r = await runCli(["reconcile", pkg, "--patient-id", "LOCAL-71", "--issuer", "HOSP-A", "--patient-name", "LOCAL^PATIENT", "--accession-number", "LOCAL-ACC-71"], { env });
    expect(r.code, r.stderr).toBe(0);
    // Staff's reconciliation is kept in the watch's state folder (scanbridge-state beside ready/), 0600.
    const recDir = join(home, "scanbridge-state", "reconcile");
    expect(readdirSync(recDir)).toEqual([expect.stringMatching(/^[0-9a-f]{12}\.json$/)]);
    expect(statSync(join(recDir, readdirSync(recDir)[0]!)).mode & 0o777).toBe(0o600);

    await untilForwardDue(join(home, "scanbridge-state"));
    const second = await runCli(watchArgs(drop, ready, ["--require-reconcile"]), { env });
    expect(second.code, second.stderr + second.stdout).toBe(0);
    expect(events(second.stdout).filter((e) => e.event === "forwarded")).toEqual([expect.objectContaining({ instances: 4, confirmed: 4, attempts: 2 })]);

    const stored = await ours(`${uid}.`);
    expect(stored).toHaveLength(4);
    for (const inst of stored) {
      const tags = await pacs.get<Record<string, unknown>>(`/instances/${inst.ID}/tags?simplify`);
      expect(tags).toMatchObject({ PatientID: "LOCAL-71", IssuerOfPatientID: "HOSP-A", PatientName: "LOCAL^PATIENT", AccessionNumber: "LOCAL-ACC-71" });
      const item = (tags.OriginalAttributesSequence as Array<Record<string, unknown>>)[0]!;
      expect(item).toMatchObject({ ModifyingSystem: "scanbridge", ReasonForTheAttributeModification: "COERCE" });
      expect(String(item.AttributeModificationDateTime)).toMatch(/^\d{14}/);
      expect((item.ModifiedAttributesSequence as Array<Record<string, unknown>>)[0]).toMatchObject({ PatientID: "EXT-71", PatientName: "Outside^Patient", AccessionNumber: "ACC-EXT-71" });
      // The pixel data Orthanc stored is byte for byte the one that was sent.
      const res = await fetch(`${pacs.rest}/instances/${inst.ID}/file`);
      const file = Buffer.from(await res.arrayBuffer());
      const sop = inst.MainDicomTags.SOPInstanceUID;
      const [, se, i] = /\.1\.(\d)\.(\d)$/.exec(sop)!;
      expect(pixelHash(file)).toBe(pixelHash(sent[`DICOM/SE${se}/IM${i}`]!));
    }
    // ready/ stays exactly as received: the reconciliation lives in the state folder, not beside the patient's files.
    expect(hashTree(pkg)).toEqual(before);
  }, 180_000);

  it("--reconcile-map keyed by source Patient ID: delivered reconciled; a package not in the map stays queued unless --forward-unreconciled", async () => {
    const uidA = "1.2.826.0.1.3680043.9.7433.72";
    const uidB = "1.2.826.0.1.3680043.9.7433.73";
    const drop = join(home, "drop2");
    const ready = join(home, "ready2");
    await deliver("Recon Two", "EXT-72", uidA, drop);
    await deliver("Recon Three", "EXT-73", uidB, drop);
    const map = join(home, "map.json");
    writeFileSync(map, JSON.stringify({ "EXT-72": { patientId: "LOCAL-72", issuer: "HOSP-A" } }));

    const w = await runCli(watchArgs(drop, ready, ["--reconcile-map", map]), { env });
    expect(w.code, w.stderr + w.stdout).toBe(5);
    expect(events(w.stdout).filter((e) => e.event === "forwarded")).toHaveLength(1);
    expect(events(w.stdout).filter((e) => e.event === "forward-queued")).toEqual([expect.objectContaining({ code: "NOT_RECONCILED" })]);
    const a = await ours(`${uidA}.`);
    expect(a).toHaveLength(4);
    const tags = await pacs.get<Record<string, unknown>>(`/instances/${a[0]!.ID}/tags?simplify`);
    expect(tags).toMatchObject({ PatientID: "LOCAL-72", IssuerOfPatientID: "HOSP-A", PatientName: "Outside^Patient", AccessionNumber: "" });
    expect(((tags.OriginalAttributesSequence as Array<Record<string, unknown>>)[0]!.ModifiedAttributesSequence as Array<Record<string, unknown>>)[0]).toMatchObject({ AccessionNumber: "ACC-EXT-72" });
    expect(await ours(`${uidB}.`)).toEqual([]);

    await untilForwardDue(join(home, "scanbridge-state"));
    const w2 = await runCli(watchArgs(drop, ready, ["--reconcile-map", map, "--forward-unreconciled"]), { env });
    expect(w2.code, w2.stderr + w2.stdout).toBe(0);
    const b = await ours(`${uidB}.`);
    expect(b).toHaveLength(4);
    expect(await pacs.get<Record<string, unknown>>(`/instances/${b[0]!.ID}/tags?simplify`)).toMatchObject({ PatientID: "EXT-73", AccessionNumber: "ACC-EXT-73" });
  }, 180_000);

  it("bad reconciliation settings fail at start (exit 2)", async () => {
    const drop = testdir({}, "sb-reconcile-bad-");
    const base = ["watch", drop, "--ready", join(drop, "ready"), "--once", "--forward", pacs.dicomweb];
    const bad = join(drop, "bad.json");
    writeFileSync(bad, JSON.stringify({ "EXT-1": { patientId: "A\\B", issuer: "X" } }));
    for (const [extra, code] of [
      [["--require-reconcile", "--forward-unreconciled"], "RECONCILE_CONFLICT"],
      [["--reconcile-map", join(drop, "missing.json")], "RECONCILE_MAP_UNREADABLE"],
      [["--reconcile-map", bad], "RECONCILE_INVALID"],
    ] as const) {
      const r = await runCli([...base, ...extra], { env });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`[${code}]`);
    }
    // requireReconcile false would suggest unreconciled packages are forwarded; they are not: refused, with the way.
    const unclear = await runCli(base, { env: { ...env, SCANBRIDGE_REQUIRE_RECONCILE: "0" } });
    expect(unclear.code, unclear.stderr).toBe(2);
    expect(unclear.stderr).toContain("[RECONCILE_UNCLEAR]");
    // config show and --help agree: not set by default (held unless forwardUnreconciled).
    const shown = JSON.parse((await runCli(["--json", "config", "show"], { env })).stdout) as { values: Record<string, unknown>; unset: string[] };
    expect(shown.values.requireReconcile).toBeUndefined();
    expect(shown.unset).toContain("requireReconcile");
    const noId = await runCli(["reconcile", drop, "--issuer", "X"], { env });
    expect(noId.code).not.toBe(0);
    removeDir(drop);
  });
});
