import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeSealedPackage } from "../../fixtures/package-builder.js";
import { imageDicom, pdfReport } from "../../fixtures/media-builder.js";
import { buildDicom, TransferSyntax } from "../../fixtures/dicom-builder.js";
import { removeDir } from "../helpers/cli.js";
import { run, tmp } from "../ingest/helpers.js";

describe("watch: the page in every ready/ delivery, and --media / --media-iso per filed delivery", () => {
  let home: string;
  let drop: string;
  let ready: string;
  let media: string;
  let sha256: string;

  beforeAll(async () => {
    home = tmp("sb-watch-media-");
    drop = join(home, "drop");
    ready = join(home, "ready");
    media = join(home, "media");
    mkdirSync(drop, { recursive: true });
    const ident = { patientName: "Watch^Patient", patientId: "W1", studyInstanceUid: "1.2.3.77", studyDate: "20250601", studyDescription: "CT Head", modality: "CT" };
    const pkg = await writeSealedPackage(drop, "Watch Patient", [
      ...[1, 2].map((i) => ({ path: `scans/img${i}.dcm`, data: imageDicom({ ...ident, rows: 96, cols: 96, seriesInstanceUid: "1.2.3.77.1", sopInstanceUid: `1.2.3.77.1.${i}`, seriesNumber: 1, instanceNumber: i, seed: i }), kind: "dicom" as const })),
      // A second series whose pixels are not decodable (a JPEG fragment of zeros).
      { path: "scans/broken.dcm", data: buildDicom({ ...ident, transferSyntax: TransferSyntax.jpegBaseline, seriesInstanceUid: "1.2.3.77.2", sopInstanceUid: "1.2.3.77.2.1", seriesNumber: 2, instanceNumber: 1, pixelDataBytes: 64 }), kind: "dicom" as const },
      { path: "Befund #1 (final).pdf", data: pdfReport("findings"), kind: "document" as const },
    ]);
    sha256 = pkg.sha256;
    const r = await run(["watch", drop, "--ready", ready, "--once", "--settle", "0", "--media", media, "--media-iso"], home);
    expect(r.code, r.stderr).toBe(0);
  }, 120_000);
  afterAll(() => removeDir(home));

  it("writes index.html with a preview per decodable series and links the report where it is", () => {
    const folder = join(ready, "Watch Patient");
    const html = readFileSync(join(folder, "index.html"), "utf8");
    expect(html).toContain("CT Head");
    expect(html).toContain(`Package SHA-256: ${sha256}`);
    expect(html).toContain('href="Befund%20%231%20(final).pdf"');
    expect(html).toMatch(/No preview: pixel data could not be decoded/);
    expect(readdirSync(join(folder, "index_files"))).toEqual(["S0000001.JPG"]);
    // Nothing half-written is left in the delivery.
    expect(readdirSync(folder).filter((n) => n.startsWith("."))).toEqual([]);
  });

  it("makes the file-set and ISO under --media/<package id> and records it in the audit log", () => {
    const id = sha256.slice(0, 12);
    expect(readdirSync(media).sort()).toEqual([id, `${id}.iso`]);
    const dump = execFileSync("dcmdump", ["-q", join(media, id, "DICOMDIR")], { encoding: "utf8" });
    expect(dump.match(/\(0004,1430\) CS \[IMAGE/g)).toHaveLength(3);
    expect(readFileSync(join(media, id, "README.TXT"), "utf8")).toContain(`Package SHA-256: ${sha256}`);
    // The audit log lives in the watcher's state folder (scanbridge-state beside ready/), not in the drop.
    const records = readFileSync(join(home, "scanbridge-state", "audit.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    const rec = records.find((r) => r.event === "media");
    expect(rec).toMatchObject({ event: "media", id, result: "made", instances: 3, reports: 1, iso: join(media, `${id}.iso`) });
    // No patient name in the audit record.
    expect(JSON.stringify(rec)).not.toContain("Watch");
    const ready = records.findIndex((r) => r.event === "ready");
    expect(records.indexOf(rec!)).toBeGreaterThan(ready);
  });
});
