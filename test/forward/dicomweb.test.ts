/** The DICOMweb client against a real Orthanc (with its DICOMweb plugin) on loopback. */
import { statSync, writeFileSync } from "node:fs";
import https from "node:https";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDicom } from "../../fixtures/dicom-builder.js";
import { confirmInstances, parseDicomwebUrl, stowAndConfirm, stowInstances, type InstanceRef } from "../../src/forward/dicomweb.js";
import { startOrthanc, type OrthancServer } from "../helpers/orthanc.js";
import { removeDir, testdir } from "../helpers/cli.js";
import { makeTestCert } from "../helpers/smtp.js";

const FAST = { retries: 2, baseDelayMs: 20, maxDelayMs: 50 };
const UID = "1.2.826.0.1.3680043.9.7433.99";

/** Synthetic instances: 2 studies, 3 series, `perSeries` images each. */
function writeInstances(dir: string, perSeries = 3, patientId = "FW1"): InstanceRef[] {
  const out: InstanceRef[] = [];
  for (const [study, series] of [[1, 1], [1, 2], [2, 1]] as const) {
    for (let i = 1; i <= perSeries; i++) {
      const studyInstanceUid = `${UID}.${patientId.length}.${study}`;
      const seriesInstanceUid = `${studyInstanceUid}.${series}`;
      const sopInstanceUid = `${seriesInstanceUid}.${i}`;
      const path = join(dir, `${study}-${series}-${i}.dcm`);
      writeFileSync(path, buildDicom({ patientName: "Forward^Test", patientId, studyInstanceUid, seriesInstanceUid, sopInstanceUid, modality: "CT", studyDate: "20260101", instanceNumber: i, seriesNumber: series, pixelDataBytes: 4096 }));
      out.push({ path, studyInstanceUid, seriesInstanceUid, sopInstanceUid });
    }
  }
  return out;
}

describe("DICOMweb client (real Orthanc)", () => {
  let pacs: OrthancServer;
  let dir: string;
  beforeAll(async () => {
    pacs = await startOrthanc();
    dir = testdir({}, "sb-dicomweb-");
  }, 60_000);
  afterAll(async () => {
    await pacs?.dispose();
    removeDir(dir);
  });

  it("STOW-RS in batches, then QIDO-RS confirms every instance; Orthanc holds every study, series and instance with the right patient", async () => {
    const instances = writeInstances(dir);
    const batches: number[] = [];
    const r = await stowInstances({ url: pacs.dicomweb }, instances, { batchSize: 4, parallel: 1, retry: FAST, onBatch: (b) => batches.push(b.sent) });
    expect(r).toMatchObject({ sent: 9, requests: 3, attempts: 3, failed: [] });
    expect(batches).toEqual([4, 8, 9]);
    expect(await confirmInstances({ url: pacs.dicomweb }, instances, { pageSize: 2 })).toEqual({ confirmed: 9, missing: [] });
    const studies = await pacs.get<string[]>("/studies");
    expect(studies).toHaveLength(2);
    const series = await pacs.get<string[]>("/series");
    expect(series).toHaveLength(3);
    const stored = await pacs.get<Array<{ MainDicomTags: { SOPInstanceUID: string } }>>("/instances?expand");
    expect(stored.map((i) => i.MainDicomTags.SOPInstanceUID).sort()).toEqual(instances.map((i) => i.sopInstanceUid).sort());
    const patients = await pacs.get<Array<{ MainDicomTags: { PatientID: string; PatientName: string } }>>("/patients?expand");
    expect(patients.map((p) => p.MainDicomTags)).toEqual([expect.objectContaining({ PatientID: "FW1", PatientName: "Forward^Test" })]);
    // Sending again is harmless: same instances, nothing duplicated.
    await stowInstances({ url: pacs.dicomweb }, instances, { retry: FAST });
    expect(await pacs.get<string[]>("/instances")).toHaveLength(9);
  });

  it("parallel STOW-RS with batches cut by bytes; each series confirmed as soon as it is stored", async () => {
    const instances = writeInstances(dir);
    const seriesStored: string[] = [];
    const sizes = instances.map((i) => statSync(i.path).size);
    // Two instances' worth of bytes per request: several requests, three in flight.
    const { stow, confirm } = await stowAndConfirm({ url: pacs.dicomweb }, instances, {
      batchBytes: Math.max(...sizes) * 2, parallel: 3, retry: FAST, onSeriesStored: (_study, series) => seriesStored.push(series),
    });
    expect(stow).toMatchObject({ sent: 9, failed: [] });
    expect(stow.requests).toBeGreaterThanOrEqual(5);
    expect(confirm).toEqual({ confirmed: 9, missing: [] });
    expect(seriesStored.sort()).toEqual([...new Set(instances.map((i) => i.seriesInstanceUid))].sort());
  });

  it("QIDO-RS reports an instance the PACS does not hold as missing", async () => {
    const sub = testdir({}, "sb-dicomweb-missing-");
    const instances = writeInstances(sub, 1, "FW22");
    await stowInstances({ url: pacs.dicomweb }, instances.slice(0, 2), { retry: FAST });
    expect(await confirmInstances({ url: pacs.dicomweb }, instances)).toEqual({ confirmed: 2, missing: [instances[2]!.sopInstanceUid] });
    removeDir(sub);
  });

  it("a PACS that is down: a retryable network error after the retries; delivered once it is back", async () => {
    const sub = testdir({}, "sb-dicomweb-down-");
    const instances = writeInstances(sub, 1, "FW333");
    await pacs.stop();
    const retries: number[] = [];
    const err = await stowInstances({ url: pacs.dicomweb }, instances, { retry: FAST, onRetry: (i) => retries.push(i.attempt) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "NETWORK_TRANSIENT", retryable: true, exitCode: 5 });
    expect(retries).toEqual([1, 2]);
    await pacs.start();
    expect(await stowInstances({ url: pacs.dicomweb }, instances, { retry: FAST })).toMatchObject({ sent: 3, failed: [] });
    expect(await confirmInstances({ url: pacs.dicomweb }, instances)).toEqual({ confirmed: 3, missing: [] });
    removeDir(sub);
  }, 60_000);

  it("rejects URLs with credentials or other schemes", () => {
    expect(() => parseDicomwebUrl("https://u:p@pacs/dicom-web")).toThrow(/credentials/);
    expect(() => parseDicomwebUrl("ftp://pacs/dicom-web")).toThrow(/http\(s\)/);
    expect(parseDicomwebUrl("https://pacs.example/dicom-web/").href).toBe("https://pacs.example/dicom-web");
  });
});

describe("DICOMweb client with authentication (real Orthanc)", () => {
  let pacs: OrthancServer;
  let dir: string;
  beforeAll(async () => {
    pacs = await startOrthanc({ auth: { user: "scanbridge", password: "s3cret-test" } });
    dir = testdir({}, "sb-dicomweb-auth-");
  }, 60_000);
  afterAll(async () => {
    await pacs?.dispose();
    removeDir(dir);
  });

  it("without or with wrong credentials: FORWARD_AUTH_FAILED, not retried; with basic auth: stored and confirmed", async () => {
    const instances = writeInstances(dir, 1, "FW4444");
    const retried: number[] = [];
    const none = await stowInstances({ url: pacs.dicomweb }, instances, { retry: FAST, onRetry: (i) => retried.push(i.attempt) }).catch((e: unknown) => e);
    expect(none).toMatchObject({ code: "FORWARD_AUTH_FAILED", retryable: false, retryClass: "fatal", exitCode: 5 });
    const wrong = await stowInstances({ url: pacs.dicomweb, auth: { kind: "basic", user: "scanbridge", password: "nope" } }, instances, { retry: FAST }).catch((e: unknown) => e);
    expect(wrong).toMatchObject({ code: "FORWARD_AUTH_FAILED" });
    expect(retried).toEqual([]);
    const target = { url: pacs.dicomweb, auth: { kind: "basic" as const, user: "scanbridge", password: "s3cret-test" } };
    expect(await stowInstances(target, instances, { retry: FAST })).toMatchObject({ sent: 3, failed: [] });
    expect(await confirmInstances(target, instances)).toEqual({ confirmed: 3, missing: [] });
  });
});

describe("DICOMweb client over TLS", () => {
  it("verifies the PACS certificate: a self-signed one is refused (not retried); trusted with --forward-ca it works; the body is multipart/related application/dicom", async () => {
    const cert = makeTestCert();
    const dir = testdir({}, "sb-dicomweb-tls-");
    const seen: Array<{ type: string; parts: number }> = [];
    const server = https.createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const type = String(req.headers["content-type"]);
        const boundary = /boundary=([^;]+)/.exec(type)?.[1] ?? "";
        seen.push({ type, parts: Buffer.concat(chunks).toString("latin1").split(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`).length - 1 });
        res.writeHead(200, { "Content-Type": "application/dicom+json" }).end("{}");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const url = `https://127.0.0.1:${(server.address() as { port: number }).port}/dicom-web`;
    try {
      const instances = writeInstances(dir, 1, "TLS1");
      const retried: number[] = [];
      const err = await stowInstances({ url }, instances, { retry: FAST, onRetry: (i) => retried.push(i.attempt) }).catch((e: unknown) => e);
      expect(err).toMatchObject({ retryable: false, exitCode: 5 });
      expect(retried).toEqual([]);
      expect(seen).toEqual([]);
      expect(await stowInstances({ url, ca: cert.cert }, instances, { retry: FAST, batchSize: 2 })).toMatchObject({ sent: 3, requests: 2, failed: [] });
      expect(seen.map((s) => s.parts).sort()).toEqual([1, 2]); // two requests in flight: either may arrive first
      expect(seen[0]!.type).toMatch(/^multipart\/related; type="application\/dicom"; boundary=scanbridge-[0-9a-f]{32}$/);
    } finally {
      server.close();
      removeDir(dir);
      removeDir(cert.dir);
    }
  });
});
