/**
 * End to end: `scanbridge watch --forward` into a real Orthanc (DICOMweb plugin) on loopback, with basic auth;
 * Orthanc down: the package stays queued (not quarantined) and is delivered once Orthanc is back, exactly once.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDicom } from "../../fixtures/dicom-builder.js";
import { cleanEnv, removeDir, runCli, spawnCli, testdir } from "../helpers/cli.js";
import { until } from "../ingest/helpers.js";
import { startOrthanc, type OrthancServer } from "../helpers/orthanc.js";
import { untilForwardDue } from "../helpers/forward.js";

const AUTH = { user: "scanbridge", password: "fw-e2e-secret" };

function cdFiles(patientId: string, uidBase: string): Record<string, Buffer> {
  const files: Record<string, Buffer> = {};
  for (const [st, se] of [[1, 1], [1, 2], [2, 1]] as const) {
    for (let i = 1; i <= 2; i++) {
      const study = `${uidBase}.${st}`;
      files[`DICOM/ST${st}/SE${se}/IM${i}`] = buildDicom({
        patientName: "Forward^Patient",
        patientId,
        studyInstanceUid: study,
        seriesInstanceUid: `${study}.${se}`,
        sopInstanceUid: `${study}.${se}.${i}`,
        modality: "CT",
        studyDate: "20260105",
        seriesNumber: se,
        instanceNumber: i,
        pixelDataBytes: 2048,
      });
    }
  }
  return files;
}

const events = (out: string) => out.split("\n").filter((l) => l.startsWith("{") && l.includes('"event"')).map((l) => JSON.parse(l) as Record<string, unknown>);

describe("watch --forward (real Orthanc)", () => {
  let pacs: OrthancServer;
  let home: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    pacs = await startOrthanc({ auth: AUTH });
    home = testdir({}, "sb-forward-e2e-");
    env = cleanEnv(home, { SCANBRIDGE_FORWARD_PASSWORD: AUTH.password });
  }, 60_000);
  afterAll(async () => {
    await pacs?.dispose();
    removeDir(home);
  });

  /** pack a CD-like folder and upload it into the drop folder, as a sender would. */
  async function deliver(name: string, patientId: string, uidBase: string, drop: string): Promise<void> {
    const input = testdir(cdFiles(patientId, uidBase), "sb-forward-in-");
    const out = join(home, "out");
    const p = await runCli(["pack", input, "--patient", name, "--out", out, "--allow-patient-mismatch", "--force"], { env });
    expect(p.code, p.stderr).toBe(0);
    const u = await runCli(["upload", join(out, `${name}.zip`), "--to", drop], { env });
    expect(u.code, u.stderr).toBe(0);
    removeDir(input);
  }

  const watchArgs = (drop: string, ready: string, extra: string[] = []) => ["--json", "watch", drop, "--ready", ready, "--once", "--settle", "0", "--forward", pacs.dicomweb, "--forward-user", AUTH.user, "--forward-batch", "4", "--forward-unreconciled", ...extra];

  it("every study, series and instance arrives with the right patient, confirmed before it counts; audited", async () => {
    const drop = join(home, "drop1");
    const ready = join(home, "ready1");
    await deliver("Forward One", "FWD-1", "1.2.826.0.1.3680043.9.7433.61", drop);
    const w = await runCli(watchArgs(drop, ready), { env });
    expect(w.code, w.stderr + w.stdout).toBe(0);
    const fwd = events(w.stdout).filter((e) => e.event === "forwarded");
    expect(fwd).toHaveLength(1);
    expect(fwd[0]).toMatchObject({ instances: 6, confirmed: 6, attempts: 1 });
    const result = JSON.parse(w.stdout.trim().split("\n").at(-1)!) as { forward: unknown };
    expect(result.forward).toEqual({ delivered: 1, queued: 0 });
    const studies = await pacs.get<Array<{ MainDicomTags: { StudyInstanceUID: string }; PatientMainDicomTags: { PatientID: string } }>>("/studies?expand");
    const ours = studies.filter((s) => s.PatientMainDicomTags.PatientID === "FWD-1");
    expect(ours.map((s) => s.MainDicomTags.StudyInstanceUID).sort()).toEqual(["1.2.826.0.1.3680043.9.7433.61.1", "1.2.826.0.1.3680043.9.7433.61.2"]);
    const series = await pacs.get<Array<{ MainDicomTags: { SeriesInstanceUID: string }; Instances: string[] }>>("/series?expand");
    const ourSeries = series.filter((s) => s.MainDicomTags.SeriesInstanceUID.startsWith("1.2.826.0.1.3680043.9.7433.61."));
    expect(ourSeries.map((s) => [s.MainDicomTags.SeriesInstanceUID, s.Instances.length]).sort()).toEqual([
      ["1.2.826.0.1.3680043.9.7433.61.1.1", 2],
      ["1.2.826.0.1.3680043.9.7433.61.1.2", 2],
      ["1.2.826.0.1.3680043.9.7433.61.2.1", 2],
    ]);
    const audit = readFileSync(join(home, "scanbridge-state", "audit.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(audit.filter((r) => r.event === "forwarded")).toEqual([expect.objectContaining({ result: "delivered", instances: 6, confirmed: 6 })]);
    expect(readdirSync(join(home, "scanbridge-state", "forward-queue")).filter((n) => n.endsWith(".json"))).toEqual([]);
    // The password never reaches output or the audit log.
    expect(w.stdout + w.stderr + readFileSync(join(home, "scanbridge-state", "audit.jsonl"), "utf8")).not.toContain(AUTH.password);
  }, 120_000);

  it("Orthanc down: the package is filed in ready/, stays queued (not quarantined, exit 5), and is delivered exactly once after Orthanc is back", async () => {
    const drop = join(home, "drop2");
    const ready = join(home, "ready2");
    await deliver("Forward Two", "FWD-2", "1.2.826.0.1.3680043.9.7433.62", drop);
    await pacs.stop();
    const down = await runCli(watchArgs(drop, ready, ["--forward-retry", "1s"]), { env });
    expect(down.code, down.stderr + down.stdout).toBe(5);
    expect(events(down.stdout).filter((e) => e.event === "forward-queued")).toEqual([expect.objectContaining({ attempts: 1 })]);
    expect(existsSync(join(ready, "Forward Two", "manifest.json"))).toBe(true);
    expect(readdirSync(join(home, "scanbridge-state", "quarantine"))).toEqual([]);
    const queued = readdirSync(join(home, "scanbridge-state", "forward-queue")).filter((n) => n.endsWith(".json"));
    expect(queued).toHaveLength(1);

    await pacs.start();
    await untilForwardDue(join(home, "scanbridge-state"));
    const up = await runCli(watchArgs(drop, ready, ["--forward-retry", "1s"]), { env });
    expect(up.code, up.stderr + up.stdout).toBe(0);
    expect(events(up.stdout).filter((e) => e.event === "forwarded")).toEqual([expect.objectContaining({ instances: 6, confirmed: 6, attempts: 2 })]);
    const again = await runCli(watchArgs(drop, ready), { env });
    expect(again.code).toBe(0);
    expect(events(again.stdout).filter((e) => e.event === "forwarded" || e.event === "forward-queued")).toEqual([]);
    const instances = await pacs.get<Array<{ MainDicomTags: { SOPInstanceUID: string } }>>("/instances?expand");
    const ours = instances.map((i) => i.MainDicomTags.SOPInstanceUID).filter((u) => u.startsWith("1.2.826.0.1.3680043.9.7433.62."));
    expect(ours.sort()).toEqual([...new Set(ours)].sort());
    expect(ours).toHaveLength(6);
    expect(existsSync(join(home, "scanbridge-state", "forward-queue", "delivered", queued[0]!))).toBe(true);
  }, 180_000);

  it("a running watch: Orthanc stopped, the package waits in the queue; Orthanc back, it is delivered once, without a restart", async () => {
    const drop = join(home, "drop3");
    const ready = join(home, "ready3");
    await pacs.stop();
    const args = watchArgs(drop, ready, ["--forward-retry", "1s", "--rescan", "1s"]).filter((a) => a !== "--once");
    mkdirSync(drop, { recursive: true });
    const child = spawnCli(args, { env });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((res) => child.on("close", (code) => res(code)));
    try {
      await deliver("Forward Three", "FWD-3", "1.2.826.0.1.3680043.9.7433.63", drop);
      await until(() => events(out).some((e) => e.event === "forward-queued"), 60_000, "forward-queued");
      expect(existsSync(join(ready, "Forward Three", "manifest.json"))).toBe(true);
      await pacs.start();
      await until(() => events(out).some((e) => e.event === "forwarded"), 90_000, "forwarded");
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
    expect(events(out).filter((e) => e.event === "forwarded")).toEqual([expect.objectContaining({ instances: 6, confirmed: 6 })]);
    expect(readdirSync(join(home, "scanbridge-state", "quarantine"))).toEqual([]);
    const instances = await pacs.get<Array<{ MainDicomTags: { SOPInstanceUID: string } }>>("/instances?expand");
    expect(instances.filter((i) => i.MainDicomTags.SOPInstanceUID.startsWith("1.2.826.0.1.3680043.9.7433.63."))).toHaveLength(6);
  }, 180_000);

  it("a PACS refusing the login (fatal): one attempt, the other packages stay queued untried; the password never shows", async () => {
    const drop = join(home, "drop4");
    const ready = join(home, "ready4");
    await deliver("Forward Four", "FWD-4", "1.2.826.0.1.3680043.9.7433.64", drop);
    await deliver("Forward Five", "FWD-5", "1.2.826.0.1.3680043.9.7433.65", drop);
    const wrong = cleanEnv(home, { SCANBRIDGE_FORWARD_PASSWORD: "not-the-password" });
    // A state folder of its own, so the queue holds only these two packages.
    const state = join(home, "state4");
    const w = await runCli(watchArgs(drop, ready, ["--state", state]), { env: wrong });
    expect(w.code, w.stderr + w.stdout).toBe(5);
    expect(events(w.stdout).filter((e) => e.event === "forward-queued")).toEqual([expect.objectContaining({ code: "FORWARD_AUTH_FAILED", attempts: 1 })]);
    const queued = readdirSync(join(state, "forward-queue")).filter((n) => n.endsWith(".json"));
    const attempts = queued.map((n) => (JSON.parse(readFileSync(join(state, "forward-queue", n), "utf8")) as { attempts: number }).attempts).sort();
    expect(attempts).toEqual([0, 1]);
    expect(existsSync(join(ready, "Forward Four", "manifest.json")) && existsSync(join(ready, "Forward Five", "manifest.json"))).toBe(true);
    expect(w.stdout + w.stderr).not.toContain("not-the-password");
  }, 180_000);

  it("configuration errors fail at start (exit 2): credentials in the URL, user without password, credentials over http to another host", async () => {
    const drop = testdir({}, "sb-forward-bad-");
    const base = ["watch", drop, "--ready", join(drop, "ready"), "--once"];
    const cases: Array<[string[], NodeJS.ProcessEnv, string]> = [
      [[...base, "--forward", "http://u:p@127.0.0.1:1/dicom-web"], env, "FORWARD_URL_CREDENTIALS"],
      [[...base, "--forward", pacs.dicomweb, "--forward-user", "x"], cleanEnv(home), "FORWARD_AUTH_INCOMPLETE"],
      [[...base, "--forward", "http://pacs.example/dicom-web", "--forward-user", "x"], env, "FORWARD_INSECURE_AUTH"],
    ];
    for (const [args, e, code] of cases) {
      const r = await runCli(args, { env: e });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`[${code}]`);
    }
    expect(existsSync(join(drop, "ready"))).toBe(false);
    removeDir(drop);
  });
});
