import { describe, expect, it } from "vitest";
import { factsFromReceipt, renderMessage } from "../../src/notify/message.js";
import { overrideWarnings, type Manifest } from "../../src/pack/manifest.js";
import type { Receipt } from "../../src/transfer/receipt.js";

const manifest = (extra: Partial<Manifest>): Manifest => ({
  format: "scanbridge-package", formatVersion: 1, tool: { name: "scanbridge", version: "0" }, createdAt: "2026-01-01T00:00:00Z", root: "Ana Lima",
  patient: { name: "Ana Lima" }, files: [], totals: { files: 0, bytes: 0, byKind: {} }, excluded: [], ...extra,
});

describe("overrides the hospital must see (issue 12)", () => {
  it("turns every recorded override into a warning, without names", () => {
    const w = overrideWarnings(manifest({
      overrides: { allowPatientMismatch: true, allowUnchecked: true, uncheckedFiles: ["broken.dcm"] },
      dicom: { patients: [{ files: 1 }, { files: 2 }], studies: [] },
      files: [{ path: "broken.dcm", size: 1, sha256: "0", kind: "dicom-unreadable" }, { path: "cut", size: 1, sha256: "0", kind: "dicom-unreadable" }],
      excluded: [{ path: "IM9", reason: "other-patient" }],
    }));
    expect(w.map((x) => x.code)).toEqual(["PATIENT_MISMATCH_ALLOWED", "UNCHECKED_ALLOWED", "UNCHECKED_ALLOWED", "DICOM_UNREADABLE_FILES", "OTHER_PATIENTS_LEFT_OUT"]);
    expect(w[0]!.message).toMatch(/2 different patients/);
    expect(w[2]!.entry).toBe("<root>/broken.dcm");
    expect(w[3]!.message).toMatch(/^1 DICOM file/);
    expect(JSON.stringify(w)).not.toMatch(/Ana|Lima/);
  });

  it("ignores hostile shapes in an untrusted manifest", () => {
    const hostile = manifest({ overrides: "yes" as never, files: "x" as never, excluded: null as never });
    expect(overrideWarnings(hostile)).toEqual([]);
    const lists = manifest({ overrides: { allowUnchecked: true, uncheckedFiles: [1, {}, "a"] as never } });
    expect(overrideWarnings(lists).filter((x) => x.entry).map((x) => x.entry)).toEqual(["<root>/a"]);
  });

  it("the staff notification of a ready package carries the warnings in its subject and body", () => {
    const receipt: Receipt = {
      format: "scanbridge-receipt", formatVersion: 1, package: "Ana Lima.zip", destination: "file:///srv/drop", remotePath: "/srv/drop/Ana Lima.zip",
      size: 10, sha256: "a".repeat(64), verified: "sha256", attempts: 1, startedAt: "t", finishedAt: "t", event: "ready",
      warnings: ["The sender overrode the wrong-patient check: the name in the DICOM files does not match the package's patient"],
    };
    const msg = renderMessage(factsFromReceipt(receipt, { includePatientName: false, sender: {} }));
    expect(msg.subject).toMatch(/1 WARNING/);
    expect(msg.text).toMatch(/WARNING:\s+The sender overrode the wrong-patient check/);
  });
});
